#!/usr/bin/env bash
# memcheck.sh BUILD_DIR [ctest args...]
#
# Runs every test case of BUILD_DIR under valgrind memcheck (ctest -T
# memcheck; the valgrind options are MEMORYCHECK_COMMAND_OPTIONS in
# CMakeLists.txt) and fails if any case fails or any defect is reported.
# The memcheck log of each case with defects is printed.
set -uo pipefail

build=${1:?usage: memcheck.sh BUILD_DIR [ctest args...]}
shift
log="$build/memcheck.log"

ctest --test-dir "$build" -T memcheck --output-on-failure -E '^libweft\.' "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

defects=$(grep -E 'MemCheck: #[0-9]+: .*Defects: [0-9]+' "$log" || true)
if [ -n "$defects" ]; then
  echo
  echo "memcheck: defects reported:"
  echo "$defects"
  for n in $(printf '%s\n' "$defects" | sed -E 's/.*MemCheck: #([0-9]+):.*/\1/'); do
    f="$build/Testing/Temporary/MemoryChecker.$n.log"
    if [ -f "$f" ]; then
      echo "===== $f"
      cat "$f"
    fi
  done
  exit 1
fi
if [ "$rc" -ne 0 ]; then
  echo "memcheck: ctest failed (exit $rc)"
  exit 1
fi
echo "memcheck: no defects"
