// Parse Mermaid diagrams with the `mermaid` package's own parser (mermaid.parse), in node without
// a browser: mermaid's sanitizer (DOMPurify) needs a DOM, which jsdom provides.
//   node tests/tools/mermaid_parse.mjs FILE...
// A file may hold a bare diagram or one fenced as ```mermaid ... ``` for Markdown. Prints one JSON
// line per file ({"file", "ok", "diagramType" | "error"}); exits 1 if any file fails to parse.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

for (const file of process.argv.slice(2)) {
  let text = readFileSync(file, "utf8");
  const fenced = text.match(/^```mermaid\n([\s\S]*?)\n```\s*$/);
  if (fenced) text = fenced[1];
  try {
    const result = await mermaid.parse(text);
    console.log(JSON.stringify({ file, ok: true, diagramType: result.diagramType }));
  } catch (error) {
    console.log(JSON.stringify({ file, ok: false, error: String(error?.message ?? error).split("\n")[0] }));
    process.exitCode = 1;
  }
}
