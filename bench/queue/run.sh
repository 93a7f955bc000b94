#!/usr/bin/env bash
# Queue-driven ingest beside in-process ingest, one run: images/s of `filesearch index DIR` (the
# peer: no queue) and of 1, 2 and 3 `filesearch worker --queue` processes sharing one data
# directory and a Redis stream, over the corpus's photos (../shared/corpus/photos, 204 files).
#   bench/queue/run.sh                 stand-in embedder (--test-embedder): the pipeline without the model
#   MODEL_FLAGS="--model-dir /tmp/fs-clip-b32 --precision bf16" bench/queue/run.sh   with CLIP
#   WORKER_FLAGS="--batch 1" ...       flags for the workers only (default: the worker's own, --batch 10)
# Queue overhead per job = (1 worker's seconds - index's seconds) / images. A worker's time runs
# from its start (model load included, as index's) until the stream is empty and nothing is pending.
# Starts its own redis-server on 127.0.0.1 (no persistence) and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
shared=${FILESEARCH_SHARED_DIR:-../shared}
work=${BENCH_DIR:-/tmp/fs-queue-bench}
model_flags=${MODEL_FLAGS:---test-embedder}
worker_flags=${WORKER_FLAGS:-}
[[ -x $build/filesearch ]] || { echo "build first: scripts/build"; exit 1; }
rm -rf "$work" && mkdir -p "$work/images"
find "$shared/corpus/photos" -type f \( -name '*.jpg' -o -name '*.png' \) -exec cp {} "$work/images/" \;
n=$(find "$work/images" -type f | wc -l)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; kill "$redis_pid" 2>/dev/null || true; }
trap cleanup EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
now() { date +%s.%N; }

# The peer: one process, no queue.
t0=$(now)
# shellcheck disable=SC2086
"$build/filesearch" --no-progress --data-dir "$work/data-index" index "$work/images" $model_flags >/dev/null
t_index=$(python3 -c "print($(now) - $t0)")
printf 'RESULT mode=index images=%d seconds=%.2f images_per_s=%.1f\n' "$n" "$t_index" "$(python3 -c "print($n / $t_index)")"

for k in 1 2 3; do
  stream="bench-$k"
  "$build/filesearch" --no-progress enqueue "$work/images" --queue "redis://127.0.0.1:$port/$stream" --create-queue >/dev/null 2>&1
  pids=()
  t0=$(now)
  for ((i = 0; i < k; i++)); do
    # shellcheck disable=SC2086
    "$build/filesearch" --no-progress --data-dir "$work/data-$k" worker --queue "redis://127.0.0.1:$port/$stream" \
      $model_flags $worker_flags >"$work/worker-$k-$i.log" 2>&1 &
    pids+=($!)
  done
  while :; do
    left=$(redis-cli -p "$port" XLEN "$stream")
    [[ $left == 0 ]] && break
    sleep 0.02
  done
  t=$(python3 -c "print($(now) - $t0)")
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  for p in "${pids[@]}"; do wait "$p" || true; done
  docs=$(sqlite3 "$work/data-$k/filesearch.db" 'select count(*) from documents' 2>/dev/null || echo "?")
  printf 'RESULT mode=queue workers=%d images=%d documents=%s seconds=%.2f images_per_s=%.1f\n' "$k" "$n" "$docs" "$t" \
    "$(python3 -c "print($n / $t)")"
  [[ $k == 1 ]] && t_one=$t
done
printf 'RESULT queue_overhead_ms_per_job=%.2f (1 worker against index, same images)\n' \
  "$(python3 -c "print(($t_one - $t_index) * 1000 / $n)")"
