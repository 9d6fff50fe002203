// Runs the web reader's own verify (web/reader/verify.js, as the page bundles it) in Node on
// cases Python wrote, so the tests compare it with m2mpay.provenance.stream_verify.
// stdin: [{"file": hex} | {"root": hex, "messages": [hex], "stream": hex|null, "count": n|null},
//          with "key": hex|null, "keys": {epoch: hex}|null, "subscriber": pkcs8 hex|null]
// stdout: one answer a case: {ok, code, position, verified, records: [canonical JSON text]}.
import { readFileSync } from "node:fs";
import { readStreamFile } from "../../web/reader/stream_file.js";
import { StreamInvalid, fromHex, verify } from "../../web/reader/verify.js";

const sortKeys = (v) =>
  Array.isArray(v) ? v.map(sortKeys)
  : v !== null && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  : v;

async function subscriberOf(pkcs8) {
  const subtle = globalThis.crypto.subtle;
  const privateKey = await subtle.importKey("pkcs8", fromHex(pkcs8), { name: "X25519" }, true, ["deriveBits"]);
  const jwk = await subtle.exportKey("jwk", privateKey);
  return { privateKey, publicKey: new Uint8Array(Buffer.from(jwk.x, "base64url")) };
}

async function run(c) {
  let root = c.root ? fromHex(c.root) : null;
  let messages = (c.messages ?? []).map(fromHex);
  let streamId = c.stream ? fromHex(c.stream) : null;
  let count = c.count ?? null;
  if (c.file !== undefined) {
    try {
      ({ root, messages, streamId, count } = readStreamFile(fromHex(c.file)));
    } catch (exc) {
      if (!(exc instanceof StreamInvalid)) throw exc;
      return { ok: false, code: exc.code, position: null, verified: 0, records: [], file: true };
    }
  }
  let key = c.key ? fromHex(c.key) : null;
  if (c.keys) key = new Map(Object.entries(c.keys).map(([e, k]) => [Number(e), fromHex(k)]));
  const subscriber = c.subscriber ? await subscriberOf(c.subscriber) : null;
  const v = await verify(root, messages, { key, subscriber, streamId, count });
  return {
    ok: v.ok,
    code: v.problem?.code ?? null,
    position: v.problem?.position ?? null,
    verified: v.messages.length,
    records: v.messages.map((m) => (m.content === null ? null : JSON.stringify(sortKeys(m.content)))),
  };
}

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const c of cases) out.push(await run(c));
process.stdout.write(JSON.stringify(out));
