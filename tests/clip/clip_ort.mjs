// ONNX Runtime (npm onnxruntime-node) as the second CLIP oracle and as a benchmark peer.
//   node clip_ort.mjs embed --model vision.onnx --input pixels.f32 --n N --size S --out emb.f32
//   node clip_ort.mjs embed-text --model text.onnx --ids text_ids.json --out emb.f32
//   node clip_ort.mjs bench --dir DIR --size S [--threads 2] [--iters 10]
//   node clip_ort.mjs bench-text --model text.onnx --ids 0,10,16186,111,10,7515,2 [--threads 2] [--iters 10]
// bench prints one JSON object: image ms at batch 1, ms per image at batch 8 and 32 (when present),
// text ms for a 7-token and a 77-token input, session load ms. bench-text times one text model
// (CLIP's or XLM-R's) on the given ids: ms at batch 1, and ms per text at batch 32 (32 copies).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'node', 'package.json'));
const ort = require('onnxruntime-node');

const args = {};
for (let i = 3; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const threads = Number(args.threads ?? 2);
const options = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
// Like our OpenMP threads under OMP_WAIT_POLICY=passive: idle ORT threads sleep instead of spinning.
if (process.env.OMP_WAIT_POLICY === 'passive') options.extra = { session: { intra_op: { allow_spinning: '0' } } };

async function session(path) { return ort.InferenceSession.create(path, options); }

function randomPixels(n, size) {
  const a = new Float32Array(n * 3 * size * size);
  let s = 1;
  for (let i = 0; i < a.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; a[i] = s / 1073741824 - 1; }
  return a;
}

// Median wall ms, and mean process CPU ms (all threads) per run: on a shared machine the CPU time
// shows the work done, which wall time (waiting for a core) does not.
async function timeRuns(fn, iters) {
  await fn();  // warm-up
  const times = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < iters; i++) { const t = process.hrtime.bigint(); await fn(); times.push(Number(process.hrtime.bigint() - t) / 1e6); }
  const used = process.cpuUsage(cpu);
  times.sort((a, b) => a - b);
  return { wall: times[Math.floor(times.length / 2)], cpu: (used.user + used.system) / 1e3 / iters };
}

const mode = process.argv[2];
if (mode === 'embed') {
  const n = Number(args.n), size = Number(args.size);
  const buf = readFileSync(args.input);
  const pixels = new Float32Array(buf.buffer, buf.byteOffset, n * 3 * size * size);
  const s = await session(args.model);
  const out = await s.run({ pixels: new ort.Tensor('float32', pixels, [n, 3, size, size]) });
  writeFileSync(args.out, Buffer.from(out.embeddings.data.buffer, out.embeddings.data.byteOffset, out.embeddings.data.byteLength));
} else if (mode === 'embed-text') {
  const s = await session(args.model);
  const parts = [];
  for (const text of JSON.parse(readFileSync(args.ids, 'utf8'))) {  // one at a time: lengths differ
    const ids = BigInt64Array.from(text.map(BigInt));
    const out = await s.run({ ids: new ort.Tensor('int64', ids, [1, ids.length]) });
    parts.push(Buffer.from(out.embeddings.data.buffer, out.embeddings.data.byteOffset, out.embeddings.data.byteLength));
  }
  writeFileSync(args.out, Buffer.concat(parts));
} else if (mode === 'bench') {
  const size = Number(args.size), iters = Number(args.iters ?? 10);
  const result = { threads };
  let t = process.hrtime.bigint();
  const vision = await session(join(args.dir, 'vision.onnx'));
  result.load_ms = Number(process.hrtime.bigint() - t) / 1e6;
  for (const n of [1, 8, 32]) {
    const feed = { pixels: new ort.Tensor('float32', randomPixels(n, size), [n, 3, size, size]) };
    const t = await timeRuns(() => vision.run(feed), n === 1 ? iters : Math.max(2, Math.floor(iters / 4)));
    result[`image_b${n}_ms_per_image`] = t.wall / n;
    result[`image_b${n}_cpu_ms_per_image`] = t.cpu / n;
  }
  if (existsSync(join(args.dir, 'text.onnx'))) {
    const text = await session(join(args.dir, 'text.onnx'));
    for (const len of [7, 77]) {
      const ids = new BigInt64Array(len);
      for (let i = 0; i < len; i++) ids[i] = BigInt(400 + i);
      ids[0] = 49406n; ids[len - 1] = 49407n;
      const feed = { ids: new ort.Tensor('int64', ids, [1, len]) };
      const t = await timeRuns(() => text.run(feed), iters);
      result[`text_${len}_ms`] = t.wall;
      result[`text_${len}_cpu_ms`] = t.cpu;
    }
  }
  console.log(JSON.stringify(result));
} else if (mode === 'bench-text') {
  const iters = Number(args.iters ?? 10);
  const ids = BigInt64Array.from(args.ids.split(',').map(BigInt));
  let t = process.hrtime.bigint();
  const text = await session(args.model);
  const result = { threads, load_ms: Number(process.hrtime.bigint() - t) / 1e6 };
  for (const n of [1, 32]) {
    const batch = new BigInt64Array(n * ids.length);
    for (let i = 0; i < n; i++) batch.set(ids, i * ids.length);
    const feed = { ids: new ort.Tensor('int64', batch, [n, ids.length]) };
    const timing = await timeRuns(() => text.run(feed), n === 1 ? iters : Math.max(2, Math.floor(iters / 4)));
    result[n === 1 ? 'text_b1_ms' : 'text_b32_ms_per_text'] = timing.wall / n;
    result[n === 1 ? 'text_b1_cpu_ms' : 'text_b32_cpu_ms_per_text'] = timing.cpu / n;
  }
  console.log(JSON.stringify(result));
} else {
  console.error('usage: clip_ort.mjs embed|embed-text|bench|bench-text ...');
  process.exit(2);
}
