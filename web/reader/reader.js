// The web reader page: a QR code (camera, uploaded image or the URL's fragment) fills in the
// fields, the stream file is fetched and verified in the browser (verify.js), and its records
// shown. A stream is shown as verified only when all of it verified; otherwise the problem is
// named with the message it stopped at, and nothing is marked verified. The file's anchor
// proofs are checked in the browser (anchor.js) against the verified messages; given a
// ledger's JSON-RPC URL (a field, or rpc in the code), against the chain too, as Python's
// verify_anchor does. A proof the chain refutes fails the file as a forged one does; a
// ledger that cannot be reached is said, and the offline verdict keeps its caveat. Without
// a URL the page asks no chain, and says so.
import jsQR from "jsqr";
import { ChainUnreachable, anchorOf, checkAnchors, checkOnChain, jsonRpc, txText } from "./anchor.js";
import { QrFormatError, makeFragment, parseFragment, parseQrText } from "./fragment.js";
import { readStreamFile } from "./stream_file.js";
import { ACCESS, StreamInvalid, checksumAddress, fromHex, messagePlace, toHex, verify } from "./verify.js";

const $ = (id) => document.getElementById(id);
const ACCESS_NAMES = { [ACCESS.PUBLIC]: "public", [ACCESS.RESTRICTED]: "restricted (a key)", [ACCESS.SUBSCRIBERS]: "subscribers" };
const address = (bytes) => checksumAddress(toHex(bytes));
const SMALLEST = "(the token's smallest units)";
const when = (ms) => new Date(Number(ms)).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function setStatus(state, text, problem = null) {
  const status = $("status");
  status.dataset.state = state;
  status.replaceChildren();
  if (state === "verified") status.append(el("span", { class: "tick", "aria-hidden": "true" }, "✓ "));
  if (state === "failed") status.append(el("span", { class: "cross", "aria-hidden": "true" }, "✗ "));
  status.append(text);
  if (problem) {
    status.append(el("br"), "Problem: ", el("code", { id: "problem-code" }, problem.code));
    if (problem.position !== null && problem.position !== undefined)
      status.append(" at ", el("span", { id: "problem-position", "data-position": String(problem.position) }, messagePlace(problem.position)));
    status.append(el("br"), el("span", { id: "problem-detail" }, problem.detail));
  }
}

function fill({ streamId, src, key, rpc }) {
  $("stream-id").value = streamId;
  $("source").value = src;
  $("key").value = key ?? "";
  $("rpc").value = rpc ?? "";
}

function showQrProblem(exc) {
  clearResults();
  setStatus("failed", "This QR code is not a provenance stream code.", { code: exc.code ?? "qr_format", position: null, detail: exc.message });
}

/** Take a QR code's text: fill in the fields, put them in the fragment, verify. */
async function takeQrText(text) {
  let fields;
  try {
    fields = parseQrText(text);
  } catch (exc) {
    if (exc instanceof QrFormatError) return showQrProblem(exc);
    throw exc;
  }
  fill(fields);
  history.replaceState(null, "", "#" + makeFragment(fields));
  await run();
}

