#!/usr/bin/env bash
# Office extraction rate (docs/benchmarks.md, "Office extraction"): filesearch's readers and, in the
# same run, the Python standard-library peer (zipfile + ElementTree, email) on the textract corpus.
#   cmake --build build --target bench_office_rate && bench/extract/run.sh [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/../.."
repeat=${1:-50}
corpus=${FILESEARCH_SHARED_DIR:-../shared}/corpus/docs/textract/tests
[[ -d $corpus ]] || { echo "no $corpus: the shared corpus is missing" >&2; exit 1; }
files=()
for ext in docx xlsx pptx odt ods epub doc xls msg rtf eml; do
  for f in "$corpus"/*/*."$ext"; do [[ -f $f ]] && files+=("$f"); done
done
# Rounds alternate between the two so that a busy machine slows both alike; compare per round.
for round in 1 2 3; do
  echo "== round $round: filesearch (build/bench_office_rate, repeat $repeat)"
  build/bench_office_rate --repeat "$repeat" "${files[@]}"
  echo "== round $round: peer, Python $(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])') stdlib (bench/extract/peer.py)"
  /usr/bin/python3 bench/extract/peer.py --repeat "$repeat" "${files[@]}"
done
