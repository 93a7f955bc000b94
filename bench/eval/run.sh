#!/usr/bin/env bash
# Search quality on the shipped judgment set (bench/eval/judgments.jsonl, 99 queries over
# ../shared/corpus/docs and ../shared/corpus/photos): indexes both folders into a fresh data
# directory with a CLIP model, then runs `filesearch eval` for every mode and a sweep of the
# picture floor. Without a model folder (MODEL_DIR) it generates random CLIP weights with the
# real tokenizer (tests/clip/clip_reference.py, needs python3-torch): vector and hybrid figures
# are then those of a model that knows nothing, which is what they measure (the flood, not the
# pictures). Results land in docs/benchmarks.md ("Search quality").
#   bench/eval/run.sh                        # generated weights
#   MODEL_DIR=~/models/clip-vit-b32 bench/eval/run.sh
# Env: FILESEARCH (binary, default build/filesearch), CORPUS (default ../shared/corpus),
#      DATA (data directory to create; default a temporary one, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${FILESEARCH:-build/filesearch}
corpus=${CORPUS:-../shared/corpus}
[[ -x $bin ]] || { echo "run.sh: no $bin: build it first (scripts/build)" >&2; exit 1; }
[[ -d $corpus/docs && -d $corpus/photos ]] || { echo "run.sh: $corpus/docs and $corpus/photos are needed" >&2; exit 1; }
keep=${DATA:+1}
data=${DATA:-$(mktemp -d /tmp/fs-eval.XXXXXX)}
[[ -n $keep ]] || trap 'rm -rf "$data"' EXIT
model=${MODEL_DIR:-}
if [[ -z $model ]]; then
  model=$data/generated-model
  echo "run.sh: no MODEL_DIR: generating random CLIP weights (real tokenizer) in $model" >&2
  /usr/bin/python3 tests/clip/clip_reference.py --out "$model" --size small-vocab --no-reference --images 0 --texts 0 >/dev/null
  cp "$corpus/../clip/tokenizer.json" "$model/"
fi
export FILESEARCH_DATA_DIR=$data/index
for folder in docs photos; do
  "$bin" --no-progress index "$corpus/$folder" --model-dir "$model" | tail -1
done
judgments=bench/eval/judgments.jsonl
modes=(--mode text --mode vector --mode hybrid:rrf --mode hybrid:linear --mode hybrid:rrf:0.3 --mode hybrid:linear:0.3
       --mode hybrid:rrf:0.7 --mode hybrid:linear:0.7)
echo "== every mode (default picture floor: 5 SD)"
"$bin" eval "$judgments" --root "$corpus" --model-dir "$model" "${modes[@]}" ${EVAL_ARGS:-}
echo "== the picture floor (hybrid:rrf, hybrid:linear)"
for sd in 0 2 3 4 5 6 8; do
  printf 'floor-sd %-3s ' "$sd"
  "$bin" eval "$judgments" --root "$corpus" --model-dir "$model" --mode hybrid:rrf --mode hybrid:linear \
    --floor-sd "$sd" --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print("  ".join("%s nDCG@10 %.4f R@10 %.4f MRR %.4f" % (m["mode"], m["ndcg@10"], m["recall@10"], m["mrr"]) for m in d["modes"]))'
done
