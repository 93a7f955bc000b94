#!/usr/bin/env bash
# CLIP inference benchmark: ours (fp32, bf16, int8) beside ONNX Runtime (npm onnxruntime-node) and
# PyTorch on the same generated ViT-B/32 weights, 2 threads each. One JSON line per peer.
#   BUILD_DIR=build scripts/build -DFILESEARCH_BUILD_CLIP_BENCH=ON && scripts/node-deps
#   src/model/clip/clip_bench.sh [MODEL_DIR]     (MODEL_DIR is generated there when absent)
# ITERS (default 20) sets the repetitions; THREADS (default 2) the threads of every peer.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
build=${BUILD_DIR:-$root/build}
dir=${1:-${TMPDIR:-/tmp}/filesearch-clip-b32}
[[ ${THREADS:-2} =~ ^[0-9]+$ ]] || { echo "THREADS must be a number" >&2; exit 2; }
iters=${ITERS:-20}
threads=${THREADS:-2}
if [[ ! -f $dir/model.safetensors || ! -f $dir/vision.onnx ]]; then
  echo "generating ViT-B/32 weights and ONNX exports into $dir" >&2
  /usr/bin/python3 "$root/tests/clip/clip_reference.py" --out "$dir" --size b32 --images 1 --texts 1 --onnx 2>/dev/null
fi
echo "{\"host\": \"$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}\"}"
for precision in fp32 bf16 int8; do
  "$build/src/model/clip_bench" --model "$dir" --precision "$precision" --threads "$threads" --iters "$iters"
done
echo -n '{"peer": "onnxruntime-node", '
node "$root/tests/clip/clip_ort.mjs" bench --dir "$dir" --size 224 --threads "$threads" --iters "$iters" | cut -c2-
echo -n '{"peer": "pytorch", '
/usr/bin/python3 "$root/tests/clip/clip_reference.py" --size b32 --bench 3 --threads "$threads" | cut -c2-  # ~3 s an image
echo "{\"host\": \"load after: $(cut -d' ' -f1-3 /proc/loadavg)\"}"
