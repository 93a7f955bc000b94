#!/usr/bin/env bash
# Latency of an authenticated search while `filesearch serve` is under the hardening issue's
# attacks (1,000 idle + 200 slowloris connections, a 24-connection header flood, a burst of 64 new
# connections, SIGTERM with 252 connections held), for this build and, side by side in the same run,
# for other builds given as arguments (e.g. the last build on cpp-httplib's thread-per-connection
# server). Everything runs on 127.0.0.1. Prints the [attack] lines of tests/serve_attack_test.
#   bench/http/attack.sh                         # this build only
#   bench/http/attack.sh /work/old/build/filesearch   # and another binary, same attacks
set -uo pipefail
cd "$(dirname "$0")/../.."
test_bin=build/tests/serve_attack_test
[[ -x $test_bin ]] || { echo "build first: scripts/build (needs $test_bin)" >&2; exit 1; }
for bin in "$(pwd)/build/filesearch" "$@"; do
  echo "== $bin"
  start=$(date +%s)
  FILESEARCH_ATTACK_BINARY=$bin timeout 900 "$test_bin" 2>&1 | grep -E '^\[attack\]|^\[  FAILED  \] ServeAttack|^\[       OK \]' | sort -u
  echo "   ($(( $(date +%s) - start )) s)"
done
