#!/usr/bin/env bash
# deps.sh - install what weft's build and tests need, on Debian 12.
#
# Idempotent and quick: when every package is installed it prints one line
# and exits 0 without touching apt.  Otherwise it runs `apt-get update` once
# and installs only the missing packages (as root, or through sudo).
#
#   scripts/deps.sh            install what is missing
#   scripts/deps.sh --check    only report; exit 1 if something is missing
#   scripts/deps.sh --aarch64  also the aarch64 cross toolchain and qemu
#   WEFT_SKIP_DEPS=1           do nothing (for machines set up by hand)
set -euo pipefail

# One package per line: name, then why weft needs it.  Extend here.
WEFT_DEPS='
cmake        build system (CMakeLists.txt) and test driver (ctest)
make         the top-level Makefile
gcc          the default C compiler; its ASan/UBSan/TSan runtimes
libc6-dev    C library headers (gcc only recommends them)
clang        the second compiler (make clang)
valgrind     memcheck (make valgrind) and <valgrind/valgrind.h> stack registration
libsqlite3-dev  SQLite: the doorbell example (examples/doorbell_sqlite.c) and its test
sqlite3      the SQLite shell, for trying the doorbell example by hand
pkg-config   the install smoke test (weft.pc), finding GLib
libglib2.0-dev  GLib main loop: the embedding example and its test
liburing-dev    the io_uring backend (probed at run time; epoll otherwise)
curl            a real HTTP client for the examples/http test
wrk             an HTTP load generator for the examples/http test
gdb             the test of the gdb extension tools/weft-gdb.py (tests/gdb)
libclang-rt-14-dev  libFuzzer for clang 14: the fuzz/ harnesses (make fuzz)
clang-tidy      static analysis with .clang-tidy (make lint, scripts/lint.sh)
cppcheck        static analysis, the second opinion (make lint, scripts/lint.sh)
libuv1-dev      libuv: the peer of the bench timers, doorbell and echo shapes (make bench)
libboost-context-dev  Boost.Context fcontext: the lower bound of the bench switch and spawn shapes
libpth-dev      GNU Pth: the peer thread library of the bench switch, spawn, memory, timers shapes
gnuplot-nox     bench/plot draws the charts of bench/README.md from bench.csv
'

# Only with --aarch64 (make aarch64): cross-build and run the tests under qemu.
WEFT_DEPS_AARCH64='
gcc-aarch64-linux-gnu   cross compiler for the aarch64 context switch
libc6-dev-arm64-cross   aarch64 C library headers and objects
qemu-user               runs the aarch64 test programs (qemu-aarch64)
'

check_only=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --aarch64) WEFT_DEPS="$WEFT_DEPS$WEFT_DEPS_AARCH64" ;;
    *) echo "usage: $0 [--check] [--aarch64]" >&2; exit 2 ;;
  esac
done

if [ "${WEFT_SKIP_DEPS:-0}" = 1 ]; then
  echo "deps: skipped (WEFT_SKIP_DEPS=1)"
  exit 0
fi

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: not a Debian system (no dpkg/apt-get); install these by hand:" >&2
  printf '%s\n' "$WEFT_DEPS" | sed '/^[[:space:]]*$/d; s/^/  /' >&2
  exit 0
fi

# (No `dpkg -s | grep -q`: under pipefail, grep quitting early can kill dpkg
# with SIGPIPE and make an installed package look missing.)
installed() {
  local info
  info=$(dpkg -s "$1" 2>/dev/null) || return 1
  [[ $'\n'"$info"$'\n' == *$'\nStatus: install ok installed\n'* ]]
}

missing=()
while read -r pkg why; do
  [ -n "$pkg" ] || continue
  if ! installed "$pkg"; then
    missing+=("$pkg")
    echo "deps: missing $pkg: $why"
  fi
done <<< "$WEFT_DEPS"

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all present ($(printf '%s\n' "$WEFT_DEPS" | awk 'NF {printf "%s%s", sep, $1; sep=" "}'))"
  exit 0
fi

if [ "$check_only" = 1 ]; then
  echo "deps: ${#missing[@]} package(s) missing: ${missing[*]}" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "deps: not root and no sudo: install as root: apt-get install ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg may hold the locks for a while: wait for them, and retry.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q
     -o DPkg::Lock::Timeout=300)
retry() {
  local i
  for i in 1 2 3 4 5; do
    "$@" && return 0
    echo "deps: '$*' failed (try $i of 5)" >&2
    sleep 10
  done
  return 1
}

echo "deps: apt-get update"
retry "${apt[@]}" update

# Check again: a concurrent dpkg run can make a package look absent.
again=()
for pkg in "${missing[@]}"; do
  installed "$pkg" || again+=("$pkg")
done
missing=("${again[@]}")
if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all present after all"
  exit 0
fi

echo "deps: apt-get install ${missing[*]}"
retry "${apt[@]}" install -y --no-install-recommends "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do
  installed "$pkg" || still+=("$pkg")
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "deps: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "deps: installed ${missing[*]}"
