#!/usr/bin/env bash
# run.sh PROG WEFT_GDB_PY CTX - test tools/weft-gdb.py on a live program.
#
# Runs gdb in batch mode on PROG (tests/gdb/prog.c), stopped at
# weft_gdb_stop_here() while named coroutines are suspended in known
# functions, and checks that `weft coros` lists them with the right names,
# states and waits and that `weft bt` shows the functions they stand in.
# CTX is the context-switch backend of the build (asm or ucontext; `weft
# bt` needs asm).  Exit 0 pass, 1 fail, 77 skip (no gdb, or gdb cannot
# trace processes here).
set -uo pipefail

# Under Valgrind (make valgrind: ctest -T memcheck wraps this script)
# there is nothing to check: the program under test is gdb, not weft.
# Leave Valgrind at once (it does not follow an exec) and skip.
case "${LD_PRELOAD:-}" in
  *vgpreload*) exec env -u LD_PRELOAD bash -c 'echo "run.sh: under valgrind: skip"; exit 77' ;;
esac

prog=${1:?usage: run.sh PROG WEFT_GDB_PY CTX}
py=${2:?usage: run.sh PROG WEFT_GDB_PY CTX}
ctx=${3:-asm}

if ! command -v gdb >/dev/null 2>&1; then
  echo "run.sh: gdb not installed (scripts/deps.sh installs it): skip"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/cmds.gdb" <<GDB
set pagination off
set confirm off
set width 0
set print thread-events off
source $py
python
# An error must not end the batch script: print it and go on.
def run(cmd):
    try:
        gdb.execute(cmd)
    except gdb.error as e:
        print("error: %s" % e)
def val(expr):
    return int(gdb.parse_and_eval(expr))
end
break weft_gdb_stop_here
break weft_gdb_stop_main
run
echo ==coros-default==\n
python run("weft coros")
echo ==bt-sleeper==\n
python run("weft bt %d" % val("sleeper_id"))
echo ==bt-waiter==\n
python run("weft bt waiter")
echo ==bt-joiner==\n
python run("weft bt joiner")
echo ==bt-unstarted==\n
python run("weft bt %d" % val("unstarted_id"))
echo ==bt-inspector==\n
python run("weft bt inspector")
echo ==bt-missing==\n
python run("weft bt 999999")
echo ==bt-after==\n
bt 1
echo ==continue-1==\n
continue
echo ==coros-main==\n
python run("weft coros gdb_sched")
echo ==coros-main-default==\n
python run("weft coros")
echo ==bt-waiter-main==\n
python run("weft bt -s gdb_sched %d" % val("waiter_id"))
echo ==continue-2==\n
continue
echo ==end==\n
GDB

# LeakSanitizer cannot run under ptrace: an ASan build leaves it out here.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# The registers of the live program are borrowed and given back: the
# program must still run to its end ("prog: done", exit 0).
gdb -q -nx -batch -x "$tmp/cmds.gdb" --args "$prog" > "$tmp/out" 2>&1
rc=$?
cat "$tmp/out"

if grep -qE "ptrace: Operation not permitted|Could not trace the inferior|not allowed to trace" "$tmp/out"; then
  echo "run.sh: gdb cannot trace processes here: skip"
  exit 77
fi

fail=0
# section NAME: the lines between ==NAME== and the next ==...==
section() {
  awk -v want="==$1==" '
    /^==[a-z0-9-]+==$/ { on = ($0 == want); next }
    on { print }' "$tmp/out"
}
expect() { # expect SECTION REGEX DESCRIPTION
  if ! section "$1" | grep -qE -- "$2"; then
    echo "FAIL [$1]: $3 (no line matches: $2)"
    fail=1
  fi
}
reject() { # reject SECTION REGEX DESCRIPTION
  if section "$1" | grep -qE -- "$2"; then
    echo "FAIL [$1]: $3 (a line matches: $2)"
    fail=1
  fi
}

[ "$rc" -eq 0 ] || { echo "FAIL: gdb exited $rc"; fail=1; }

id='#[0-9]+'
st='prio (normal|idle), stack [0-9]+'
expect coros-default "^weft: scheduler 0x[0-9a-f]+: coroutines 6 \(alive 6\)$" "header"
expect coros-default "^  $id 'sleeper' waiting, prio normal, stack [0-9]+: sleeping until 3600000000000 \(in 3600000000000 ns\)$" "sleeper sleeps"
expect coros-default "^  $id 'waiter' waiting, $st: event 0x[0-9a-f]+$" "waiter waits for an event"
expect coros-default "^  $id 'joiner' waiting, $st: joining $id 'sleeper'$" "joiner joins sleeper"
expect coros-default "^  $id 'yielder' ready, $st$" "yielder is ready"
expect coros-default "^  $id 'inspector' running, prio idle, stack [0-9]+$" "inspector runs"
expect coros-default "^  $id 'unstarted' new, $st: starts at 7200000000000$" "unstarted waits for its start"
reject coros-default "^error:" "weft coros failed"

expect coros-main "^weft: scheduler 0x[0-9a-f]+: coroutines 6 \(alive 5\)$" "header (main)"
expect coros-main "^  $id 'inspector' done, prio idle, stack [0-9]+: status 0$" "inspector finished"
expect coros-main "^  $id 'yielder' ready, $st$" "yielder still ready"
expect coros-main-default "^error: weft: no scheduler runs on this thread" "no default scheduler: an error, not a crash"
expect bt-missing "^error: weft: no coroutine 999999 in scheduler 0x" "unknown id"

if [ "$ctx" = asm ]; then
  expect bt-sleeper "^coroutine $id 'sleeper' waiting" "bt names the coroutine"
  expect bt-sleeper "in gdb_sleeper " "sleeper's frame"
  expect bt-sleeper "weft_sleep_for" "sleeper's blocking call"
  expect bt-waiter "in gdb_waiter " "waiter's frame"
  expect bt-waiter "weft_event_wait" "waiter's blocking call"
  expect bt-joiner "in gdb_joiner " "joiner's frame"
  expect bt-joiner "weft_join" "joiner's blocking call"
  expect bt-unstarted "weft(__|\.)ctx_trampoline" "a new coroutine's first frame (clang builds show weft.ctx_trampoline)"
  expect bt-inspector "weft_gdb_stop_here" "the running coroutine's bt"
  expect bt-inspector "in gdb_inspector " "the running coroutine's body"
  expect bt-waiter-main "in gdb_waiter " "bt from main, outside the scheduler"
  reject bt-sleeper "gdb_waiter|gdb_inspector" "sleeper's bt shows another stack"
  for sec in bt-sleeper bt-waiter bt-joiner bt-unstarted bt-inspector bt-waiter-main; do
    reject "$sec" "^error:" "weft bt failed"
  done
else
  expect bt-sleeper "weft bt needs the assembly switch" "ucontext: bt refused"
fi
# Registers given back: the next bt is the real one, and the program ends.
expect bt-after "weft_gdb_stop_here" "registers restored"
expect continue-2 "^prog: done$" "the program ran to its end"
expect continue-2 "exited normally" "the program exited 0"

if [ "$fail" -ne 0 ]; then
  echo "run.sh: FAILED"
  exit 1
fi
echo "run.sh: all checks passed"
exit 0
