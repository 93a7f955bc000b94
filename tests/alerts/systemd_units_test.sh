#!/usr/bin/env bash
# deploy/systemd/*.service through `systemd-analyze verify` (any warning fails), with ExecStart
# pointed at the built binary; each unit restarts on failure and stops with SIGTERM; every flag its
# ExecStart passes is one the binary's --help lists. Skips (77) without systemd-analyze.
#   usage: systemd_units_test.sh FILESEARCH_BINARY SOURCE_DIR
set -euo pipefail
binary=$(realpath "$1")
source=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not found (Debian package 'systemd')"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for unit in "$source"/deploy/systemd/*.service; do
  name=$(basename "$unit")
  before=$status
  sed "s#/usr/local/bin/filesearch#$binary#g" "$unit" >"$tmp/$name"
  out=$(systemd-analyze verify "$tmp/$name" 2>&1) || { echo "FAIL: $name: systemd-analyze verify failed"; status=1; }
  if [[ -n "$out" ]]; then
    echo "FAIL: $name: systemd-analyze verify said:"
    echo "$out"
    status=1
  fi
  for want in Restart=on-failure KillSignal=SIGTERM NoNewPrivileges=yes ProtectSystem=strict; do
    grep -qx "$want" "$unit" || { echo "FAIL: $name lacks $want"; status=1; }
  done
  exec_line=$(grep '^ExecStart=' "$unit")
  sub=$(sed -E 's/.*filesearch( --[a-z-]+)* ([a-z]+).*/\2/' <<<"$exec_line")
  help="$("$binary" --help) $("$binary" "$sub" --help)"
  for flag in $(grep -oE -- '--[a-z][a-z-]+' <<<"$exec_line" | sort -u); do
    grep -qE -- "$flag\b" <<<"$help" || { echo "FAIL: $name: ExecStart passes $flag, which 'filesearch $sub' does not know"; status=1; }
  done
  ((status == before)) && echo "$name: verified (filesearch $sub: systemd-analyze, restart, SIGTERM, hardening, flags)"
done
exit $status
