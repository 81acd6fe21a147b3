#!/bin/sh
# Instructions per head and per byte, h1parse vs http-parser, under callgrind.
# Usage: tests/fuzz/bench_h1parse.sh [N]   (from the repository root)
set -e
N=${1:-2000}
B=build/fuzz/bench_h1parse
mkdir -p build/fuzz
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -g -fno-omit-frame-pointer -I. -o $B \
    tests/fuzz/bench_h1parse.c proxy/h1parse.c -lhttp_parser
OUT=$(mktemp)
printf '%-18s %6s %12s %12s %12s %12s %7s\n' case bytes h1p/head hp/head h1p/byte hp/byte ratio
for k in 0 1 2 3 4 5; do
    desc=$(valgrind --tool=callgrind --callgrind-out-file="$OUT" --collect-atstart=no \
        --toggle-collect='run_*' $B "$N" $k 2>/dev/null)
    bytes=${desc##* }
    name=${desc% *}
    callgrind_annotate --inclusive=yes "$OUT" 2>/dev/null | awk -v n="$N" -v b="$bytes" -v name="$name" '
        /^ *[0-9,]+ \(/ && /run_h1parse/ { gsub(",", "", $1); a = $1 }
        /^ *[0-9,]+ \(/ && /run_http_parser/ { gsub(",", "", $1); h = $1 }
        END { printf "%-18s %6d %12.0f %12.0f %12.2f %12.2f %7.1f\n", name, b, a/n, h/n,
              a/n/b, h/n/b, h/a }'
done
rm -f "$OUT"