function decodeImage(source, width, height) {
  const canvas = $("scan-canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  const found = jsQR(context.getImageData(0, 0, width, height).data, width, height);
  return found ? found.data : null;
}

async function upload(event) {
  const file = event.target.files[0];
  if (!file) return;
  let text;
  try {
    const image = await createImageBitmap(file);
    text = decodeImage(image, image.width, image.height);
  } catch {
    return setStatus("failed", "This file is not an image the browser can read.");
  }
  if (text === null) return setStatus("failed", "No QR code found in this image.");
  await takeQrText(text);
}

let camera = null;

async function scanCamera() {
  if (camera) return stopCamera();
  const video = $("camera");
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (exc) {
    return setStatus("failed", `The camera could not be opened: ${exc.message}`);
  }
  video.srcObject = camera;
  video.hidden = false;
  $("scan").textContent = "Stop the camera";
  await video.play();
  setStatus("working", "Looking for a QR code…");
  const tick = async () => {
    if (!camera) return;
    if (video.readyState >= video.HAVE_CURRENT_DATA && video.videoWidth) {
      const text = decodeImage(video, video.videoWidth, video.videoHeight);
      if (text !== null) {
        stopCamera();
        return takeQrText(text);
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function stopCamera() {
  if (camera) camera.getTracks().forEach((track) => track.stop());
  camera = null;
  $("camera").hidden = true;
  $("scan").textContent = "Scan with the camera";
}

function clearResults() {
  $("summary").replaceChildren();
  $("records").replaceChildren();
  $("results").hidden = true;
}

function describeRecord(r) {
  switch (r.t) {
    case "prov.meter":
      return ["meter reading", `${r.delta} ${r.unit} over ${r.interval_ms / 1000} s (register ${r.total} ${r.unit})`];
    case "prov.payment":
      return ["payment", `${r.amount} ${SMALLEST} received from ${r.payer} (channel total ${r.transferred})`];
    case "prov.price":
      return ["price", `${r.price} ${SMALLEST} of token ${r.token} per ${r.unit}`];
    case "prov.session":
      return ["session", `session ${r.session}, channel ${r.channel} on chain ${r.chain_id}: ${r.buyer} pays ${r.pay_to} by ${r.unit}`];
    case "prov.receipt":
      return ["receipt", `${r.forward.units} units worth ${r.forward.value}, ${r.forward.paid} paid ${SMALLEST}; ${r.signatures.length} signatures`];
    case "prov.note":
      return ["note", r.text];
    case "prov.keys":
      return ["keys", `an epoch's key wrapped for ${r.wraps.length} subscribers`];
    default:
      return ["unread", "sealed, not opened"];
  }
}

function upstreamHref(link, src) {
  // Streams served side by side (reader_app) are named by their id: an upstream stream's
  // file is next to this one's. Its key, if any, is not known here.
  const url = new URL(`0x${toHex(link)}.jsonl`, src);
  // The same ledger checks its anchors: a value chain's streams are anchored on one chain.
  const rpc = $("rpc").value.trim() || null;
  return "#" + makeFragment({ streamId: toHex(link), src: url.href, rpc });
}

// What the page may say of the chain: checked (every proof shown held on the ledger asked),
// unreachable (with why: the offline verdict, its caveat kept), or not asked (no URL).
let chainVerdict = { state: "not asked" };
const onChain = () => (chainVerdict.state === "checked" ? ", checked against the chain" : "");
const anchoredText = (proof) => `anchored in block ${proof.blockNumber} (tx ${txText(proof)})${onChain()}`;
const chainCaveat = () =>
  chainVerdict.state === "checked"
    ? `Anchor proofs checked against the chain (chain id ${chainVerdict.chainId}).`
    : chainVerdict.state === "unreachable"
      ? `Anchor proofs consistent with the stream; could not check against the chain: ${chainVerdict.detail}; not checked against the chain.`
      : "Anchor proofs consistent with the stream; not checked against the chain.";
const refutedByChain = (problem) => problem.code !== "forged_proof" || problem.byChain === true;
// A row names the transaction by its ends (the whole hash is in the summary and the title).
const shortTx = (proof) => txText(proof).slice(0, 10) + "…" + txText(proof).slice(-8);
const anchoredCell = (proof) => `anchored in block ${proof.blockNumber} (tx ${shortTx(proof)})`;
const range = (first, last) =>
  first === last ? messagePlace(first) : `messages ${first + 1}–${last + 1} (index ${first}–${last})`;

/** What the summary says of anchors: each run of messages anchored by the same proof, then
 * those not anchored yet; `anchors` is checkAnchors' answer, null when not checked. */
function anchorsSummary(verified, anchors) {
  if (anchors === null) return "not checked: the stream does not verify";
  if (anchors.problem)
    return refutedByChain(anchors.problem)
      ? "none shown: the chain refutes an anchor proof of the file"
      : "none shown: the file carries a forged anchor proof";
  const runs = [];
  let start = 0;
  const count = verified.messages.length;
  for (let i = 1; i <= count; i++) {
    if (i === count || anchorOf(anchors.heads, i) !== anchorOf(anchors.heads, start)) {
      const proof = anchorOf(anchors.heads, start);
      runs.push(`${range(start, i - 1)} ${proof ? anchoredText(proof) : "not anchored yet"}`);
      start = i;
    }
  }
  if (!runs.length) return "no messages";
  const checked = anchors.heads.length ? " " + chainCaveat() : "";
  return runs.join("; ") + "." + checked;
}

function showResults(verified, src, anchors) {
  const root = verified.root;
  const summary = $("summary");
  const row = (term, ...detail) => summary.append(el("dt", {}, term), el("dd", {}, ...detail));
  row("Paid address (the stream's author)", el("code", { id: "paid-address" }, address(root.author)));
  row("Purpose", root.purpose);
  row("Access", ACCESS_NAMES[root.access] ?? String(root.access));
  row("Created", when(root.createdMs));
  row(verified.ok ? "Messages verified" : "Messages before the problem", el("span", { id: "message-count" }, String(verified.messages.length)));
  if (root.links.length) {
    const list = el("ul", { id: "upstream" });
    for (const link of root.links) list.append(el("li", {}, el("a", { href: upstreamHref(link, src) }, `0x${toHex(link)}`)));
    row("Upstream streams", list);
  }
  row("Anchors", el("span", { id: "anchors" }, anchorsSummary(verified, anchors)));
  const body = $("records");
  const metered = new Map();
  let paid = 0n;
  const good = anchors !== null && anchors.problem === null;
  for (const { message, content } of verified.messages) {
    const [kind, detail] = describeRecord(content ?? {});
    if (content?.t === "prov.meter") metered.set(content.unit, (metered.get(content.unit) ?? 0) + content.delta);
    if (content?.t === "prov.payment") paid += BigInt(content.amount);
    const index = Number(message.index);
    const proof = good ? anchorOf(anchors.heads, index) : null;
    const [state, said, title] = !good ? ["unchecked", "not checked", "the stream does not verify"]
      : proof ? ["anchored", anchoredCell(proof), anchoredText(proof)] : ["none", "not anchored yet", "no proof in the file covers it"];
    const cell = { "data-anchor": state, title };
    if (state === "anchored") cell["data-chain"] = chainVerdict.state;
    body.append(el("tr", { "data-kind": kind },
      el("td", {}, `${index + 1} (index ${index})`), el("td", {}, when(message.timestampMs)), el("td", {}, kind),
      el("td", {}, detail), el("td", cell, said)));
  }
  // Sums over part of a stream would read as the stream's: shown only when all of it verified.
  const units = [...metered].map(([unit, total]) => `${total} ${unit}`).join(", ") || "nothing";
  $("totals").textContent = `Metered: ${units}; paid: ${paid} (in the token's smallest units).`;
  const ok = verified.ok && good;
  $("totals").hidden = !ok;
  $("records-caption").textContent = ok
    ? "The stream's records, every one verified"
    : verified.ok
      ? `The messages, signed and chained, but the file as a whole does NOT verify: ${refutedByChain(anchors.problem) ? "the chain refutes an anchor proof of it" : "it carries a forged anchor proof"}`
      : "The messages before the problem — the stream as a whole does NOT verify";
  $("results").hidden = false;
}

async function run(event) {
  event?.preventDefault();
  stopCamera();
  clearResults();
  const src = $("source").value.trim();
  const streamId = $("stream-id").value.trim();
  const keyText = $("key").value.trim();
  const rpc = $("rpc").value.trim();
  chainVerdict = { state: "not asked" };
  setStatus("working", "Fetching and verifying…");
  let file;
  let started;
  try {
    const answer = await fetch(src, { cache: "no-store", credentials: "omit" });
    if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
    const bytes = new Uint8Array(await answer.arrayBuffer());
    started = performance.now(); // from the file's bytes to the verdict (m2mpay bench provenance)
    file = readStreamFile(bytes);
  } catch (exc) {
    const code = exc instanceof StreamInvalid ? exc.code : "unreachable";
    return setStatus("failed", "The stream file could not be read.", { code, position: null, detail: exc.message });
  }
  let key = null;
  let wanted = null;
  try {
    key = keyText ? fromHex(keyText) : null;
    wanted = streamId ? fromHex(streamId) : file.streamId;
  } catch (exc) {
    return setStatus("failed", "A field is not hexadecimal.", { code: "malformed", position: null, detail: exc.message });
  }
  const verified = await verify(file.root, file.messages, { key, streamId: wanted, count: file.count });
  let anchors = verified.ok ? checkAnchors(file.anchors, verified) : null;
  if (anchors !== null && anchors.problem === null && rpc) {
    setStatus("working", "Checking the anchor proofs against the chain…");
    anchors = await againstTheChain(anchors, rpc);
  }
  if (verified.root) showResults(verified, src, anchors);
  if (!verified.ok) setStatus("failed", "Not verified: the stream does not verify from the message named on.", verified.problem);
  else if (anchors.problem) {
    const { code, index, detail } = anchors.problem;
    const what = refutedByChain(anchors.problem) ? "the chain refutes an anchor proof of the file" : "the file carries a forged anchor proof";
    setStatus("failed", `Not verified: ${what}; nothing is shown as anchored.`, { code, position: index, detail });
  } else {
    setStatus("verified", `Verified: all ${verified.messages.length} messages, signed by the stream's author, in order, none missing.`);
    $("status").append(el("br"), el("span", { id: "anchor-status" }, anchorStatus(verified, anchors)));
  }
  $("status").dataset.verifyMs = (performance.now() - started).toFixed(1);
}

/** `anchors` (checkAnchors', no problem) checked against the ledger at `rpc`, each proof
 * that names a transaction as verify_anchor checks it: the same answer if all hold (and
 * chainVerdict "checked"), a problem naming the first the chain refutes (nothing anchored
 * then), or the same answer with chainVerdict "unreachable" if the ledger cannot be asked. */
async function againstTheChain(anchors, rpc) {
  const call = jsonRpc(rpc);
  let chainId = null;
  try {
    for (const [at, { index, proof }] of anchors.heads.entries()) {
      if (proof.txHash === null || proof.blockNumber === null) continue;
      const problem = await checkOnChain(proof, call);
      if (problem !== null) {
        const detail = `anchor ${at + 1} of the file, checked against the chain at ${rpc}: ${problem.detail}`;
        return { heads: [], problem: { code: problem.code, anchor: at, index, detail, byChain: true } };
      }
      chainId = proof.chainId;
    }
  } catch (exc) {
    if (!(exc instanceof ChainUnreachable)) throw exc;
    chainVerdict = { state: "unreachable", detail: `${rpc}: ${exc.message}` };
    return anchors;
  }
  chainVerdict = chainId === null ? { state: "not asked" } : { state: "checked", chainId };
  return anchors;
}

/** The verdict's line on anchors: how many messages the file's proofs anchor and up to
 * which block, never more than was checked (the proofs, not the chain). */
function anchorStatus(verified, anchors) {
  const count = verified.messages.length;
  const anchored = verified.messages.map((_, index) => index).filter((index) => anchorOf(anchors.heads, index) !== null);
  const covered = anchored.length;
  if (!covered) return "Not anchored yet: the file carries no anchor proof of these messages.";
  const last = anchorOf(anchors.heads, anchored[covered - 1]);
  const rest = count - covered ? `; ${count - covered} not anchored yet` : "";
  const caveat = chainVerdict.state === "checked"
    ? "The anchor proofs are checked against the chain."
    : chainVerdict.state === "unreachable"
      ? `The anchor proofs are consistent with the stream; could not check against the chain: ${chainVerdict.detail}; not checked against the chain.`
      : "The anchor proofs are consistent with the stream; not checked against the chain.";
  return `Anchored: ${covered} of ${count} messages, the last in block ${last.blockNumber} (tx ${txText(last)})${onChain()}${rest}. ${caveat}`;
}

function fromFragment() {
  if (!location.hash || location.hash === "#") return;
  let fields;
  try {
    fields = parseFragment(location.hash);
  } catch (exc) {
    if (exc instanceof QrFormatError) return showQrProblem(exc);
    throw exc;
  }
  fill(fields);
  run();
}

$("fields").addEventListener("submit", run);
$("upload").addEventListener("change", upload);
$("scan").addEventListener("click", scanCamera);
window.addEventListener("hashchange", fromFragment);
document.body.dataset.ready = "true";
fromFragment();
