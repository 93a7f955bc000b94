#!/usr/bin/env bash
# JPEG shrink-on-load against Pillow's full decode over every large JPEG of the corpus (the figures
# in docs/params.md, min_short_side): the CLIP input tensor as ClipEmbedder makes it, with
# shrink-on-load (min_short_side 448) and in the exact mode (--exact-decode), compared entry by
# entry on the 8-bit level. Needs build/tests/clip_pillow_test, /usr/bin/python3 with PIL + numpy,
# and ../shared/corpus. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export FILESEARCH_SOURCE_DIR=$PWD FILESEARCH_SHARED_DIR=${FILESEARCH_SHARED_DIR:-$PWD/../shared}
FILESEARCH_MEASURE_SHRINK=1 "${BUILD_DIR:-build}"/tests/clip_pillow_test --gtest_filter='*ShrinkOnLoadOverTheCorpus*'
