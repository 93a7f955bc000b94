#!/usr/bin/env bash
# The shipped alert rules and example Prometheus config, checked and unit-tested with promtool
# (Debian package `prometheus`, installed by scripts/setup). Skips (exit 77) without promtool.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! command -v promtool >/dev/null; then
  echo "SKIP: promtool not found (install the Debian package 'prometheus': scripts/setup)"
  exit 77
fi
promtool check rules "$root/deploy/prometheus/filesearch-rules.yml"
promtool check config "$root/deploy/prometheus/prometheus.example.yml"
# Relative rule_files paths are taken from the test file's folder.
cd "$here"
promtool test rules filesearch-rules.test.yml
