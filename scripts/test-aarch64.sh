#!/usr/bin/env bash
# test-aarch64.sh - cross-compile weft for aarch64 (so the assembly switch
# of src/ctx/aarch64.S is the one built) and run test cases under
# qemu-user.
#
#   scripts/test-aarch64.sh                 test-ctx, test-sched, test-coro
#   scripts/test-aarch64.sh ctx timer ...   the named tests/test-*.c
#   scripts/test-aarch64.sh --all           every test (all of CTest)
#   ... -- CTEST_ARGS                       extra arguments for ctest
#
# It configures the project's own CMake build with the cross compiler,
# links every program statically (so qemu needs no aarch64 sysroot) and
# lets CTest run each case under qemu (CMAKE_CROSSCOMPILING_EMULATOR), one
# process per case as usual.  Build tree: build-aarch64/ (or $BUILD).
#
# Needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
# (or qemu-user-static).  Exits 77 when they are missing, non-zero when a
# build step or a case fails.
set -uo pipefail

cd "$(dirname "$0")/.."

CC=${CC_AARCH64:-aarch64-linux-gnu-gcc}
BUILD=${BUILD:-build-aarch64}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# qemu is slower than the machine: a longer per-case limit than CTest's
# default (the 1M-coroutine case takes about 20 s under qemu).
CASE_TIMEOUT=${CASE_TIMEOUT:-120}

QEMU=""
for q in qemu-aarch64 qemu-aarch64-static; do
  if command -v "$q" >/dev/null 2>&1; then QEMU=$(command -v "$q"); break; fi
done
if ! command -v "$CC" >/dev/null 2>&1 || [ -z "$QEMU" ]; then
  echo "test-aarch64: needs $CC and qemu-aarch64; on Debian:" >&2
  echo "  apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
  exit 77
fi

# Arguments: programs, --all, then -- and ctest arguments.
progs=()
all=0
while [ $# -gt 0 ]; do
  case $1 in
    --all) all=1 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) p=${1#test-}; progs+=("test-${p%.c}") ;;
  esac
  shift
done
if [ $all -eq 0 ] && [ ${#progs[@]} -eq 0 ]; then
  progs=(test-ctx test-sched test-coro)
fi
targets=()
regex=""
if [ $all -eq 0 ]; then
  for p in "${progs[@]}"; do
    if [ -f "tests/$p.c" ]; then
      targets+=("$p")
      regex="${regex:+$regex|}$p"
    else
      echo "test-aarch64: no tests/$p.c, skipped"
    fi
  done
  if [ ${#targets[@]} -eq 0 ]; then
    echo "test-aarch64: no test program to build" >&2
    exit 1
  fi
fi

start=$(date +%s)
echo "== configuring $BUILD with $($CC --version | head -n 1)"
# pkg-config must not hand the host's (x86_64) liburing or GLib to the
# cross build: look only where aarch64 .pc files would live.
PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
cmake -S . -B "$BUILD" \
  -DCMAKE_SYSTEM_NAME=Linux \
  -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_ASM_COMPILER="$CC" \
  -DCMAKE_EXE_LINKER_FLAGS=-static \
  -DCMAKE_CROSSCOMPILING_EMULATOR="$QEMU" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" \
  -DCMAKE_ASM_FLAGS_RELWITHDEBINFO="-g" \
  -DWEFT_CTX=asm \
  -DWEFT_WITH_URING=OFF \
  -DWEFT_BUILD_EXAMPLES=OFF \
  -DWEFT_TEST_TIMEOUT="$CASE_TIMEOUT" > "$BUILD.configure.log" 2>&1 ||
  { cat "$BUILD.configure.log"; echo "test-aarch64: configure failed"; exit 1; }
grep -q 'context switch: asm (.*aarch64.S)' "$BUILD.configure.log" ||
  { cat "$BUILD.configure.log"; echo "test-aarch64: not building aarch64.S"; exit 1; }
rm -f "$BUILD.configure.log"

echo "== building ${targets[*]:-everything}"
if [ $all -eq 1 ]; then
  cmake --build "$BUILD" -j "$JOBS" || { echo "test-aarch64: build failed"; exit 1; }
else
  cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" ||
    { echo "test-aarch64: build failed"; exit 1; }
fi
built=$(date +%s)

echo "== running under $QEMU"
log="$BUILD/ctest-aarch64.log"
if [ $all -eq 1 ]; then
  ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure "$@" 2>&1 | tee "$log"
else
  ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure \
        -R "^($regex)\\." "$@" 2>&1 | tee "$log"
fi
rc=${PIPESTATUS[0]}
end=$(date +%s)

npass=$(grep -cE 'Test +#[0-9]+: .* +Passed' "$log")
nskip=$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$log")
nfail=$(grep -cE 'Test +#[0-9]+: .*(\*\*\*(Failed|Timeout|Exception)|\*\*\*Not Run|Child aborted)' "$log")
echo
echo "test-aarch64: built in $((built - start)) s, ran in $((end - built)) s"
echo "aarch64: $npass passed, $nfail failed, $nskip skipped"
if [ "$rc" -ne 0 ] || [ "$nfail" -ne 0 ] || [ $((npass + nskip)) -eq 0 ]; then
  exit 1
fi
exit 0
