#!/usr/bin/env bash
# End-to-end ingest throughput of `filesearch index` with CLIP: decode + preprocess + embed + store,
# in images/s, on the corpus's large JPEG photos (up to 18 MP) and ~1 MP PNGs.
#   bench/ingest/run.sh [PRECISION=bf16] [THREADS=0]
# The model is the full-size ViT-B/32 with generated weights in the Hugging Face layout
# (tests/clip/clip_reference.py; speed does not depend on the weights' values), written once to
# $BENCH_MODEL_DIR (default /tmp/fs-clip-b32). The fixed cost of a run (process start, model load)
# is measured on an empty folder and subtracted. Prints one RESULT line per image set.
set -euo pipefail
cd "$(dirname "$0")/../.."
prec=${1:-bf16}
threads=${2:-0}
build=${BUILD_DIR:-build}
shared=${FILESEARCH_SHARED_DIR:-../shared}
model=${BENCH_MODEL_DIR:-/tmp/fs-clip-b32}
work=${BENCH_DIR:-/tmp/fs-ingest}
[[ -x $build/filesearch ]] || { echo "build first: scripts/build"; exit 1; }
[[ -d $shared/corpus/photos ]] || { echo "no $shared/corpus: set FILESEARCH_SHARED_DIR"; exit 1; }
if [[ ! -f $model/model.safetensors ]]; then
  echo "generating the ViT-B/32 model in $model (once)"
  /usr/bin/python3 tests/clip/clip_reference.py --out "$model" --size b32 --no-reference
  cp "$shared/clip/tokenizer.json" "$model/"
fi
run() {  # folder -> seconds of one `filesearch index` run with the model
  local data="$work/data-$(basename "$1")"
  rm -rf "$data"
  local t0 t1
  t0=$(date +%s.%N)
  "$build/filesearch" --no-progress --data-dir "$data" index "$1" --model-dir "$model" --precision "$prec" \
    --model-threads "$threads" --no-cache >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
median3() { python3 -c "import sys; v=sorted(map(float, sys.argv[1:])); print(v[len(v)//2])" "$@"; }
mkdir -p "$work/empty"
fixed=$(median3 "$(run "$work/empty")" "$(run "$work/empty")" "$(run "$work/empty")")
echo "fixed cost (start + model load, empty folder, median of 3): $fixed s"
for set in wallpapers-jpeg wikipedia kodak opencv; do
  rm -rf "${work:?}/$set"
  mkdir -p "$work/$set"
  find "$shared/corpus/photos/$set" -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' \) -exec cp {} "$work/$set/" \;
  n=$(find "$work/$set" -type f | wc -l)
  total=$(median3 "$(run "$work/$set")" "$(run "$work/$set")" "$(run "$work/$set")")
  printf 'RESULT set=%s images=%d precision=%s seconds=%.2f images_per_s=%.1f (median of 3 runs, fixed cost subtracted)\n' \
    "$set" "$n" "$prec" "$(python3 -c "print($total - $fixed)")" "$(python3 -c "print($n / ($total - $fixed))")"
done
