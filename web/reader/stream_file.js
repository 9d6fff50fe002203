// A provenance stream file (JSON lines, m2mpay.provenance.stream_file), read with the same
// bounds and the same problem codes as Python's read_stream_file. No DOM.
import { StreamInvalid, fromHex } from "./verify.js";

export const FILE_FORMAT = "m2mpay-provenance-stream";
const MAX_FILE_MESSAGES = 1_000_000;
const MAX_ROOT_SIZE = 453;
const MAX_MESSAGE_SIZE = 16 * 1024 + 128 + 114 + 65;
const MAX_LINE = 2 * MAX_MESSAGE_SIZE + 64;
const MAX_HEADER_LINE = 2 * MAX_ROOT_SIZE + 400;

function field(value, what, limit) {
  if (typeof value !== "string" || !value.startsWith("0x") || value.length > 2 + 2 * limit)
    throw new StreamInvalid("malformed", `${what} is not 0x-hex of at most ${limit} bytes`);
  return fromHex(value);
}

function* lines(bytes) {
  let at = 0;
  let number = 1;
  while (at < bytes.length) {
    const end = bytes.indexOf(0x0a, at);
    const limit = number === 1 ? MAX_HEADER_LINE : MAX_LINE;
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

/** The stream a file's bytes hold, unverified: {streamId, count, root, messages};
 * StreamInvalid (malformed, unknown_version, truncated) if it is not such a file. */
export function readStreamFile(bytes) {
  const it = lines(bytes);
  const first = it.next();
  const header = first.done ? null : first.value;
  if (header === null || typeof header !== "object" || header.format !== FILE_FORMAT)
    throw new StreamInvalid("malformed", "not a provenance stream file");
  if (header.version !== 1) throw new StreamInvalid("unknown_version", `stream file version ${JSON.stringify(header.version)}`);
  const count = header.count;
  if (!Number.isInteger(count) || count < 0 || count > MAX_FILE_MESSAGES)
    throw new StreamInvalid("malformed", `count is 0 to ${MAX_FILE_MESSAGES}`);
  const streamId = field(header.stream, "stream", 32);
  const root = field(header.root, "root", MAX_ROOT_SIZE);
  const messages = [];
  for (const line of it) {
    if (messages.length >= MAX_FILE_MESSAGES) throw new StreamInvalid("malformed", `a file holds at most ${MAX_FILE_MESSAGES} messages`);
    if (line === null || typeof line !== "object" || Array.isArray(line) || Object.keys(line).join() !== "message")
      throw new StreamInvalid("malformed", `line ${messages.length + 2} is not a message`);
    messages.push(field(line.message, "message", MAX_MESSAGE_SIZE));
  }
  return { streamId, count, root, messages };
}
