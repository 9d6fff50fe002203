// Anchor proofs of a provenance stream, checked in the browser as m2mpay.provenance does it
// offline (anchor_proof.py: decode_anchor_proof, AnchorProof.check_offline; stream_file.py:
// StreamFile.check_anchors): the same bounds, the same leaf (stream_leaf) and Merkle nodes
// (crypto/merkle.py), the same problem codes. A proof that holds offline says the file's
// head hashes lead to the root it names, in the block and transaction it names; that the
// chain holds that root there is checked by checkOnChain, given a ledger's JSON-RPC URL,
// asking what verify_anchor asks (anchoring.check_anchored): the chain id, code at the
// anchor contract, its Anchored log of (submitter, STREAMS_SOURCE, root) in that block and
// transaction, with the proof's batch and count. No DOM.
import { keccak_256 } from "@noble/hashes/sha3.js";
import { StreamInvalid, checksumAddress, concat, decodeMessage, fromHex, signerOf, toHex } from "./verify.js";

const checksumOf = (bytes) => checksumAddress(toHex(bytes));

export const PROOF_VERSION = 1;
// AnchorProblem in provenance/anchoring.py; untrusted_submitter is not asked here (the
// reader trusts no list of submitters).
export const ANCHOR_PROBLEM_CODES = ["forged_proof", "not_anchored", "wrong_root", "wrong_block", "wrong_chain"];
const MAX_CHAIN = 100_000;
const MAX_SIBLINGS = 64;
const MAX_MESSAGE_SIZE = 16 * 1024 + 128 + 114 + 65;
const UINT64 = 1n << 64n;
const KEYS = [
  "version", "message", "chain", "batch", "position", "count", "siblings", "root", "anchor",
  "chain_id", "submitter", "tx_hash", "block_number",
].sort().join();
const ascii = new TextEncoder();
const STREAM_LEAF_DOMAIN = ascii.encode("m2mpay/v1/stream-head");
const NODE = Uint8Array.of(0x01);
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** The Merkle leaf of a stream head (records.stream_leaf): message `index` of the stream, whose hash is `hash`. */
export const streamLeaf = (streamId, index, hash) => keccak_256(concat(STREAM_LEAF_DOMAIN, streamId, u64(index), hash));

const node = (left, right) => keccak_256(concat(NODE, left, right));

/** The root of the tree over `leaves` (crypto/merkle.merkle_root): an odd level carries its last node up. */
export function merkleRoot(leaves) {
  if (!leaves.length) throw new Error("a Merkle tree needs at least one leaf");
  let level = leaves;
  while (level.length > 1) {
    const up = [];
    for (let i = 0; i + 1 < level.length; i += 2) up.push(node(level[i], level[i + 1]));
    if (level.length % 2) up.push(level[level.length - 1]);
    level = up;
  }
  return level[0];
}

/** Whether `leaf` is leaf `index` of a `count`-leaf tree with `root` (crypto/merkle.verify_merkle_proof). */
export function verifyMerkleProof(leaf, index, count, siblings, root) {
  let i = BigInt(index);
  let n = BigInt(count);
  if (!(i >= 0n && i < n) || leaf.length !== 32) return false;
  let hash = leaf;
  let next = 0;
  while (n > 1n) {
    if (i % 2n) {
      if (next >= siblings.length) return false;
      hash = node(siblings[next++], hash);
    } else if (i + 1n < n) {
      if (next >= siblings.length) return false;
      hash = node(hash, siblings[next++]);
    }
    i /= 2n;
    n = (n + 1n) / 2n;
  }
  return next === siblings.length && equal(hash, root);
}

function bytesField(value, what, least, most) {
  if (typeof value !== "string" || value.slice(0, 2) !== "0x" || value.length > 2 + 2 * most)
    throw new StreamInvalid("malformed", `${what} is not 0x-hex of at most ${most} bytes`);
  let data;
  try {
    data = fromHex(value);
  } catch {
    throw new StreamInvalid("malformed", `${what} is not hexadecimal`);
  }
  if (data.length < least) throw new StreamInvalid("malformed", `${what} is at least ${least} bytes`);
  return data;
}

// JSON numbers past 2**53 are not exact in JavaScript: refused as malformed, where Python
// (exact to 2**64) would read them and find the proof forged; no real proof comes near.
function intField(value, what) {
  if (!Number.isSafeInteger(value) || value < 0 || BigInt(value) >= UINT64)
    throw new StreamInvalid("malformed", `${what} is an unsigned 64-bit integer`);
  return value;
}

function listField(value, what, most) {
  if (!Array.isArray(value) || value.length > most) throw new StreamInvalid("malformed", `${what} is a list of at most ${most}`);
  return value;
}

/** The proof a JSON value holds (anchor_proof.decode_anchor_proof); StreamInvalid (malformed,
 * unknown_version) if it is not one. What it proves is not checked here. */
