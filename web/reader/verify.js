// Verifying a provenance stream in a browser exactly as m2mpay.provenance.stream_verify does
// in Python: the same byte format (stream_format.py's docstring), the same order of checks,
// the same problem codes, stopping at the first problem; only the messages before it count
// as verified, and `ok` only when every message given verified and none is missing.
// No DOM: WebCrypto (AES-256-GCM, X25519, HKDF-SHA256), @noble/curves (secp256k1 recovery)
// and @noble/hashes (Keccak-256).
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { BadPayload, MAX_PAYLOAD_SIZE, decodeKeyGrant, decodeRecord } from "./records.js";

export { checksumAddress } from "./records.js";

export const PROBLEM_CODES = [
  "malformed", "unknown_version", "truncated", "bad_signature", "wrong_author", "wrong_stream",
  "reordered", "gap", "duplicate", "inserted", "broken_chain", "time_backwards", "bad_epoch",
  "missing_key", "wrong_key", "bad_payload",
];
export const ACCESS = { PUBLIC: 0, RESTRICTED: 1, SUBSCRIBERS: 2 };
export const KIND = { RECORD: 0, KEYS: 1 };

const FORMAT_VERSION = 1;
const SIGNATURE_SIZE = 65;
const HEADER_SIZE = 114;
const MAX_PURPOSE = 64;
const MAX_LINKS = 8;
const MAX_MESSAGE_SIZE = HEADER_SIZE + MAX_PAYLOAD_SIZE + SIGNATURE_SIZE;
const ROOT_FIXED = 4 + 1 + 20 + 1 + 8 + 32 + 1;
const MAX_ROOT_SIZE = ROOT_FIXED + MAX_PURPOSE + 1 + 32 * MAX_LINKS + SIGNATURE_SIZE;
const MIN_ROOT_SIZE = ROOT_FIXED + 1 + 1 + SIGNATURE_SIZE;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const ascii = new TextEncoder();
const SIGN_DOMAIN = concat(Uint8Array.of(0x19), ascii.encode("m2mpay/provenance/v1"));
const WRAP_INFO = ascii.encode("m2mpay/provenance/key-wrap/v1");

/** Bytes that are not a stream, or a stream that does not verify; `code` names it. */
export class StreamInvalid extends Error {
  constructor(code, detail) {
    super(detail);
    this.code = code;
  }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
// A digit's value by its character code: a file of 10,000 messages is 8 MB of hex, which
// parseInt on every pair took most of a second to read.
const NIBBLE = new Uint8Array(128);
for (let i = 0; i < 16; i++) NIBBLE["0123456789abcdef".charCodeAt(i)] = NIBBLE["0123456789ABCDEF".charCodeAt(i)] = i;
export function fromHex(text) {
  const h = text.startsWith("0x") ? text.slice(2) : text;
  if (h.length % 2 || !/^[0-9a-fA-F]*$/.test(h)) throw new StreamInvalid("malformed", "not hexadecimal");
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (NIBBLE[h.charCodeAt(2 * i)] << 4) | NIBBLE[h.charCodeAt(2 * i + 1)];
  return out;
}
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const u32 = (n) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const view = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);
// Millisecond and index fields are 64-bit: BigInt keeps them exact, Number shows them.
const u64 = (b, at) => view(b).getBigUint64(at);

function checkFrame(data, magic, what, least, most) {
  if (data.length > most) throw new StreamInvalid("malformed", `a ${what} is at most ${most} bytes, got ${data.length}`);
  const head = data.subarray(0, 4);
  if (!equal(head, ascii.encode(magic).subarray(0, head.length)))
    throw new StreamInvalid("malformed", `not a provenance stream ${what}`);
  if (data.length >= 5 && data[4] !== FORMAT_VERSION)
    throw new StreamInvalid("unknown_version", `${what} format version ${data[4]}; this reads 1`);
  if (data.length < least) throw new StreamInvalid("truncated", `a ${what} is at least ${least} bytes, got ${data.length}`);
}

