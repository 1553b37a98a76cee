#!/usr/bin/env bash
# bench.sh measures what a dashboard costs the bus: the core's S1 and S2
# (BenchmarkS1, BenchmarkS2 in bench_test.go) without and with a dashboard
# subscribed, in ROUNDS interleaved rounds (default 10) of BENCHTIME each
# (default 300ms), so that both sides see the same load. It prints the
# median ns/op of each side and their ratio, as a Markdown table, and keeps
# the raw output in ${OUT:-/tmp/dashboard-bench.txt}.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${ROUNDS:-10}
benchtime=${BENCHTIME:-300ms}
out=${OUT:-/tmp/dashboard-bench.txt}
bin=$(mktemp)
go test -c -o "$bin" .
: >"$out"
for _ in $(seq "$rounds"); do
	"$bin" -test.run '^$' -test.bench '^Benchmark(S1|S2)$' -test.benchtime="$benchtime" -test.benchmem >>"$out"
done
rm -f "$bin"
grep '^Benchmark' "$out" | awk '
	{ name = $1; sub(/-[0-9]+$/, "", name); split(name, p, "/")
	  key = p[1] "/" p[3]; side[key "|" p[2]] = side[key "|" p[2]] " " $3 }
	END { for (k in side) print k, side[k] }' |
	while read -r key values; do
		median=$(printf '%s\n' $values | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
		echo "$key $median"
	done | sort -V | awk '
	{ split($1, part, "|"); if (!(part[1] in seen)) { seen[part[1]] = 1; order[++n] = part[1] }
	  m[part[1], part[2]] = $2 }
	END {
		print "| benchmark | without ns/op | with ns/op | with / without |"
		print "| --- | --: | --: | --: |"
		for (i = 1; i <= n; i++) {
			name = order[i]; off = m[name, "dashboard=off"]; on = m[name, "dashboard=on"]
			printf "| %s | %.0f | %.0f | %.2f |\n", name, off, on, on / off
		}
	}'
