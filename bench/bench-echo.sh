#!/usr/bin/env bash
# bench-echo.sh - the echo benchmark: 100 connections x 64-byte messages
# against weft (epoll, poll, io_uring backends), libuv and a plain epoll
# server, all driven by the same client (tools/weft-bench); prints CSV.
#
#   bench/bench-echo.sh BUILD_DIR
#
# BUILD_DIR is configured with -DWEFT_BUILD_BENCH=ON (tools/ are always
# built): it needs BUILD_DIR/tools/weft-bench and BUILD_DIR/bench/echo-weft,
# echo-epoll and echo-uv (only when libuv was found; skipped otherwise).
#
# Output on stdout, one row per metric and server, no header:
#   shape,metric,impl,value,unit,better
#   echo,req_per_s,weft-epoll,98000,req/s,higher
#   echo,cpu_us_per_req,weft-epoll,9.1,us,lower     (server CPU per request)
#   echo,p99_latency,weft-epoll,850,us,lower        (client-side round trip)
# Lines starting with '#' are comments (raw rounds, ratios to plain epoll).
#
# Method: every server is started once, warmed up for 0.5 s, then measured
# in BENCH_ECHO_ROUNDS rounds (default 8) that visit the servers in turn,
# so that slow drifts of a shared machine hit them all alike; each value
# is the median of the rounds.  Each server gets BENCH_ECHO_SECONDS in all
# (default 8, split over the rounds), so the script takes about
# 5 x (8 + 0.5) s.  Server CPU is the process's run time (user + system)
# before and after a round, from /proc/PID/task/*/schedstat (ns), else
# utime + stime of /proc/PID/stat; the kernel's loopback TCP work done in
# the server's system calls counts, as it should.
#
# Pinning: with two or more CPUs and taskset(1), the client runs on CPU 0
# and the server on CPU 1 (BENCH_ECHO_PIN=0: no pinning).  Each side then
# has a core to itself, nothing migrates, and the client, which does about
# as much work per request as a server, is the same for every server.  The
# client uses weft's epoll backend (BENCH_ECHO_CLIENT_BACKEND to change).
set -u

BUILD=${1:-}
if [ -z "$BUILD" ] || [ ! -d "$BUILD" ]; then
    echo "usage: bench/bench-echo.sh BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$BUILD" && pwd)
SECS=${BENCH_ECHO_SECONDS:-8}
ROUNDS=${BENCH_ECHO_ROUNDS:-8}
CONNS=${BENCH_ECHO_CONNS:-100}
SIZE=${BENCH_ECHO_SIZE:-64}
PIN=${BENCH_ECHO_PIN:-1}
CLIENT_BACKEND=${BENCH_ECHO_CLIENT_BACKEND:-epoll}
CLIENT=$BUILD/tools/weft-bench

if [ ! -x "$CLIENT" ]; then
    echo "bench-echo.sh: $CLIENT is not built" >&2
    exit 1
fi
ROUND_SECS=$(awk -v s="$SECS" -v r="$ROUNDS" 'BEGIN { printf "%.3f", s / r }')
TICK=$(getconf CLK_TCK)

PIN_CLIENT=() PIN_SERVER=()
if [ "$PIN" != 0 ] && command -v taskset >/dev/null 2>&1 &&
    [ "$(nproc)" -ge 2 ]; then
    PIN_CLIENT=(taskset -c 0) PIN_SERVER=(taskset -c 1)
fi

