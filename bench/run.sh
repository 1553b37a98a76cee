#!/usr/bin/env bash
# Runs the peer comparison and regenerates its tables.
#
#   bench/run.sh
#
# Runs every benchmark of this module 5 times (about 8 minutes on a 2-core
# VM), saves the raw output, with the machine, Go version, date and command,
# to bench/results/latest.txt, and rewrites the region between
# <!-- bench:start --> and <!-- bench:end --> in bench/README.md and in the
# repository's README.md from it (bench/cmd/benchtable).
#
# Environment:
#   BENCHTIME    -benchtime per benchmark (default 500ms)
#   COUNT        -count (default 5)
#   ROOT_README  the second file to update (default ../README.md; empty: none)
#
# A contender that fails its delivery check ("loses events") is recorded in
# the tables instead of figures; the script then exits 1 after writing them.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

benchtime=${BENCHTIME:-500ms}
count=${COUNT:-5}
root_readme=${ROOT_README-../README.md}
cmd=(go test -run '^$' -bench . -benchmem "-count=$count" "-benchtime=$benchtime" .)
cmd_text="cd bench && go test -run '^\$' -bench . -benchmem -count=$count -benchtime=$benchtime ."

mkdir -p results
out=results/latest.txt
tmp=results/latest.txt.tmp
trap 'rm -f "$tmp"' EXIT

model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cores=$(grep -c '^processor' /proc/cpuinfo)
{
	echo "machine: $model, $cores cores"
	echo "goversion: $(go version)"
	echo "date: $(date -u +%Y-%m-%d)"
	echo "command: $cmd_text"
} >"$tmp"

start=$(date +%s)
status=0
"${cmd[@]}" 2>&1 | tee -a "$tmp" || status=$?
elapsed=$(($(date +%s) - start))
printf 'walltime: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60)) >>"$tmp"
mv "$tmp" "$out"

readmes=(README.md)
if [ -n "$root_readme" ]; then
	readmes+=("$root_readme")
fi
updates=()
for f in "${readmes[@]}"; do
	updates+=(-update "$f")
done
go run ./cmd/benchtable -in "$out" -gomod go.mod "${updates[@]}"
echo "run.sh: benchmarks took ${elapsed}s; wrote $out; updated ${readmes[*]}"

if [ "$status" -ne 0 ]; then
	echo "run.sh: go test failed (status $status); failed sub-benchmarks:" >&2
	grep -e '--- FAIL' "$out" >&2 || true
	exit 1
fi