/** The root in `data`; StreamInvalid (malformed, unknown_version, truncated) if its frame is not one. */
export function decodeRoot(data) {
  checkFrame(data, "M2PR", "root", MIN_ROOT_SIZE, MAX_ROOT_SIZE);
  const size = data[ROOT_FIXED - 1];
  let at = ROOT_FIXED;
  if (!(size > 0 && size <= MAX_PURPOSE)) throw new StreamInvalid("malformed", `a purpose is 1 to ${MAX_PURPOSE} bytes, got ${size}`);
  const purpose = data.subarray(at, at + size);
  at += size;
  if (at >= data.length) throw new StreamInvalid("truncated", "the root ends inside its purpose");
  const linksCount = data[at++];
  if (linksCount > MAX_LINKS) throw new StreamInvalid("malformed", `a root links at most ${MAX_LINKS} streams, got ${linksCount}`);
  const bodySize = at + 32 * linksCount;
  if (data.length !== bodySize + SIGNATURE_SIZE)
    throw new StreamInvalid(data.length < bodySize + SIGNATURE_SIZE ? "truncated" : "malformed",
      `a root of this purpose and links is ${bodySize + SIGNATURE_SIZE} bytes`);
  const links = [];
  for (let i = at; i < bodySize; i += 32) links.push(data.slice(i, i + 32));
  return {
    author: data.slice(5, 25),
    access: data[25],
    createdMs: u64(data, 26),
    nonce: data.slice(34, 66),
    purpose: String.fromCharCode(...purpose), // latin-1, as Python decodes it
    links,
    signature: data.slice(bodySize),
    raw: data,
    streamId: keccak_256(data.subarray(0, bodySize)),
  };
}

/** The message in `data`; StreamInvalid (malformed, unknown_version, truncated) if its frame is not one. */
export function decodeMessage(data) {
  checkFrame(data, "M2PM", "message", HEADER_SIZE + SIGNATURE_SIZE, MAX_MESSAGE_SIZE);
  const v = view(data);
  const size = v.getUint32(110);
  if (size > MAX_PAYLOAD_SIZE) throw new StreamInvalid("malformed", `a payload is at most ${MAX_PAYLOAD_SIZE} bytes, not ${size}`);
  const expected = HEADER_SIZE + size + SIGNATURE_SIZE;
  if (data.length !== expected)
    throw new StreamInvalid(data.length < expected ? "truncated" : "malformed",
      `a message with this payload is ${expected} bytes, got ${data.length}`);
  return {
    streamId: data.slice(5, 37),
    index: u64(data, 37),
    prev: data.slice(45, 77),
    timestampMs: u64(data, 77),
    epoch: v.getUint32(85),
    kind: data[89],
    signer: data.slice(90, 110),
    payload: data.slice(HEADER_SIZE, HEADER_SIZE + size),
    signature: data.slice(HEADER_SIZE + size),
    header: data.slice(0, HEADER_SIZE),
    raw: data,
    hash: keccak_256(data.subarray(0, HEADER_SIZE + size)),
  };
}

export const signingDigest = (hashed) => keccak_256(concat(SIGN_DOMAIN, hashed));

/** The address whose key signed `hashed` (a stream id or message hash); null if none does. */
export function signerOf(hashed, signature) {
  const big = (b) => BigInt("0x" + toHex(b));
  const r = big(signature.subarray(0, 32));
  const s = big(signature.subarray(32, 64));
  const v = signature[64];
  // Python's Signature refuses these before recovering: the same here.
  if (!(r > 0n && r < SECP256K1_N && s > 0n && s <= SECP256K1_N / 2n && (v === 27 || v === 28))) return null;
  try {
    const sig = secp256k1.Signature.fromBytes(concat(Uint8Array.of(v - 27), signature.subarray(0, 64)), "recovered");
    const point = sig.recoverPublicKey(signingDigest(hashed));
    return keccak_256(point.toBytes(false).subarray(1)).slice(12);
  } catch {
    return null;
  }
}

const subtle = () => globalThis.crypto.subtle;

async function aesOpen(keyBytes, iv, data, aad) {
  const key = await subtle().importKey("raw", keyBytes, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, data));
}

/** The plaintext of a sealed payload (nonce 12 | ciphertext and tag 16); null if `key` does not open it. */
export async function openPayload(key, header, sealed) {
  if (sealed.length < 28 || key.length !== 32) return null;
  try {
    return await aesOpen(key, sealed.subarray(0, 12), sealed.subarray(12), header);
  } catch {
    return null;
  }
}