# impl name, then the command that serves (prints "...:PORT" first)
IMPLS=(weft-epoll weft-poll weft-io_uring libuv plain-epoll)
declare -A CMD=(
    [weft-epoll]="env WEFT_BACKEND=epoll $BUILD/bench/echo-weft"
    [weft-poll]="env WEFT_BACKEND=poll $BUILD/bench/echo-weft"
    [weft-io_uring]="env WEFT_BACKEND=io_uring $BUILD/bench/echo-weft"
    [libuv]="$BUILD/bench/echo-uv"
    [plain-epoll]="$BUILD/bench/echo-epoll"
)
declare -A PID PORT
TMP=$(mktemp -d)
cleanup() {
    for i in "${!PID[@]}"; do
        kill "${PID[$i]}" 2>/dev/null
        wait "${PID[$i]}" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU time of a process in ns: the sum of its threads' run time from
# /proc/PID/task/*/schedstat (ns resolution), else utime + stime from
# /proc/PID/stat (clock ticks: 10 ms, coarse for a 1 s round)
cpu_ns() {
    local f t sum=0
    if [ -r "/proc/$1/schedstat" ]; then
        for f in /proc/"$1"/task/*/schedstat; do
            read -r t _ <"$f" && sum=$((sum + t))
        done
        echo "$sum"
    else
        # the fields after "(comm)": state is $1, utime $12, stime $13
        sed 's/^.*) //' "/proc/$1/stat" |
            awk -v tick="$TICK" '{ printf "%.0f\n", ($12 + $13) * 1e9 / tick }'
    fi
}

echo "# echo: $CONNS connections x $SIZE B, $ROUNDS rounds x $ROUND_SECS s per server," \
    "client weft-bench ($CLIENT_BACKEND), pinned: ${PIN_CLIENT[*]:-no}/${PIN_SERVER[*]:-no}"

started=()
for impl in "${IMPLS[@]}"; do
    read -r -a argv <<<"${CMD[$impl]}"
    bin=${argv[-1]}
    if [ ! -x "$bin" ]; then
        echo "# $impl: skipped ($bin is not built)"
        continue
    fi
    "${PIN_SERVER[@]}" "${argv[@]}" 0 >"$TMP/$impl.out" 2>"$TMP/$impl.err" &
    pid=$!
    port=""
    for _ in $(seq 50); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
            "$TMP/$impl.out" 2>/dev/null)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "# $impl: skipped (server did not start: $(head -c 200 "$TMP/$impl.err"))"
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        continue
    fi
    # taskset execs, so $! is the server itself
    PID[$impl]=$pid PORT[$impl]=$port
    echo "# $impl: $(head -n 1 "$TMP/$impl.out"), pid $pid"
    "${PIN_CLIENT[@]}" "$CLIENT" -q --csv --backend "$CLIENT_BACKEND" \
        -c "$CONNS" -s "$SIZE" -d 0.5 "$port" >/dev/null
    started+=("$impl")
done

# one round of one server: "req_per_s cpu_us_per_req p99_us errors"
measure() {
    local impl=$1 c0 c1 line
    c0=$(cpu_ns "${PID[$impl]}")
    line=$("${PIN_CLIENT[@]}" "$CLIENT" -q --csv --backend "$CLIENT_BACKEND" \
        -c "$CONNS" -s "$SIZE" -d "$ROUND_SECS" "${PORT[$impl]}")
    c1=$(cpu_ns "${PID[$impl]}")
    echo "$line" | awk -F, -v c0="$c0" -v c1="$c1" '
        { reqs = $5; cpu = reqs > 0 ? (c1 - c0) / 1e3 / reqs : 0
          printf "%s %.3f %s %s\n", $7, cpu, $13, $6 }'
}

for r in $(seq "$ROUNDS"); do
    for impl in "${started[@]}"; do
        m=$(measure "$impl")
        echo "$m" >>"$TMP/$impl.rounds"
        echo "# round $r $impl: req/s cpu_us/req p99_us errors = $m"
    done
done

median() { # column $1 of file $2
    awk -v c="$1" '{ print $c }' "$2" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                                  else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A RATE CPU
for impl in "${started[@]}"; do
    f=$TMP/$impl.rounds
    RATE[$impl]=$(median 1 "$f")
    CPU[$impl]=$(median 2 "$f")
    p99=$(median 3 "$f")
    errs=$(awk '{ s += $4 } END { print s + 0 }' "$f")
    [ "$errs" != 0 ] && echo "# $impl: $errs client errors"
    printf 'echo,req_per_s,%s,%.0f,req/s,higher\n' "$impl" "${RATE[$impl]}"
    printf 'echo,cpu_us_per_req,%s,%.2f,us,lower\n' "$impl" "${CPU[$impl]}"
    printf 'echo,p99_latency,%s,%.0f,us,lower\n' "$impl" "$p99"
done
if [ -n "${RATE[plain-epoll]:-}" ]; then
    for impl in "${started[@]}"; do
        awk -v i="$impl" -v r="${RATE[$impl]}" -v br="${RATE[plain-epoll]}" \
            -v c="${CPU[$impl]}" -v bc="${CPU[plain-epoll]}" 'BEGIN {
            printf "# %s vs plain-epoll: %.3fx req/s, %.3fx CPU per request\n",
                i, r / br, (bc > 0 ? c / bc : 0) }'
    done
fi
