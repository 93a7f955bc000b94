#!/usr/bin/env bash
# Backfill throughput by worker count: a folder is indexed once without a model, then
# `filesearch backfill --workers N --no-cache` embeds every image from a fresh copy of that data
# directory, for each N in WORKERS (default "1 2"), alternating, 3 runs each; median images/s.
#   bench/ingest/backfill.sh [SET=wallpapers-jpeg] [PRECISION=bf16]
# Model and folders as in bench/ingest/run.sh (model load is inside the timing: packed weights
# make it ~0.1 s a copy).
set -euo pipefail
cd "$(dirname "$0")/../.."
set_name=${1:-wallpapers-jpeg}
prec=${2:-bf16}
build=${BUILD_DIR:-build}
shared=${FILESEARCH_SHARED_DIR:-../shared}
model=${BENCH_MODEL_DIR:-/tmp/fs-clip-b32}
work=${BENCH_DIR:-/tmp/fs-backfill}
[[ -x $build/filesearch ]] || { echo "build first: scripts/build"; exit 1; }
[[ -f $model/model.safetensors ]] || { echo "no model in $model: run bench/ingest/run.sh once"; exit 1; }
rm -rf "$work" && mkdir -p "$work/files"
find "$shared/corpus/photos/$set_name" -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' \) -exec cp {} "$work/files/" \;
n=$(find "$work/files" -type f | wc -l)
"$build/filesearch" --no-progress --data-dir "$work/base" index "$work/files" >/dev/null
"$build/filesearch" embed --model-dir "$model" --precision "$prec" --text warm >/dev/null  # packed weights written
declare -A times
for rep in 1 2 3; do
  for w in ${WORKERS:-1 2}; do
    rm -rf "$work/data" && cp -r "$work/base" "$work/data"
    t0=$(date +%s.%N)
    "$build/filesearch" --no-progress --data-dir "$work/data" backfill --model-dir "$model" --precision "$prec" \
      --workers "$w" --no-cache >/dev/null
    t1=$(date +%s.%N)
    times[$w]+="$(python3 -c "print($t1 - $t0)") "
  done
done
for w in ${WORKERS:-1 2}; do
  python3 -c "import sys; v=sorted(map(float, sys.argv[3:])); m=v[len(v)//2]; print(f'RESULT set={sys.argv[1]} images={sys.argv[2]} workers=$w seconds={m:.2f} images_per_s={int(sys.argv[2])/m:.1f} (median of 3, runs {v})')" "$set_name" "$n" ${times[$w]}
done
