#!/usr/bin/env bash
# lint.sh - static analysis: clang-tidy (.clang-tidy) and cppcheck
# (scripts/cppcheck-suppressions.txt) over the library (src/, src/poll/,
# src/ctx/), tools/ and examples/.  Fails on any finding.  `make lint`.
#
#   scripts/lint.sh [-j N]
#
# Scope: tests/ and fuzz/ are left out: test code pokes at internals on
# purpose (NULL arguments, ignored results, deliberate misuse) and would
# need its own, looser configuration.  bench/ is left out too.
#
# The compile commands come from a CMake configure (no build) in
# $LINT_BUILD (default build-lint/), so the analysis sees the same flags
# and definitions as the compiler; build-lint/ucontext/ is a second
# configure for the ucontext backend's file (src/ctx/ucontext.c).
#
# Environment: CLANG_TIDY, CPPCHECK (programs), LINT_BUILD, CMAKE.
set -euo pipefail

cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
  case "$1" in
    -j) jobs=$2; shift 2 ;;
    -j*) jobs=${1#-j}; shift ;;
    *) echo "usage: $0 [-j N]" >&2; exit 2 ;;
  esac
done

build=${LINT_BUILD:-build-lint}
# Absolute: cppcheck names the files of a relative --project relative too,
# and the file filters below are absolute.
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
cmake=${CMAKE:-cmake}
if [ -z "${CLANG_TIDY:-}" ]; then
  CLANG_TIDY=$(command -v clang-tidy || command -v clang-tidy-14 || true)
fi
CPPCHECK=${CPPCHECK:-cppcheck}
for tool in "$CLANG_TIDY" "$CPPCHECK"; do
  if [ -z "$tool" ] || ! command -v "$tool" >/dev/null 2>&1; then
    echo "lint: ${tool:-clang-tidy} not found (scripts/deps.sh installs clang-tidy and cppcheck)" >&2
    exit 1
  fi
done

start=$SECONDS
# Configure only: compile_commands.json is all the tools need.
"$cmake" -S . -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DCMAKE_BUILD_TYPE=Debug -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=ON \
  -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_FUZZ=OFF >/dev/null
"$cmake" -S . -B "$build/ucontext" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DCMAKE_BUILD_TYPE=Debug -DWEFT_CTX=ucontext -DWEFT_BUILD_TESTS=OFF \
  -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_FUZZ=OFF >/dev/null

# The C files of a compilation database under src/, tools/ or examples/.
db_files() {
  sed -n 's/^ *"file": *"\(.*\)",\{0,1\}$/\1/p' "$1/compile_commands.json" |
    grep -E "^$PWD/(src|tools|examples)/.*\.c$" | sort -u
}
mapfile -t files < <(db_files "$build")
uc_file="$PWD/src/ctx/ucontext.c"
if [ "${#files[@]}" -eq 0 ]; then
  echo "lint: no sources in $build/compile_commands.json" >&2
  exit 1
fi

failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# --- clang-tidy: one process per file, $jobs at a time --------------------
echo "lint: $("$CLANG_TIDY" --version | grep -m1 -o 'version [0-9.]*') on ${#files[@]} + 1 files, -j $jobs"
set +e
{
  printf '%s\n' "${files[@]}" |
    xargs -P "$jobs" -n 1 "$CLANG_TIDY" --quiet -p "$build"
  r1=$?
  "$CLANG_TIDY" --quiet -p "$build/ucontext" "$uc_file"
  r2=$?
  [ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]
} >"$out" 2>&1
tidy_rc=$?
set -e
# Keep the diagnostics, drop the "N warnings generated" chatter.
grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter=|^Use -system-headers' "$out" || true
if [ "$tidy_rc" -ne 0 ] || grep -qE ': (warning|error): ' "$out"; then
  echo "lint: clang-tidy: FINDINGS (see above)"
  failed=1
else
  echo "lint: clang-tidy: clean"
fi

# --- cppcheck ---------------------------------------------------------------
# cppcheck reads no system headers: give it the target's predefined macros
# that the sources test (architecture, glibc version).
defs=(-D__linux__=1)
case "$(uname -m)" in
  x86_64) defs+=(-D__x86_64__=1) ;;
  aarch64) defs+=(-D__aarch64__=1) ;;
esac
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
if [ -n "$glibc" ]; then
  read -r gmaj gmin <<< "$glibc"
  defs+=(-D__GLIBC__="$gmaj" -D__GLIBC_MINOR__="$gmin")
fi
cppcheck_args=('--enable=warning,style,performance,portability' --std=c11
  --library=posix --library=gnu --inline-suppr
  --suppressions-list=scripts/cppcheck-suppressions.txt
  --error-exitcode=1 --quiet "${defs[@]}"
  --template='{file}:{line}:{column}: {severity}: {message} [{id}]')
echo "lint: $("$CPPCHECK" --version)"
set +e
"$CPPCHECK" "${cppcheck_args[@]}" -j "$jobs" \
  --project="$build/compile_commands.json" --file-filter="$PWD/src/*" \
  --file-filter="$PWD/tools/*" --file-filter="$PWD/examples/*"
c1=$?
"$CPPCHECK" "${cppcheck_args[@]}" \
  --project="$build/ucontext/compile_commands.json" --file-filter="$uc_file"
c2=$?
set -e
if [ "$c1" -ne 0 ] || [ "$c2" -ne 0 ]; then
  echo "lint: cppcheck: FINDINGS (see above)"
  failed=1
else
  echo "lint: cppcheck: clean"
fi

echo "lint: $((SECONDS - start)) s"
if [ "$failed" -ne 0 ]; then
  echo "lint: FAILED"
  exit 1
fi
echo "lint: passed (clang-tidy and cppcheck: no findings)"
