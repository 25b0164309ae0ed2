#!/usr/bin/env bash
# run.sh BUILD_DIR [SECONDS] [HARNESS...] - run the libFuzzer harnesses.
#
# Runs each harness built in BUILD_DIR/fuzz (all of them by default) for
# SECONDS (default: $FUZZ_SECONDS, else 60), starting from its seed corpus
# fuzz/corpus/<harness>/ (read only) plus the inputs found by earlier runs
# in BUILD_DIR/fuzz-corpus/<harness>/ (where new ones go).  Fails if any
# harness finds a crash, a leak or a hang; the input is then saved as
# BUILD_DIR/fuzz-artifacts/<harness>-crash-<sha1> and the command to
# replay it is printed.  `make fuzz` builds and calls this.
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR [SECONDS] [HARNESS...]}
shift
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
src=$(cd "$(dirname "$0")" && pwd)

if [ $# -gt 0 ]; then
  harnesses=("$@")
else
  harnesses=()
  for f in "$build"/fuzz/fuzz-*; do
    [ -x "$f" ] && harnesses+=("$(basename "$f")")
  done
fi
if [ ${#harnesses[@]} -eq 0 ]; then
  echo "fuzz: no harness built in $build/fuzz" >&2
  exit 1
fi

mkdir -p "$build/fuzz-artifacts"
failed=()
for h in "${harnesses[@]}"; do
  bin="$build/fuzz/$h"
  work="$build/fuzz-corpus/$h"
  seeds="$src/corpus/$h"
  log="$build/fuzz-$h.log"
  mkdir -p "$work" "$seeds"
  echo "== fuzz: $h for ${secs}s (seeds: fuzz/corpus/$h, log: $log)"
  # -timeout: an input running longer is a hang; -rss_limit_mb: a leak
  # that grows without bound.  UBSan findings abort (the build uses
  # -fno-sanitize-recover=undefined).
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 \
           -print_final_stats=1 \
           -artifact_prefix="$build/fuzz-artifacts/$h-" \
           "$work" "$seeds" > "$log" 2>&1
  rc=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | sed 's/^/   /'
  if [ $rc -ne 0 ]; then
    echo "fuzz: $h FAILED (exit $rc); end of its log:"
    tail -n 40 "$log"
    art=$(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')
    [ -n "$art" ] && echo "fuzz: replay with: $bin $art"
    failed+=("$h")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#harnesses[@]} harness(es), ${secs}s each: no finding"
