#!/usr/bin/env bash
# Cold start, process start to first embedding: `filesearch embed IMAGE` per precision, with the
# packed-weight file (what every start after the first gets) and without it (--packed-dir off),
# beside an ONNX Runtime process (node start, session creation, one image) on the same weights.
# Page cache warm (each command runs once untimed first). Median wall ms of RUNS runs (default 5).
#   scripts/build && scripts/node-deps
#   bench/clip/cold_start.sh [MODEL_DIR] [IMAGE]   (MODEL_DIR with ONNX exports is generated when absent)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
dir=${1:-${TMPDIR:-/tmp}/filesearch-clip-b32}
image=${2:-$root/../shared/corpus/photos/kodak/kodim01.png}
runs=${RUNS:-5}
[[ -f $image ]] || { echo "no image '$image': pass one as the second argument" >&2; exit 2; }
if [[ ! -f $dir/model.safetensors || ! -f $dir/vision.onnx ]]; then
  echo "generating ViT-B/32 weights and ONNX exports into $dir" >&2
  /usr/bin/python3 "$root/tests/clip/clip_reference.py" --out "$dir" --size b32 --images 1 --texts 1 --onnx 2>/dev/null
fi
[[ -f $dir/tokenizer.json ]] || cp "$root/../shared/clip/tokenizer.json" "$dir/"

# Median wall ms of `$@` over $runs runs (after one untimed run).
median_ms() {
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  local times=()
  for ((i = 0; i < runs; i++)); do
    local t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    times+=($(( ($(date +%s%N) - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

echo "{\"host\": \"$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)\", \"image\": \"$image\"}"
packed=$(mktemp -d)
trap 'rm -rf "$packed"' EXIT
for precision in fp32 bf16 int8; do
  cmd=("$build/filesearch" embed --no-cache --model-dir "$dir" --precision "$precision" "$image")  # the model, not the cache
  off=$(median_ms "${cmd[@]}" --packed-dir off)
  on=$(median_ms "${cmd[@]}" --packed-dir "$packed")
  echo "{\"peer\": \"filesearch\", \"precision\": \"$precision\", \"cold_start_ms\": $on, \"cold_start_unpacked_ms\": $off}"
done
ort=$(median_ms node "$root/tests/clip/clip_ort.mjs" embed --model "$dir/vision.onnx" --input "$dir/pixels.f32" \
  --n 1 --size 224 --out "$packed/ort.f32")
echo "{\"peer\": \"onnxruntime-node\", \"precision\": \"fp32\", \"cold_start_ms\": $ort}"
echo "{\"host\": \"load after: $(cut -d' ' -f1-3 /proc/loadavg)\"}"
