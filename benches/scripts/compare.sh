#!/usr/bin/env bash
# Compares two builds of the throughput harness in alternating runs, the only comparison
# this kind of shared machine supports (the same binary varies by a third within minutes).
#
#   cargo bench -p benches --bench throughput --no-run   # prints the harness's path
#   cp <that path> /tmp/before   # on the old commit; then again on the new one:
#   benches/scripts/compare.sh /tmp/before /tmp/after 8
#
# HARNESS_ARGS are passed to both (default `--profile recurring`), e.g.
#   HARNESS_ARGS="--profile near-unique" benches/scripts/compare.sh /tmp/before /tmp/after
#
# Prints each run (records/s, the release's phases in ms and its CPU seconds), then per
# build the medians and in how many pairs the second build was faster.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BEFORE AFTER [PAIRS]" >&2
  exit 2
fi
before=$1 after=$2 pairs=${3:-6}
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
run() {
  local out
  # shellcheck disable=SC2086 # HARNESS_ARGS is a list of arguments.
  out=$(RUST_LOG=pipeline=info "$1" ${HARNESS_ARGS:---profile recurring} 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
  printf '%s %s %s %s\n' "$2" \
    "$(grep 'records/s' <<<"$out" | awk '{print $2}')" \
    "$(grep 'phases ' <<<"$out" | grep -oE '(pass1_ms|decide_ms|pass2_ms)=[0-9]+' | cut -d= -f2 | tr '\n' ' ')" \
    "$(grep 'CPU time' <<<"$out" | awk '{print $3}')"
}
for _ in $(seq "$pairs"); do
  run "$before" A | tee -a "$runs"
  run "$after" B | tee -a "$runs"
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }
for build in A B; do
  printf '%s medians: records/s %s, pass 1 %s ms, decision %s ms, pass 2 %s ms, CPU %s s\n' \
    "$([ $build = A ] && echo before || echo after)" \
    "$(awk -v b=$build '$1==b {print $2}' "$runs" | median)" \
    "$(awk -v b=$build '$1==b {print $3}' "$runs" | median)" \
    "$(awk -v b=$build '$1==b {print $4}' "$runs" | median)" \
    "$(awk -v b=$build '$1==b {print $5}' "$runs" | median)" \
    "$(awk -v b=$build '$1==b && NF >= 6 {print $6 * 100}' "$runs" | median | awk '{printf "%.2f", $1 / 100}')"
done
awk '$1=="A" {a[++i]=$2} $1=="B" {b[++j]=$2} END {
  for (k = 1; k <= i; k++) if (b[k] > a[k]) w++
  printf "after faster in %d of %d pairs\n", w, i }' "$runs"