/** The key a grant wraps for a subscriber ({privateKey: X25519 CryptoKey, publicKey: 32 bytes});
 * null if it wraps none for it; throws if the wrap names it but does not open. */
async function unwrapKey(grant, streamId, epoch, subscriber) {
  const mine = grant.wraps.find((w) => equal(fromHex(w.subscriber), subscriber.publicKey));
  if (!mine) return null;
  try {
    const eph = fromHex(grant.ephemeral);
    const theirs = await subtle().importKey("raw", eph, { name: "X25519" }, false, []);
    const shared = await subtle().deriveBits({ name: "X25519", public: theirs }, subscriber.privateKey, 256);
    const ikm = await subtle().importKey("raw", shared, "HKDF", false, ["deriveBits"]);
    const info = concat(WRAP_INFO, u32(epoch), eph, subscriber.publicKey);
    const secret = new Uint8Array(await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt: streamId, info }, ikm, 256));
    return await aesOpen(secret, new Uint8Array(12), fromHex(mine.wrapped), concat(streamId, u32(epoch)));
  } catch {
    throw new Error("the key wrapped for this subscriber does not open");
  }
}

const problemOf = (code, position, index, detail) => ({ code, position, index, detail });

/** A message's place as people read it: they count from 1, the stream indexes from 0
 * ("message 3 (index 2)"), as Python's stream_verify.message_place says it. */
export const messagePlace = (position) => `message ${Number(position) + 1} (index ${position})`;

export function describe(problem) {
  const where = problem.position === null ? "the root" : messagePlace(problem.position);
  return `${problem.code} at ${where}: ${problem.detail}`;
}

function checkRoot(root, streamId) {
  const problem = (code, detail) => problemOf(code, null, null, detail);
  const signer = signerOf(root.streamId, root.signature);
  if (signer === null || !equal(signer, root.author)) return problem("bad_signature", "the root is not signed by its author");
  if (!Object.values(ACCESS).includes(root.access)) return problem("malformed", `unknown access mode ${root.access}`);
  if (![...root.purpose].every((ch) => ch >= " " && ch <= "~")) return problem("malformed", "the purpose is not printable ASCII");
  if (streamId && !equal(root.streamId, streamId))
    return problem("wrong_stream", `the root is of stream 0x${toHex(root.streamId)}, not 0x${toHex(streamId)}`);
  return null;
}

function claimedIndex(raw, streamId) {
  try {
    const m = decodeMessage(raw);
    return equal(m.streamId, streamId) ? m.index : null;
  } catch {
    return null;
  }
}

/**
 * Verify a stream: `root` and `messages` are bytes (Uint8Array); `key` a restricted stream's
 * key (bytes), or a Map of keys by epoch; `subscriber` {privateKey, publicKey} opens the keys
 * wrapped for it; `streamId` the stream asked for; `count` how many messages exist.
 * Returns {root, messages: [{message, content}], problem, ok}; never throws over its input.
 */
export async function verify(root, messages, { key = null, subscriber = null, streamId = null, count = null, payloads = true } = {}) {
  let decodedRoot;
  try {
    decodedRoot = decodeRoot(root);
  } catch (exc) {
    if (!(exc instanceof StreamInvalid)) throw exc;
    return result(null, [], problemOf(exc.code, null, null, exc.message));
  }
  const rootProblem = checkRoot(decodedRoot, streamId);
  if (rootProblem) return result(decodedRoot, [], rootProblem);
  const walk = new Walk(decodedRoot, messages, key, subscriber, payloads);
  let problem = await walk.run();
  const verified = walk.verified;
  if (problem === null && count !== null && verified.length < count)
    problem = problemOf("truncated", verified.length, verified.length,
      `${count} messages expected, the stream ends after ${verified.length}`);
  return result(decodedRoot, verified, problem);
}

const result = (root, messages, problem) => ({ root, messages, problem, ok: problem === null });

class Walk {
  constructor(root, items, key, subscriber, payloads) {
    this.root = root;
    this.items = items;
    this.subscriber = subscriber;
    this.payloads = payloads;
    this.keys = new Map(key instanceof Map ? key : key ? [[0, key]] : []);
    this.verified = [];
    this.epoch = -1; // no keys message yet (a subscribers stream starts with one)
  }

  async run() {
    for (let position = 0; position < this.items.length; position++) {
      const problem = await this.step(position, this.items[position]);
      if (problem) return problem;
    }
    return null;
  }

