// The records a provenance stream's payloads hold, checked as m2mpay.provenance.stream_records
// checks them: a payload is a record only if it is the canonical JSON of one (its known
// fields, each of its type, keys sorted, no spaces: what JSON.stringify gives for the
// parsed record with its keys sorted). No DOM: the web reader and later apps share it.
import { keccak_256 } from "@noble/hashes/sha3.js";

export const MAX_PAYLOAD_SIZE = 16 * 1024 + 128;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const UINT256 = 1n << 256n;
const UNITS = ["Wh", "s", "message"];
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A payload that is not a record (or key grant); `code` is always bad_payload. */
export class BadPayload extends Error {}

const fail = (path, what) => {
  throw new BadPayload(`${path}: ${what}`);
};

export function checksumAddress(lowerHex) {
  const digest = keccak_256(new TextEncoder().encode(lowerHex));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (digest[i >> 1] >> (i % 2 ? 0 : 4)) & 0xf;
    out += nibble >= 8 ? lowerHex[i].toUpperCase() : lowerHex[i];
  }
  return out;
}

const uint53 = (v, p) => (Number.isSafeInteger(v) && v >= 0 ? v : fail(p, "not an integer below 2**53"));
const uint256 = (v, p) => {
  if (typeof v !== "string" || !/^(0|[1-9][0-9]{0,79})$/.test(v) || BigInt(v) >= UINT256) fail(p, "not a 256-bit amount");
  return v;
};
const hexBytes = (size, most) => (v, p) => {
  if (typeof v !== "string" || !/^0x([0-9a-f]{2})*$/.test(v)) fail(p, "not 0x-hex");
  const n = (v.length - 2) / 2;
  if ((size !== null && n !== size) || (most !== null && n > most)) fail(p, `not ${size ?? "at most " + most} bytes`);
  return v;
};
const bytes32 = hexBytes(32, null);
const blob = hexBytes(null, 1024);
const address = (v, p) => {
  if (typeof v !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(v)) fail(p, "not an address");
  if (checksumAddress(v.slice(2).toLowerCase()) !== v) fail(p, "not an EIP-55 address");
  return v;
};
// No lone surrogate: Python's JSON refuses them (String.prototype.isWellFormed is too new).
const wellFormed = (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
const text = (v, p) => {
  if (typeof v !== "string" || !wellFormed(v)) fail(p, "not text");
  if ([...v].length > 1000) fail(p, "longer than 1000 characters");
  return v;
};
const unit = (v, p) => (UNITS.includes(v) ? v : fail(p, "not a meter unit"));
const signature = (v, p) => {
  hexBytes(65, null)(v, p);
  const r = BigInt("0x" + v.slice(2, 66));
  const s = BigInt("0x" + v.slice(66, 130));
  const recovery = parseInt(v.slice(130), 16);
  if (!(r > 0n && r < SECP256K1_N && s > 0n && s <= SECP256K1_N / 2n && (recovery === 27 || recovery === 28)))
    fail(p, "not a low-s signature with v 27 or 28");
  return v;
};
const object = (fields) => (v, p) => {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(p, "not an object");
  const names = Object.keys(v).sort();
  const wanted = Object.keys(fields).sort();
  if (names.join() !== wanted.join()) fail(p, `fields ${names.join(", ")}, not ${wanted.join(", ")}`);
  for (const name of wanted) fields[name](v[name], `${p}.${name}`);
  return v;
};
const list = (item) => (v, p) => {
  if (!Array.isArray(v) || v.length > 10_000) fail(p, "not a list");
  v.forEach((x, i) => item(x, `${p}[${i}]`));
  return v;
};
const totals = object({ units: uint256, value: uint256, paid: uint256 });

export const RECORD_TYPES = {
  "prov.session": { session: bytes32, channel: bytes32, chain_id: uint53, hub: address, pay_to: address, buyer: address, unit },
  "prov.price": { unit, price: uint256, token: address },
  "prov.meter": { unit, delta: uint53, total: uint53, interval_ms: uint53 },
  "prov.payment": { channel: bytes32, payer: address, amount: uint256, transferred: uint256 },
  "prov.receipt": {
    session: bytes32, channel: bytes32, chain_id: uint53, hub: address, forward: totals, backward: totals,
    started_ms: uint53, stopped_ms: uint53, signatures: list(signature),
  },
  "prov.note": { text },
};
export const MAX_WRAPS = 64;
const KEYS_TYPE = { "prov.keys": { ephemeral: bytes32, wraps: list(object({ subscriber: bytes32, wrapped: blob })) } };

const sortKeys = (v) =>
  Array.isArray(v) ? v.map(sortKeys)
  : v !== null && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  : v;

function decode(bytes, types, what) {
  if (bytes.length > MAX_PAYLOAD_SIZE) fail(what, `at most ${MAX_PAYLOAD_SIZE} bytes`);
  let source, value;
  try {
    source = utf8.decode(bytes);
    value = JSON.parse(source);
  } catch {
    fail(what, "not JSON text");
  }
  if (value === null || typeof value !== "object" || !Object.hasOwn(types, value.t)) fail(what, "of no known type");
  const { t, ...fields } = value;
  object(types[t])(fields, t);
  if (JSON.stringify(sortKeys(value)) !== source) fail(what, "not in its canonical JSON form");
  return value;
}

/** The record a payload holds (parsed JSON, amounts as decimal strings); BadPayload if none. */
export const decodeRecord = (bytes) => decode(bytes, RECORD_TYPES, "record");

/** The key grant a keys message holds; BadPayload if none. */
export function decodeKeyGrant(bytes) {
  const grant = decode(bytes, KEYS_TYPE, "key grant");
  if (grant.wraps.length > MAX_WRAPS || grant.wraps.some((w) => w.wrapped.length !== 2 + 2 * 48))
    fail("key grant", `at most ${MAX_WRAPS} wraps of 48 bytes`);
  return grant;
}
