// The web reader page: a QR code (camera, uploaded image or the URL's fragment) fills in the
// fields, the stream file is fetched and verified in the browser (verify.js), and its records
// shown. A stream is shown as verified only when all of it verified; otherwise the problem is
// named with the message it stopped at, and nothing is marked verified.
import jsQR from "jsqr";
import { QrFormatError, makeFragment, parseFragment, parseQrText } from "./fragment.js";
import { readStreamFile } from "./stream_file.js";
import { ACCESS, StreamInvalid, checksumAddress, fromHex, toHex, verify } from "./verify.js";

const $ = (id) => document.getElementById(id);
const ACCESS_NAMES = { [ACCESS.PUBLIC]: "public", [ACCESS.RESTRICTED]: "restricted (a key)", [ACCESS.SUBSCRIBERS]: "subscribers" };
const address = (bytes) => checksumAddress(toHex(bytes));
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
      status.append(" at message ", el("span", { id: "problem-position" }, String(problem.position)));
    status.append(el("br"), el("span", { id: "problem-detail" }, problem.detail));
  }
}

function fill({ streamId, src, key }) {
  $("stream-id").value = streamId;
  $("source").value = src;
  $("key").value = key ?? "";
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
      return ["payment", `${r.amount} received from ${r.payer} (channel total ${r.transferred})`];
    case "prov.price":
      return ["price", `${r.price} of token ${r.token} per ${r.unit}`];
    case "prov.session":
      return ["session", `session ${r.session}, channel ${r.channel} on chain ${r.chain_id}: ${r.buyer} pays ${r.pay_to} by ${r.unit}`];
    case "prov.receipt":
      return ["receipt", `${r.forward.units} units worth ${r.forward.value}, ${r.forward.paid} paid; ${r.signatures.length} signatures`];
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
  return "#" + makeFragment({ streamId: toHex(link), src: url.href });
}

function showResults(verified, src) {
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
  const body = $("records");
  const metered = new Map();
  let paid = 0n;
  for (const { message, content } of verified.messages) {
    const [kind, detail] = describeRecord(content ?? {});
    if (content?.t === "prov.meter") metered.set(content.unit, (metered.get(content.unit) ?? 0) + content.delta);
    if (content?.t === "prov.payment") paid += BigInt(content.amount);
    body.append(el("tr", { "data-kind": kind },
      el("td", {}, String(message.index)), el("td", {}, when(message.timestampMs)), el("td", {}, kind), el("td", {}, detail)));
  }
  // Sums over part of a stream would read as the stream's: shown only when all of it verified.
  const units = [...metered].map(([unit, total]) => `${total} ${unit}`).join(", ") || "nothing";
  $("totals").textContent = `Metered: ${units}; paid: ${paid} (in the token's smallest units).`;
  $("totals").hidden = !verified.ok;
  $("records-caption").textContent = verified.ok
    ? "The stream's records, every one verified"
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
  setStatus("working", "Fetching and verifying…");
  let file;
  try {
    const answer = await fetch(src, { cache: "no-store", credentials: "omit" });
    if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
    file = readStreamFile(new Uint8Array(await answer.arrayBuffer()));
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
  if (verified.root) showResults(verified, src);
  if (verified.ok) setStatus("verified", `Verified: all ${verified.messages.length} messages, signed by the stream's author, in order, none missing.`);
  else setStatus("failed", "Not verified: the stream does not verify from the message named on.", verified.problem);
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