export function decodeAnchorProof(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new StreamInvalid("malformed", "an anchor proof is a JSON object");
  if (Object.hasOwn(value, "version") && value.version !== PROOF_VERSION)
    throw new StreamInvalid("unknown_version", `anchor proof version ${JSON.stringify(value.version)}`);
  if (Object.keys(value).sort().join() !== KEYS)
    throw new StreamInvalid("malformed", "an anchor proof has exactly the fields of version 1");
  return {
    message: bytesField(value.message, "message", 0, MAX_MESSAGE_SIZE),
    chain: listField(value.chain, "chain", MAX_CHAIN).map((m) => bytesField(m, "a chain message", 0, MAX_MESSAGE_SIZE)),
    batch: intField(value.batch, "batch"),
    position: intField(value.position, "position"),
    count: intField(value.count, "count"),
    siblings: listField(value.siblings, "siblings", MAX_SIBLINGS).map((s) => bytesField(s, "a sibling", 32, 32)),
    root: bytesField(value.root, "root", 32, 32),
    anchor: bytesField(value.anchor, "anchor", 20, 20),
    chainId: intField(value.chain_id, "chain_id"),
    submitter: bytesField(value.submitter, "submitter", 20, 20),
    txHash: value.tx_hash === null ? null : bytesField(value.tx_hash, "tx_hash", 32, 32),
    blockNumber: value.block_number === null ? null : intField(value.block_number, "block_number"),
  };
}

/** [the message proved or null, why the proof does not lead to its root or null] (AnchorProof.check_offline). */
export function checkOffline(proof) {
  let message;
  let chain;
  try {
    message = decodeMessage(proof.message);
    chain = proof.chain.map(decodeMessage);
  } catch (exc) {
    if (!(exc instanceof StreamInvalid)) throw exc;
    return [null, `a message of the proof does not decode: ${exc.message}`];
  }
  // The hash leaves the signature out: without this the proved bytes could carry any signature.
  const signer = signerOf(message.hash, message.signature);
  if (signer === null || !equal(signer, message.signer)) return [message, "the message's signature is not its signer's"];
  let head = message;
  for (const after of chain) {
    if (!(equal(after.streamId, head.streamId) && after.index === head.index + 1n && equal(after.prev, head.hash)))
      return [message, `message ${after.index} does not follow ${head.index}`];
    head = after;
  }
  const leaf = streamLeaf(head.streamId, head.index, head.hash);
  if (!verifyMerkleProof(leaf, proof.position, proof.count, proof.siblings, proof.root))
    return [message, `head ${head.index}'s path does not lead to the root`];
  return [message, null];
}

/**
 * What a file's anchor proofs prove of the stream `verified` (verify's result, every message
 * verified), offline, as StreamFile.check_anchors does: each proof's head must be one of the
 * verified messages (this stream's, at an index verified, the same hash) and its path must
 * lead to its root. Returns {heads: [{index, proof}], problem}: the proofs that hold, in file
 * order; `problem` {code, anchor, index, detail} names the first that does not (anchor: its
 * place among the file's anchors, from 0; index: the message it claims, null if none), and
 * then `heads` is empty: a file with a forged proof shows nothing as anchored.
 */
export function checkAnchors(anchors, verified) {
  const heads = [];
  const streamId = verified.root.streamId;
  const count = verified.messages.length;
  for (let at = 0; at < anchors.length; at++) {
    const proof = anchors[at];
    const forged = (index, detail) => ({ heads: [], problem: { code: "forged_proof", anchor: at, index, detail: `anchor ${at + 1} of the file: ${detail}` } });
    let head;
    try {
      head = decodeMessage(proof.message);
    } catch (exc) {
      if (!(exc instanceof StreamInvalid)) throw exc;
      return forged(null, `its head does not decode: ${exc.message}`);
    }
    const index = Number(head.index);
    if (!equal(head.streamId, streamId)) return forged(index, `its head is of stream 0x${toHex(head.streamId)}`);
    if (head.index >= BigInt(count))
      return forged(index, `its head is message ${head.index + 1n} (index ${head.index}), beyond the ${count} verified`);
    if (!equal(head.hash, verified.messages[index].message.hash))
      return forged(index, `its head is not the stream's message ${index + 1} (index ${index})`);
    const [, detail] = checkOffline({ ...proof, chain: [] });
    if (detail !== null) return forged(index, detail);
    heads.push({ index, proof });
  }
  return { heads, problem: null };
}

/** The proof that message `index` was anchored: the first of `heads` (in file order) at or
 * after it (StreamFile.anchor_proof); null if none covers it, or if it names no transaction. */
export function anchorOf(heads, index) {
  const found = heads.find((h) => index <= h.index);
  return found && found.proof.txHash !== null && found.proof.blockNumber !== null ? found.proof : null;
}

