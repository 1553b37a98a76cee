#!/usr/bin/env bash
# Runs BenchmarkCrossing and regenerates natsbridge's benchmark table.
#
#   natsbridge/bench/run.sh
#
# Runs every path of BenchmarkCrossing 5 times (about 4 minutes on a
# 2-core VM), saves the raw output, with the machine, its load average,
# the Go version, the module versions, the date and the command, to
# natsbridge/bench/results/latest.txt, and rewrites the region between
# <!-- crossing:start --> and <!-- crossing:end --> in natsbridge/README.md
# from it (cmd/crossingtable).
#
# Environment:
#   BENCHTIME   -benchtime per path (default 3s)
#   COUNT       -count (default 5)
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

benchtime=${BENCHTIME:-3s}
count=${COUNT:-5}
cmd=(go test -run '^$' -bench '^BenchmarkCrossing$' "-count=$count" "-benchtime=$benchtime" .)
cmd_text="cd natsbridge/bench && go test -run '^\$' -bench '^BenchmarkCrossing\$' -count=$count -benchtime=$benchtime ."

mkdir -p results
out=results/latest.txt
tmp=results/latest.txt.tmp
trap 'rm -f "$tmp"' EXIT

model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cores=$(grep -c '^processor' /proc/cpuinfo)
memory=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
loadavg() { cut -d' ' -f1 /proc/loadavg; }
{
	echo "machine: $model, $cores vCPUs, $memory"
	echo "goversion: $(go version)"
	echo "date: $(date -u +%Y-%m-%d)"
	echo "command: $cmd_text"
	go list -m -f 'module: {{.Path}} {{.Version}}' \
		github.com/nats-io/nats.go github.com/nats-io/nats-server/v2 \
		github.com/ThreeDotsLabs/watermill-nats/v2 github.com/ThreeDotsLabs/watermill
} >"$tmp"

load_before=$(loadavg)
start=$(date +%s)
status=0
"${cmd[@]}" 2>&1 | tee -a "$tmp" || status=$?
elapsed=$(($(date +%s) - start))
{
	printf 'walltime: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
	echo "load: $load_before before, $(loadavg) after"
} >>"$tmp"
mv "$tmp" "$out"

go run ./cmd/crossingtable -in "$out" -update ../README.md
echo "run.sh: benchmarks took ${elapsed}s; wrote $out; updated natsbridge/README.md"
if [ "$status" -ne 0 ]; then
	echo "run.sh: go test failed (status $status)" >&2
	exit 1
fi
