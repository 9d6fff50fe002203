// Reads provenance stream messages with WebCrypto only, as the browser will: parses the
// frame with a DataView, unwraps a subscriber's keys (X25519, HKDF-SHA256, AES-GCM) and
// opens sealed payloads (AES-256-GCM, the 114-byte header as associated data).
// stdin: {"stream": hex, "key": hex|null, "subscriber": pkcs8 hex|null, "messages": [hex]}
// stdout: one entry a message: the payload's text, or null when no key opens it.
"use strict";
const subtle = globalThis.crypto.subtle;
const hex = (h) => Uint8Array.from(Buffer.from(h.replace(/^0x/, ""), "hex"));
const concat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));
const u32 = (n) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; };
const HEADER = 114;
const WRAP_INFO = new TextEncoder().encode("m2mpay/provenance/key-wrap/v1");

function parse(raw) {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (new TextDecoder().decode(raw.slice(0, 4)) !== "M2PM" || raw[4] !== 1) throw new Error("not v1");
  const size = view.getUint32(110);
  return {
    header: raw.slice(0, HEADER),
    epoch: view.getUint32(85),
    kind: raw[89],
    payload: raw.slice(HEADER, HEADER + size),
  };
}

async function aesOpen(keyBytes, iv, data, aad) {
  const key = await subtle.importKey("raw", keyBytes, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, data));
}

async function unwrap(grant, stream, epoch, subscriber, subscriberPublic) {
  const mine = grant.wraps.find((w) => Buffer.from(hex(w.subscriber)).equals(Buffer.from(subscriberPublic)));
  if (!mine) return null;
  const eph = hex(grant.ephemeral);
  const theirs = await subtle.importKey("raw", eph, { name: "X25519" }, false, []);
  const shared = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: theirs }, subscriber, 256));
  const ikm = await subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  const info = concat(WRAP_INFO, u32(epoch), eph, subscriberPublic);
  const wrapKey = new Uint8Array(
    await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: stream, info }, ikm, 256),
  );
  return aesOpen(wrapKey, new Uint8Array(12), hex(mine.wrapped), concat(stream, u32(epoch)));
}

async function main() {
  const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const stream = hex(input.stream);
  const keys = new Map();
  if (input.key) keys.set(0, hex(input.key));
  let subscriber = null;
  let subscriberPublic = null;
  if (input.subscriber) {
    subscriber = await subtle.importKey("pkcs8", hex(input.subscriber), { name: "X25519" }, true, ["deriveBits"]);
    const jwk = await subtle.exportKey("jwk", subscriber);
    subscriberPublic = Uint8Array.from(Buffer.from(jwk.x, "base64url"));
  }
  const out = [];
  for (const m of input.messages) {
    const msg = parse(hex(m));
    if (msg.kind === 1) {
      const text = new TextDecoder().decode(msg.payload);
      if (subscriber && !keys.has(msg.epoch)) {
        const key = await unwrap(JSON.parse(text), stream, msg.epoch, subscriber, subscriberPublic);
        if (key) keys.set(msg.epoch, key);
      }
      out.push(text);
    } else if (!keys.has(msg.epoch)) {
      out.push(null);
    } else {
      const plain = await aesOpen(keys.get(msg.epoch), msg.payload.slice(0, 12), msg.payload.slice(12), msg.header);
      out.push(new TextDecoder().decode(plain));
    }
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exit(1); });
