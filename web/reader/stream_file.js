// A provenance stream file (JSON lines, m2mpay.provenance.stream_file), read with the same
// bounds and the same problem codes as Python's read_stream_file. No DOM.
import { decodeAnchorProof } from "./anchor.js";
import { StreamInvalid, fromHex } from "./verify.js";

export const FILE_FORMAT = "m2mpay-provenance-stream";
const MAX_FILE_MESSAGES = 1_000_000;
const MAX_ROOT_SIZE = 453;
const MAX_MESSAGE_SIZE = 16 * 1024 + 128 + 114 + 65;
const MAX_LINE = 2 * MAX_MESSAGE_SIZE + 64;
const MAX_HEADER_LINE = 2 * MAX_ROOT_SIZE + 400;
const MAX_SIBLINGS = 64;
// An anchor holds a head's message and its Merkle path: a line a little longer.
const MAX_ANCHOR_LINE = 2 * MAX_MESSAGE_SIZE + 70 * MAX_SIBLINGS + 1000;

function field(value, what, limit) {
  if (typeof value !== "string" || !value.startsWith("0x") || value.length > 2 + 2 * limit)
    throw new StreamInvalid("malformed", `${what} is not 0x-hex of at most ${limit} bytes`);
  return fromHex(value);
}

function* lines(bytes, bodyLimit) {
  let at = 0;
  let number = 1;
  while (at < bytes.length) {
    const end = bytes.indexOf(0x0a, at);
    const limit = number === 1 ? MAX_HEADER_LINE : bodyLimit();
    const stop = end < 0 ? bytes.length : end + 1;
    if (stop - at > limit) throw new StreamInvalid("malformed", `line ${number} is longer than ${limit} bytes`);
    if (end < 0) throw new StreamInvalid("truncated", `line ${number} is cut short`);
    let value;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(at, end)));
    } catch {
      throw new StreamInvalid("malformed", `line ${number} is not JSON`);
    }
    yield value;
    at = stop;
    number += 1;
  }
}

/** The stream a file's bytes hold, unverified: {streamId, count, root, messages, anchors};
 * StreamInvalid (malformed, unknown_version, truncated) if it is not such a file. Version 2
 * files carry anchor proofs after the messages: decoded here (anchor.js), as Python reads
 * them, what they prove checked by checkAnchors once the stream verified. */
export function readStreamFile(bytes) {
  let limit = MAX_LINE;
  const it = lines(bytes, () => limit);
  const first = it.next();
  const header = first.done ? null : first.value;
  if (header === null || typeof header !== "object" || header.format !== FILE_FORMAT)
    throw new StreamInvalid("malformed", "not a provenance stream file");
  const version = header.version;
  if (version !== 1 && version !== 2) throw new StreamInvalid("unknown_version", `stream file version ${JSON.stringify(version)}`);
  const anchorCount = version >= 2 ? (header.anchors ?? 0) : 0;
  if (!Number.isInteger(anchorCount) || anchorCount < 0 || anchorCount > MAX_FILE_MESSAGES)
    throw new StreamInvalid("malformed", `anchors is 0 to ${MAX_FILE_MESSAGES}`);
  const count = header.count;
  if (!Number.isInteger(count) || count < 0 || count > MAX_FILE_MESSAGES)
    throw new StreamInvalid("malformed", `count is 0 to ${MAX_FILE_MESSAGES}`);
  const streamId = field(header.stream, "stream", 32);
  const root = field(header.root, "root", MAX_ROOT_SIZE);
  if (anchorCount) limit = MAX_ANCHOR_LINE;
  const messages = [];
  const anchors = [];
  for (const line of it) {
    const number = messages.length + anchors.length + 2;
    const isObject = line !== null && typeof line === "object" && !Array.isArray(line);
    if (isObject && version >= 2 && Object.keys(line).join() === "anchor") {
      if (anchors.length >= anchorCount) throw new StreamInvalid("malformed", `line ${number}: more anchors than the header's`);
      const proof = decodeAnchorProof(line.anchor);
      if (proof.chain.length) throw new StreamInvalid("malformed", `line ${number}: an anchor in a file has no chain`);
      anchors.push(proof);
      continue;
    }
    if (anchors.length || messages.length >= MAX_FILE_MESSAGES)
      throw new StreamInvalid("malformed", `line ${number}: no message after the anchors`);
    if (!isObject || Object.keys(line).join() !== "message")
      throw new StreamInvalid("malformed", `line ${number} is not a message`);
    messages.push(field(line.message, "message", MAX_MESSAGE_SIZE));
  }
  if (anchors.length !== anchorCount)
    throw new StreamInvalid("truncated", `the header says ${anchorCount} anchors, got ${anchors.length}`);
  return { streamId, count, root, messages, anchors };
}
