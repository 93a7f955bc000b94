// Reference XLM-R tokenizer for tests: the Hugging Face tokenizer on a tokenizer.json. Reads a JSON
// array of strings from CORPUS_FILE and writes one JSON array of ids per string (<s> and </s>
// included, no truncation) to stdout, in order.
//   node xlmr_tokenize.mjs [--engine rust|js] [--bench] TOKENIZER_JSON CORPUS_FILE
// rust (default): `tokenizers`, the Rust core's Node binding: the implementation the published
// XLM-R ids come from, with the real Precompiled charsmap. js: `@huggingface/tokenizers`, whose
// Precompiled normaliser approximates the charsmap with String.prototype.normalize("NFKC").
// --bench: also prints the load time and the encoding time of the whole corpus to stderr.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const args = process.argv.slice(2);
let engine = "rust";
let bench = false;
const files = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--engine") engine = args[++i];
  else if (args[i] === "--bench") bench = true;
  else files.push(args[i]);
}
const [tokenizerPath, corpusPath] = files;
if (!tokenizerPath || !corpusPath || (engine !== "rust" && engine !== "js")) {
  console.error("usage: node xlmr_tokenize.mjs [--engine rust|js] [--bench] TOKENIZER_JSON CORPUS_FILE");
  process.exit(2);
}
const texts = JSON.parse(readFileSync(corpusPath, "utf8"));
const loadStart = process.hrtime.bigint();
let encodeAll;
if (engine === "rust") {
  const { Tokenizer } = createRequire(import.meta.url)("tokenizers");
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  encodeAll = async () => {
    const out = [];
    for (const text of texts) out.push((await tokenizer.encode(text)).getIds());
    return out;
  };
} else {
  const { Tokenizer } = await import("@huggingface/tokenizers");
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, "utf8")), {});
  encodeAll = async () => texts.map((text) => tokenizer.encode(text).ids);
}
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
const encodeStart = process.hrtime.bigint();
const ids = await encodeAll();
const encodeMs = Number(process.hrtime.bigint() - encodeStart) / 1e6;
if (bench) {
  const tokens = ids.reduce((n, x) => n + x.length, 0);
  console.error(
    `${engine}: load ${loadMs.toFixed(0)} ms, ${texts.length} strings, ${tokens} tokens in ` +
      `${encodeMs.toFixed(0)} ms (${((tokens / encodeMs) * 1000).toFixed(0)} tokens/s)`,
  );
}
const lines = ids.map((x) => JSON.stringify(Array.from(x)));
process.stdout.write(lines.join("\n") + (lines.length ? "\n" : ""));
