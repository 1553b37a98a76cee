package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `machine: Test CPU, 2 vCPUs, 4 GiB
goversion: go version go1.26.8 linux/amd64
date: 2026-12-05
command: cd natsbridge/bench && go test -run '^$' -bench '^BenchmarkCrossing$' -count=2 -benchtime=3s .
module: github.com/nats-io/nats.go v1.55.0
goos: linux
BenchmarkCrossing/raw-2                 	    1914	    500000 events/s	      2000 ns/event	  637605 B/op	    4000 allocs/op
BenchmarkCrossing/watermill-2           	    1914	    100000 events/s	      2000 ns/event	  637605 B/op	   70000 allocs/op
BenchmarkCrossing/bridge-2              	     475	    200000 events/s	      6411 ns/event	 1714148 B/op	   16000 allocs/op
BenchmarkCrossing/raw-jetstream-2       	     100	     40000 events/s	      6411 ns/event	 1714148 B/op	   66000 allocs/op
BenchmarkCrossing/bridge-jetstream-2    	     100	     20000 events/s	      6411 ns/event	 1714148 B/op	   90000 allocs/op
--- FAIL: BenchmarkCrossing/watermill-jetstream
    crossing_test.go:70: only 10 of 1000 events arrived
BenchmarkCrossing/raw-2                 	    1914	    400000 events/s	      2000 ns/event	  637605 B/op	    4000 allocs/op
BenchmarkCrossing/watermill-2           	    1914	    100000 events/s	      2000 ns/event	  637605 B/op	   70000 allocs/op
BenchmarkCrossing/bridge-2              	     475	    100000 events/s	      6411 ns/event	 1714148 B/op	   16000 allocs/op
BenchmarkCrossing/raw-jetstream-2       	     100	     40000 events/s	      6411 ns/event	 1714148 B/op	   66000 allocs/op
BenchmarkCrossing/bridge-jetstream-2    	     100	     36000 events/s	      6411 ns/event	 1714148 B/op	   90000 allocs/op
walltime: 1m02s
load: 1.5 before, 2.5 after
`

// TestRender checks the figures and verdicts derived from a small output:
// medians, ranges, per-run ratios, a failed path, a missing one.
func TestRender(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	got := render(res)
	for _, want := range []string{
		"- Machine: Test CPU, 2 vCPUs, 4 GiB; shared with other work while it ran (load average 1.5 before, 2.5 after)",
		"`github.com/nats-io/nats.go` v1.55.0",
		"median of 2 runs",
		"| `raw`: nats.go publishes the pre-encoded JSON, a callback counts | 450,000 | 400,000 – 500,000 | 1.00× | 4.0 |",
		// per run: 200k/500k = 0.40 and 100k/400k = 0.25
		"| `bridge` <sup>3</sup>: **bridge**: bus A → export → import → bus B handler | 150,000 | 100,000 – 200,000 | 0.33× | 16.0 |",
		"**failed**: only 10 of 1000 events arrived",
		"`raw+encoding-json`: the same, `json.Marshal` before and `json.Unmarshal` after | no result",
		// per run: 0.5 and 0.9
		"`bridge-jetstream` ≥ 0.7× `raw-jetstream` (the bridge's JetStream mode against raw nats.go JetStream): 0.70× (0.50 – 0.90), met",
		"`bridge` ≥ 1.5× `watermill` (against watermill-nats, core NATS): 1.50× (1.00 – 2.00), met",
		"`bridge-jetstream` ≥ 1.5× `watermill-jetstream-parallel`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("render() lacks %q; got:\n%s", want, got)
		}
	}
}

// TestUpdateFile checks that only the region between the markers changes,
// and that a file without exactly one pair of markers is left alone.
func TestUpdateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "README.md")
	doc := "before\n" + startMarker + "\nold\n" + endMarker + "\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateFile(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "before\n" + startMarker + "\nnew\n" + endMarker + "\nafter\n"; string(got) != want {
		t.Errorf("updateFile wrote %q, want %q", got, want)
	}
	bad := filepath.Join(dir, "bad.md")
	if err := os.WriteFile(bad, []byte(endMarker+"\n"+startMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateFile(bad, "new\n"); err == nil {
		t.Error("updateFile accepted markers in the wrong order")
	}
}
