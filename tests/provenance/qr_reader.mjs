// The web reader's QR side in Node, as the page runs it: jsQR decodes a code's pixels, and
// fragment.js parses or writes a fragment. stdin: [{"pixels": hex, "width", "height"} |
// {"parse": text} | {"make": {streamId, src, key}}]; stdout: one answer a case.
import { readFileSync } from "node:fs";
import jsQR from "jsqr";
import { makeFragment, parseQrText } from "../../web/reader/fragment.js";

function run(c) {
  if (c.pixels !== undefined) {
    const grey = Buffer.from(c.pixels, "hex");
    const rgba = new Uint8ClampedArray(grey.length * 4);
    grey.forEach((v, i) => rgba.set([v, v, v, 255], 4 * i));
    return jsQR(rgba, c.width, c.height)?.data ?? null;
  }
  if (c.make !== undefined) return makeFragment(c.make);
  try {
    return parseQrText(c.parse);
  } catch (exc) {
    return { error: exc.code ?? String(exc) };
  }
}

const cases = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map(run)));
