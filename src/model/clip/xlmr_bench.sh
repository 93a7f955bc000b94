#!/usr/bin/env bash
# Multilingual text tower benchmark: the XLM-R base text tower (xlm-roberta-base + OpenCLIP's
# 768 -> 640 -> 512 projection, generated weights, real 250,002-row vocabulary) beside CLIP
# ViT-B/32's text tower, ours (fp32, bf16, int8) and ONNX Runtime (npm onnxruntime-node, fp32) on the
# same weights, THREADS (default 2) threads each. The XLM-R tower's query is Japanese, 海辺を走る白い犬
# ("a white dog running on the beach": 5 words, 11 XLM-R ids), CLIP's "a photo of a cat" (5 words,
# 7 ids), at batch 1, then 32 copies in one call for throughput. One JSON line per run.
#   BUILD_DIR=build scripts/build -DFILESEARCH_BUILD_CLIP_BENCH=ON && scripts/node-deps && scripts/py-oracle-deps
#   src/model/clip/xlmr_bench.sh [XLMR_DIR] [CLIP_DIR]     (generated there when absent)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
build=${BUILD_DIR:-$root/build}
xlmr=${1:-${TMPDIR:-/tmp}/filesearch-xlmr-base}
clip=${2:-${TMPDIR:-/tmp}/filesearch-clip-b32}
[[ ${THREADS:-2} =~ ^[0-9]+$ ]] || { echo "THREADS must be a number" >&2; exit 2; }
iters=${ITERS:-20}
threads=${THREADS:-2}
if [[ ! -f $xlmr/hf/model.safetensors || ! -f $xlmr/hf/text.onnx ]]; then
  echo "generating the XLM-R base text tower and its ONNX export into $xlmr/hf" >&2
  "$root/.venv-oracle/bin/python" "$root/tests/clip/xlmr_reference.py" --out "$xlmr" --size base --layouts hf --onnx 2>/dev/null
fi
if [[ ! -f $clip/model.safetensors || ! -f $clip/text.onnx ]]; then
  echo "generating ViT-B/32 weights and ONNX exports into $clip" >&2
  /usr/bin/python3 "$root/tests/clip/clip_reference.py" --out "$clip" --size b32 --images 1 --texts 1 --onnx 2>/dev/null
fi
echo "{\"host\": \"$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}\"}"
for tower in "xlm-roberta:$xlmr/hf:0,6,2767,114026,251,3469,2075,3515,2111,37084,2" "clip:$clip:49406,320,1125,539,320,2368,49407"; do
  IFS=: read -r name dir ids <<<"$tower"
  for precision in fp32 bf16 int8; do
    echo -n "{\"tower\": \"$name\", \"peer\": \"filesearch\", "
    "$build/src/model/clip_bench" --model "$dir" --precision "$precision" --threads "$threads" --iters "$iters" --ids "$ids" | cut -c2-
  done
  echo -n "{\"tower\": \"$name\", \"peer\": \"onnxruntime-node\", \"precision\": \"fp32\", "
  node "$root/tests/clip/clip_ort.mjs" bench-text --model "$dir/text.onnx" --ids "$ids" --threads "$threads" --iters "$iters" | cut -c2-
done
echo "{\"host\": \"load after: $(cut -d' ' -f1-3 /proc/loadavg)\"}"
