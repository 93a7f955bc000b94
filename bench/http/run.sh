#!/usr/bin/env bash
# HTTP load benchmark of `filesearch serve` with wrk (Debian package; scripts/setup --bench).
#   bench/http/run.sh [N_DOCS=200000] [DURATION=15s] [MODES="keyword vector hybrid"]
# WORDS=common (env) switches keyword queries to the most frequent words (see search.lua).
# Generates N synthetic documents (every 10th an image with a 64-d vector) with bench_http_gen
# unless the data directory already holds them, starts the server on 127.0.0.1 with HS256 auth and
# the test embedder, and runs keyword, vector and hybrid queries at 1, 8 and 32 connections
# (one wrk thread per 8 connections, at most 2). Prints one RESULT line per run.
# SERVE_LOG_LEVEL (env, default warn) = info keeps the access log (DATA/serve.log), one line a request.
# SERVE_FLAGS (env) adds flags to `serve`, e.g. SERVE_FLAGS=--no-keyword-index for the FTS5-only path.
# EMBED_FLAGS (env) replaces --test-embedder, e.g. EMBED_FLAGS="--model-dir /tmp/fs-clip-b32 --precision int8"
# with GEN_ARGS="10 512 openai/clip-vit-base-patch32" (data whose vectors that model can search).
# The runs start once the keyword accelerator is ready (filesearch_keyword_index_ready 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200000}
duration=${2:-15s}
modes=${3:-keyword vector hybrid}
build=${BUILD_DIR:-build}
data=${BENCH_DATA_DIR:-/tmp/fsbench-$n}
port=${BENCH_PORT:-18080}
command -v wrk >/dev/null || { echo "wrk is not installed: scripts/setup --bench"; exit 1; }
[[ -x $build/filesearch && -x $build/bench_http_gen ]] || { echo "build first: scripts/build"; exit 1; }
if [[ ! -f $data/filesearch.db ]]; then
  "$build/bench_http_gen" "$data" "$n" ${GEN_ARGS:-10}
fi
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
payload=$(printf '{"sub":"bench","exp":%d}' $(( $(date +%s) + 86400 )) | b64url)
sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$secret" -binary | b64url)
export TOKEN="$header.$payload.$sig"
LOG_LEVEL=${SERVE_LOG_LEVEL:-warn} "$build/filesearch" --data-dir "$data" --no-progress serve --host 127.0.0.1 --port "$port" \
  --auth-secret "$secret" ${EMBED_FLAGS:---test-embedder} --threads 64 ${SERVE_FLAGS:-} 2>"$data/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
if [[ "${SERVE_FLAGS:-}" != *--no-keyword-index* ]]; then
  start=$(date +%s)
  for _ in $(seq 1 1200); do
    curl -fs "http://127.0.0.1:$port/metrics" 2>/dev/null | grep -q '^filesearch_keyword_index_ready 1' && break
    sleep 0.5
  done
  echo "keyword index ready after $(( $(date +%s) - start )) s"
fi
echo "server up: $(curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^filesearch_(index_documents|index_vectors|keyword_index_bytes) ' | tr '\n' ' ')"
for mode in $modes; do
  # Warm the page cache and the query paths once.
  MODE=$mode wrk -t1 -c1 -d3s -s bench/http/search.lua "http://127.0.0.1:$port" >/dev/null
  for c in 1 8 32; do
    t=$(( c < 2 ? 1 : 2 ))
    printf 'connections=%-3s ' "$c"
    MODE=$mode wrk -t"$t" -c"$c" -d"$duration" --timeout 10s -s bench/http/search.lua "http://127.0.0.1:$port" | grep '^RESULT'
  done
done
echo "text tower: $(curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^filesearch_(query_embeddings_total|query_embedding_cache_hits_total|text_forward_passes_total|text_forward_queries_total) ' | tr '\n' ' ')"
