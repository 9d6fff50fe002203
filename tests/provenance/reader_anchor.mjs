// Runs the web reader's anchor checks (web/reader/anchor.js, as the page bundles it) in Node
// on what Python made, so the tests compare them with m2mpay.provenance's.
// stdin: [{"leaves": [hex], "proofs": [[hex]], "forged": [[hex]]}          Merkle trees
//         | {"leaf": [stream hex, index, hash hex]}                          a stream leaf
//         | {"file": hex, "key": hex|null}]                                  a stream file
// stdout: one answer a case: {root, held: [bool], forgedHeld: [bool]} | {leaf} |
//         {ok, code, problem: {code, anchor, index}|null, heads: [index], blocks: [n|null]}
import { readFileSync } from "node:fs";
import { anchorOf, checkAnchors, merkleRoot, streamLeaf, verifyMerkleProof } from "../../web/reader/anchor.js";
import { readStreamFile } from "../../web/reader/stream_file.js";
import { StreamInvalid, fromHex, toHex, verify } from "../../web/reader/verify.js";

function tree(c) {
  const leaves = c.leaves.map(fromHex);
  const root = merkleRoot(leaves);
  const held = (proofs) => proofs.map((siblings, i) => verifyMerkleProof(leaves[i], i, leaves.length, siblings.map(fromHex), root));
  return { root: toHex(root), held: held(c.proofs), forgedHeld: held(c.forged) };
}

async function file(c) {
  let read;
  try {
    read = readStreamFile(fromHex(c.file));
  } catch (exc) {
    if (!(exc instanceof StreamInvalid)) throw exc;
    return { ok: false, code: exc.code, problem: null, heads: [], blocks: [] };
  }
  const v = await verify(read.root, read.messages, { key: c.key ? fromHex(c.key) : null, streamId: read.streamId, count: read.count });
  if (!v.ok) return { ok: false, code: v.problem.code, problem: null, heads: [], blocks: [] };
  const anchors = checkAnchors(read.anchors, v);
  const problem = anchors.problem && { code: anchors.problem.code, anchor: anchors.problem.anchor, index: anchors.problem.index };
  return {
    ok: true,
    code: null,
    problem,
    heads: anchors.heads.map((h) => h.index),
    blocks: v.messages.map((_, i) => anchorOf(anchors.heads, i)?.blockNumber ?? null),
  };
}

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const c of cases) {
  if (c.leaves) out.push(tree(c));
  else if (c.leaf) out.push({ leaf: toHex(streamLeaf(fromHex(c.leaf[0]), c.leaf[1], fromHex(c.leaf[2]))) });
  else out.push(await file(c));
}
process.stdout.write(JSON.stringify(out));