export const txText = (proof) => `0x${toHex(proof.txHash)}`;

// The Anchored event of contracts/TelemetryAnchor.vy, and the source stream heads are
// anchored under (anchoring.STREAMS_SOURCE: an address no key holds).
const ANCHORED_TOPIC = "0x" + toHex(keccak_256(ascii.encode("Anchored(address,address,bytes32,uint64,uint64)")));
const STREAMS_SOURCE = keccak_256(ascii.encode("m2mpay/v1/stream-heads")).slice(12);
const word = (address) => "0x" + "00".repeat(12) + toHex(address);
const quantity = (n) => "0x" + BigInt(n).toString(16);

/** A ledger that could not be asked (unreachable, or answered with an error): the proof is
 * neither confirmed nor refuted. */
export class ChainUnreachable extends Error {}

/** A JSON-RPC client of `url` (fetch, no credentials): call(method, params) → result. */
export function jsonRpc(url) {
  let id = 0;
  return async (method, params) => {
    let answer;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
        cache: "no-store",
        credentials: "omit",
      });
      if (!response.ok) throw new Error(`the ledger answered HTTP ${response.status}`);
      answer = await response.json();
    } catch (exc) {
      throw new ChainUnreachable(`${method}: ${exc.message}`);
    }
    if (answer === null || typeof answer !== "object" || answer.error || !("result" in answer))
      throw new ChainUnreachable(`${method}: ${answer?.error?.message ?? "no result"}`);
    return answer.result;
  };
}

function logBatch(log) {
  // data: first_seq, count, each a uint64 in a 32-byte word.
  const data = typeof log.data === "string" ? fromHex(log.data) : new Uint8Array();
  if (data.length !== 64) throw new ChainUnreachable("eth_getLogs: an Anchored log of another shape");
  const view = new DataView(data.buffer, data.byteOffset);
  return { firstSeq: view.getBigUint64(24), count: view.getBigUint64(56) };
}

/**
 * Whether the chain behind `call` (jsonRpc's) holds `proof` (decodeAnchorProof's, offline
 * checked): null, or the problem {code, detail} verify_anchor names for it. Throws
 * ChainUnreachable when the ledger cannot be asked: then nothing is known.
 */
export async function checkOnChain(proof, call) {
  const chainId = BigInt(await call("eth_chainId", []));
  if (chainId !== BigInt(proof.chainId)) return { code: "wrong_chain", detail: `chain ${proof.chainId}, not ${chainId}` };
  if (proof.blockNumber === null || proof.txHash === null) return { code: "not_anchored", detail: "the proof names no transaction" };
  const anchor = `0x${toHex(proof.anchor)}`;
  const code = await call("eth_getCode", [anchor, "latest"]);
  if (typeof code !== "string" || code.replace(/^0x/, "") === "")
    return { code: "wrong_chain", detail: `no contract at ${checksumOf(proof.anchor)} on this chain` };
  const block = proof.blockNumber;
  if (BigInt(block) > BigInt(await call("eth_blockNumber", [])))
    return { code: "wrong_block", detail: `block ${block} is not on the chain yet` };
  const root = `0x${toHex(proof.root)}`;
  const anchored = async (fromBlock, toBlock, withRoot) => {
    const topics = [ANCHORED_TOPIC, word(proof.submitter), word(STREAMS_SOURCE)];
    if (withRoot) topics.push(root);
    const logs = await call("eth_getLogs", [{ address: anchor, fromBlock, toBlock, topics }]);
    if (!Array.isArray(logs)) throw new ChainUnreachable("eth_getLogs: not a list of logs");
    return logs.filter((log) => typeof log.address === "string" && log.address.toLowerCase() === anchor);
  };
  const tx = `0x${toHex(proof.txHash)}`;
  for (const log of await anchored(quantity(block), quantity(block), true)) {
    if (String(log.transactionHash).toLowerCase() !== tx) continue;
    const { firstSeq, count } = logBatch(log);
    if (firstSeq !== BigInt(proof.batch) || count !== BigInt(proof.count))
      return { code: "forged_proof", detail: `the chain anchors batch ${firstSeq} of ${count} leaves, the proof says ${proof.batch} of ${proof.count}` };
    return null;
  }
  const elsewhere = await anchored("0x0", "latest", true);
  if (elsewhere.length) {
    const where = elsewhere[0];
    return { code: "wrong_block", detail: `the root is anchored in block ${BigInt(where.blockNumber)}, tx ${where.transactionHash}` };
  }
  if ((await anchored(quantity(block), quantity(block), false)).length)
    return { code: "wrong_root", detail: `block ${block} anchors other roots` };
  return { code: "not_anchored", detail: "the chain holds no anchor of this root" };
}
