#!/usr/bin/env bash
# Builds and runs bench/clip/peak.cpp: the cores' peak fp32 / bf16 / int8 throughput (roofline).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/filesearch-peak
g++ -O3 -std=c++20 -mavx512f -mavx512bw "$here/peak.cpp" -o "$out" -lpthread
echo "{\"host\": \"$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"}"
"$out"
