// The QR payload of a provenance stream, format 1 (m2mpay.provenance.qr documents it):
//   <reader page URL>#m2mpay-stream=1&id=<stream id, 64 hex>&src=<the export file's URL>[&key=<hex>][&rpc=<URL>]
// in application/x-www-form-urlencoded form. The key travels in the fragment, which a browser
// never sends to a server; rpc, optional, is a ledger's JSON-RPC URL the reader checks the
// file's anchor proofs against (a code without it reads as before). No DOM.

export const FRAGMENT_VERSION = "1";
const NAMES = new Set(["m2mpay-stream", "id", "src", "key", "rpc"]);

/** A QR code or fragment of another format; `code` is qr_format. */
export class QrFormatError extends Error {
  constructor(detail) {
    super(detail);
    this.code = "qr_format";
  }
}

/** {streamId, src, key} from a fragment (with or without its "#"); QrFormatError if it is not one. */
export function parseFragment(fragment) {
  const text = fragment.startsWith("#") ? fragment.slice(1) : fragment;
  const params = new URLSearchParams(text);
  const seen = new Set();
  for (const name of params.keys()) {
    if (!NAMES.has(name)) throw new QrFormatError(`unknown field ${JSON.stringify(name)}`);
    if (seen.has(name)) throw new QrFormatError(`field ${name} given twice`);
    seen.add(name);
  }
  const version = params.get("m2mpay-stream");
  if (version === null) throw new QrFormatError("not an m2mpay provenance stream code");
  if (version !== FRAGMENT_VERSION) throw new QrFormatError(`stream code version ${version}; this reads ${FRAGMENT_VERSION}`);
  const id = params.get("id") ?? "";
  if (!/^[0-9a-f]{64}$/.test(id)) throw new QrFormatError("the stream id is not 64 lowercase hex digits");
  const src = params.get("src") ?? "";
  if (!httpUrl(src)) throw new QrFormatError("src is not an absolute http(s) URL");
  const key = params.get("key");
  // A key of the wrong size is left to verify, which names it wrong_key (a code cut short).
  if (key !== null && !/^([0-9a-f]{2})*$/.test(key)) throw new QrFormatError("the key is not lowercase hex");
  const rpc = params.get("rpc");
  if (rpc !== null && !httpUrl(rpc)) throw new QrFormatError("rpc is not an absolute http(s) URL");
  // rpc only when given: a code without it reads exactly as before.
  return rpc === null ? { streamId: id, src, key } : { streamId: id, src, key, rpc };
}

/** Whether `text` is an absolute http(s) URL (qr._http_url). */
export function httpUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
}

/** The fragment of a QR code's text (a reader URL with a fragment); QrFormatError if none. */
export function parseQrText(text) {
  const at = text.indexOf("#");
  if (at < 0) throw new QrFormatError("the code holds no stream fragment");
  return parseFragment(text.slice(at));
}

/** The fragment for these fields, as Python's qr.stream_fragment writes it. */
export function makeFragment({ streamId, src, key = null, rpc = null }) {
  const params = new URLSearchParams({ "m2mpay-stream": FRAGMENT_VERSION, id: streamId, src });
  if (key) params.set("key", key);
  if (rpc) params.set("rpc", rpc);
  return params.toString();
}