  async step(position, raw) {
    let message;
    try {
      message = decodeMessage(raw);
    } catch (exc) {
      if (!(exc instanceof StreamInvalid)) throw exc;
      return problemOf(exc.code, position, null, exc.message);
    }
    const problem = (code, detail) => problemOf(code, position, Number(message.index), detail);
    const signer = signerOf(message.hash, message.signature);
    if (signer === null || !equal(signer, message.signer)) return problem("bad_signature", "the message is not what its signer signed");
    if (!equal(signer, this.root.author))
      return problem("wrong_author", `signed by 0x${toHex(message.signer)}, not by the stream's author 0x${toHex(this.root.author)}`);
    if (!equal(message.streamId, this.root.streamId)) return problem("wrong_stream", `the message is of stream 0x${toHex(message.streamId)}`);
    const found = this.place(position, message);
    if (found) return problem(...found);
    const content = await this.content(message);
    if (Array.isArray(content)) return problem(...content);
    this.verified.push({ message, content });
    return null;
  }

  place(position, message) {
    const expected = BigInt(this.verified.length);
    if (message.index > expected) {
      const later = this.items.slice(position + 1).some((raw) => claimedIndex(raw, this.root.streamId) === expected);
      if (later) return ["reordered", `index ${message.index} comes before ${expected}`];
      return ["gap", `index ${expected} is missing (next is ${message.index})`];
    }
    if (message.index < expected) {
      const at = Number(message.index);
      if (equal(this.verified[at].message.hash, message.hash)) return ["duplicate", `message ${at} again`];
      this.verified.splice(at); // two messages claim it: neither is trusted
      return ["inserted", `a second, different message at index ${at}`];
    }
    const prev = this.verified.length ? this.verified[this.verified.length - 1].message : null;
    if (!equal(message.prev, prev ? prev.hash : this.root.streamId)) return ["broken_chain", "the prev hash is not the message before"];
    if (prev && message.timestampMs < prev.timestampMs) return ["time_backwards", "the timestamp is before the message before"];
    return null;
  }

  async content(message) {
    if (message.kind === KIND.KEYS) return this.keysMessage(message);
    if (message.kind !== KIND.RECORD) return ["malformed", `unknown message kind ${message.kind}`];
    const access = this.root.access;
    if (access === ACCESS.PUBLIC) {
      if (message.epoch !== 0) return ["bad_epoch", "a public stream has no key epochs"];
      return record(message.payload);
    }
    if (access === ACCESS.RESTRICTED && message.epoch !== 0) return ["bad_epoch", "a restricted stream has one key (epoch 0)"];
    if (access === ACCESS.SUBSCRIBERS && message.epoch !== this.epoch)
      return ["bad_epoch", `epoch ${message.epoch}, the current is ${this.epoch}`];
    if (!this.payloads) return null;
    const key = this.keys.get(message.epoch);
    if (!key) return ["missing_key", `no key of epoch ${message.epoch} to read it with`];
    const plain = await openPayload(key, message.header, message.payload);
    if (plain === null) return ["wrong_key", `the key of epoch ${message.epoch} does not open it`];
    return record(plain);
  }

  async keysMessage(message) {
    if (this.root.access !== ACCESS.SUBSCRIBERS) return ["malformed", "keys messages belong to streams of subscribers"];
    if (message.epoch !== this.epoch && message.epoch !== this.epoch + 1)
      return ["bad_epoch", `keys of epoch ${message.epoch} after ${this.epoch}`];
    let grant;
    try {
      grant = decodeKeyGrant(message.payload);
    } catch (exc) {
      if (!(exc instanceof BadPayload)) throw exc;
      return ["bad_payload", exc.message];
    }
    this.epoch = message.epoch;
    if (this.subscriber && !this.keys.has(message.epoch)) {
      let key;
      try {
        key = await unwrapKey(grant, this.root.streamId, message.epoch, this.subscriber);
      } catch (exc) {
        return ["wrong_key", exc.message];
      }
      if (key) this.keys.set(message.epoch, key);
    }
    return grant;
  }
}

function record(payload) {
  try {
    return decodeRecord(payload);
  } catch (exc) {
    if (!(exc instanceof BadPayload)) throw exc;
    return ["bad_payload", exc.message];
  }
}
