// Reference CLIP tokenizer for tests: the Hugging Face tokenizer (@huggingface/tokenizers) on a
// tokenizer.json. Reads a JSON array of strings from CORPUS_FILE and writes one JSON array of ids
// per string (start and end tokens included, no truncation) to stdout, in order.
//   node clip_tokenize.mjs TOKENIZER_JSON CORPUS_FILE
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const [tokenizerPath, corpusPath] = process.argv.slice(2);
if (!tokenizerPath || !corpusPath) {
  console.error("usage: node clip_tokenize.mjs TOKENIZER_JSON CORPUS_FILE");
  process.exit(2);
}
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, "utf8")), {});
const texts = JSON.parse(readFileSync(corpusPath, "utf8"));
const lines = texts.map((text) => JSON.stringify(tokenizer.encode(text).ids));
process.stdout.write(lines.join("\n") + (lines.length ? "\n" : ""));
