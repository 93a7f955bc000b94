#!/usr/bin/env bash
# The opensearch back end beside the embedded one, on this machine, in one run:
#   1. ingest: `filesearch migrate --to opensearch` of N generated documents (every 10th an image
#      with a 64-d vector) through _bulk into a fresh local node (tests/opensearch/node), docs/s;
#   2. queries: bench/http/run.sh (wrk, HS256 auth, keyword / vector / hybrid at 1, 8, 32
#      connections) against `serve` on the embedded data directory, then against
#      `serve --backend opensearch` on the same documents;
#   3. filesearch's own time per search (the access log's ms minus backend_wait_ms), per mode, and
#      for hybrid also with the node fusing (--opensearch-fusion opensearch, "hybrid-node").
#   bench/opensearch/run.sh [N=100000] [DURATION=10s] [MODES="keyword vector hybrid"]
# Needs a build (scripts/build), wrk (scripts/setup --bench) and Java + Maven (scripts/setup).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
duration=${2:-10s}
modes=${3:-keyword vector hybrid}
embedded=/tmp/fsbench-$n
remote=/tmp/fsbench-$n-opensearch
node=/tmp/fsbench-opensearch-node
[[ -x build/filesearch && -x build/bench_http_gen ]] || { echo "build first: scripts/build"; exit 1; }
[[ -f $embedded/filesearch.db ]] || build/bench_http_gen "$embedded" "$n" 10
rm -rf "$remote" && cp -r "$embedded" "$remote"   # the mirror's outbox must not touch the embedded copy
tests/opensearch/node start "$node" >/dev/null
trap 'tests/opensearch/node stop "$node" >/dev/null 2>&1 || true' EXIT
url=$(cat "$node/url")
os=(--opensearch-url "$url" --opensearch-index bench)
build/filesearch opensearch setup "${os[@]}" --engine lucene --dimension 64 >/dev/null
start=$(date +%s.%N)
build/filesearch --data-dir "$remote" --no-progress migrate --to opensearch "${os[@]}"
end=$(date +%s.%N)
curl -fs -XPOST "$url/bench/_refresh" >/dev/null
count=$(curl -fs "$url/bench/_count" | sed 's/.*"count":\([0-9]*\).*/\1/')
echo "INGEST documents=$count seconds=$(echo "$end - $start" | bc) docs_per_s=$(echo "$count / ($end - $start)" | bc)"
echo "== embedded"
BENCH_DATA_DIR=$embedded BENCH_PORT=18081 bench/http/run.sh "$n" "$duration" "$modes"
echo "== opensearch"
BENCH_DATA_DIR=$remote BENCH_PORT=18082 SERVE_FLAGS="--backend opensearch ${os[*]} --no-keyword-index" \
  bench/http/run.sh "$n" "$duration" "$modes"
# filesearch's own time per search: the access log's ms (the whole request in the server) minus
# backend_wait_ms (wall time waiting for the node's replies); and the node's time outside its own
# `took` (HTTP, REST layer, JSON, queueing): backend_wait_ms minus backend_ms. At 1 connection and
# at all three together.
echo "== overhead (each mode at 1, 8 and 32 connections, from the access log; hybrid-node: fused by the node)"
runs=()
for mode in $modes; do
  runs+=("$mode")
  [[ $mode == hybrid ]] && runs+=("hybrid-node")
done
for run in "${runs[@]}"; do
  mode=${run%-node}
  fusion=filesearch
  [[ $run == *-node ]] && fusion=opensearch
  rm -f "$remote/serve.log"
  BENCH_DATA_DIR=$remote BENCH_PORT=18083 SERVE_LOG_LEVEL=info \
    SERVE_FLAGS="--backend opensearch ${os[*]} --no-keyword-index --opensearch-fusion $fusion" \
    bench/http/run.sh "$n" "$duration" "$mode" | grep RESULT
  /usr/bin/python3 - "$remote/serve.log" "$run" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("route") == "/search" and "backend_wait_ms" in j:
        rows.append((float(j["ms"]), float(j["backend_wait_ms"]), float(j["backend_ms"])))
own = sorted(ms - wait for ms, wait, took in rows)
rest = sorted(wait - took for ms, wait, took in rows)
pick = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
if own:
    print("OVERHEAD mode=%s searches=%d own_p50_ms=%.2f own_p95_ms=%.2f own_p99_ms=%.2f node_outside_took_p50_ms=%.2f node_outside_took_p95_ms=%.2f"
          % (sys.argv[2], len(own), pick(own, .5), pick(own, .95), pick(own, .99), pick(rest, .5), pick(rest, .95)))
PY
done
