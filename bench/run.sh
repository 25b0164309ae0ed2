#!/usr/bin/env bash
# run.sh - run every benchmark of a build, collect their CSV rows into
# BUILD_DIR/bench.csv, print the table of ratios to the best peer, and
# draw the charts (bench/plot) when gnuplot is installed.  `make bench`
# calls it.
#
#   bench/run.sh BUILD_DIR
#
# Runs each executable BUILD_DIR/bench/bench-* (the programs of
# bench/bench-*.c), then each executable script bench/bench-*.sh with
# BUILD_DIR as $1.  Every one prints rows `shape,metric,impl,value,unit,
# better` (bench/bench.h) and '#' comments.  Writes:
#   BUILD_DIR/bench.csv   header + every row and comment, in run order
#   BUILD_DIR/bench.md    the table below, as Markdown
#   BUILD_DIR/img/*.png   the charts (bench/plot), if gnuplot is there
#
# The table has, for each shape and metric, every impl's value and its
# ratio to the best peer: the lowest (or, for "higher" metrics, highest)
# value among the impls whose name does not start with "weft".  Below 1
# means less than the best peer (better for "lower" metrics, worse for
# "higher" ones).  With a best peer of 0 or less (idle CPU, a lateness
# that rounds below zero) a ratio means nothing and is shown as "-".
#
# Environment:
#   BENCH_QUICK=1   a quick look: BENCH_SCALE=0.1, BENCH_RUNS=3 and short
#                   echo rounds, unless those are set
#   BENCH_SCALE, BENCH_RUNS   see bench/bench.h (defaults 1 and 5: the
#                   sizes of the "Benchmarks" issue; about 2-3 minutes here
#                   for everything but echo)
#   BENCH_ONLY=REGEX   run only the programs/scripts whose name matches
#   BENCH_PLOT=0    do not draw the charts
set -u

BUILD=${1:-}
if [ -z "$BUILD" ] || [ ! -d "$BUILD/bench" ]; then
    echo "usage: bench/run.sh BUILD_DIR   (configured with -DWEFT_BUILD_BENCH=ON and built)" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$BUILD" && pwd)

if [ "${BENCH_QUICK:-0}" != 0 ]; then
    export BENCH_SCALE=${BENCH_SCALE:-0.1} BENCH_RUNS=${BENCH_RUNS:-3}
    export BENCH_ECHO_SECONDS=${BENCH_ECHO_SECONDS:-2} BENCH_ECHO_ROUNDS=${BENCH_ECHO_ROUNDS:-2}
fi

CSV=$BUILD/bench.csv
MD=$BUILD/bench.md
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT

progs=()
for p in "$BUILD"/bench/bench-*; do
    [ -f "$p" ] && [ -x "$p" ] && progs+=("$p")
done
for p in "$HERE"/bench-*.sh; do
    [ -f "$p" ] && [ -x "$p" ] && progs+=("$p")
done
if [ "${#progs[@]}" -eq 0 ]; then
    echo "run.sh: no benchmark in $BUILD/bench" >&2
    exit 1
fi

failed=()
start=$(date +%s)
{
    echo "# weft $(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# $(uname -srm), $(nproc) CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); BENCH_SCALE=${BENCH_SCALE:-1} BENCH_RUNS=${BENCH_RUNS:-5}"
} >"$rows"
for p in "${progs[@]}"; do
    name=$(basename "$p")
    if [ -n "${BENCH_ONLY:-}" ] && ! [[ $name =~ $BENCH_ONLY ]]; then
        continue
    fi
    t0=$(date +%s)
    echo "== $name" >&2
    if [[ $name == *.sh ]]; then
        out=$("$p" "$BUILD")
    else
        out=$("$p")
    fi
    rc=$?
    printf '%s\n' "$out" | grep -v -e '^[[:space:]]*$' -e '^shape,metric,' >>"$rows"
    printf '%s\n' "$out" | sed -n 's/^#/  #/p' >&2
    echo "   ($(($(date +%s) - t0)) s, exit $rc)" >&2
    [ "$rc" -eq 0 ] || failed+=("$name")
done
echo "# total $(($(date +%s) - start)) s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$rows"

{
    echo "shape,metric,impl,value,unit,better"
    cat "$rows"
} >"$CSV"

# The table: shapes and metrics in the order they first appear.
awk -F, '
    /^#/ || NF != 6 || $1 == "shape" { next }
    {
        key = $1 SUBSEP $2
        if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
        n = ++cnt[key]
        impl[key, n] = $3; val[key, n] = $4; unit[key] = $5; better[key] = $6
        if ($3 !~ /^weft/) {
            if (!(key in best) || ($6 == "higher" ? $4 + 0 > best[key] : $4 + 0 < best[key]))
                best[key] = $4 + 0
        }
    }
    END {
        print "| shape | metric | impl | value | unit | vs best peer |"
        print "|---|---|---|---|---|---|"
        for (k = 1; k <= nk; k++) {
            key = order[k]; split(key, km, SUBSEP)
            for (i = 1; i <= cnt[key]; i++) {
                v = val[key, i] + 0
                if (!(key in best)) r = "no peer"
                else if (best[key] <= 0) r = (v == best[key] ? "1.00" : "-")
                else r = sprintf(v / best[key] < 0.1 ? "%.3f" : "%.2f", v / best[key])
                b = (better[key] == "higher" ? " (higher is better)" : "")
                printf "| %s | %s | %s | %s | %s | %s%s |\n", km[1], km[2], impl[key, i], val[key, i], unit[key], r, (i == 1 ? b : "")
            }
        }
    }' "$CSV" >"$MD"

echo
cat "$MD"
echo
grep '^#' "$CSV"
echo
echo "run.sh: wrote $CSV and $MD"

if [ "${BENCH_PLOT:-1}" != 0 ] && command -v gnuplot >/dev/null 2>&1; then
    if bash "$HERE/plot" "$CSV" "$BUILD/img"; then
        echo "run.sh: charts in $BUILD/img (copy them to bench/img/ to update the README)"
    else
        echo "run.sh: bench/plot failed" >&2
        failed+=(plot)
    fi
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
