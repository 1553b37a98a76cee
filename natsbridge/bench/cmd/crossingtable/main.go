// Command crossingtable turns the output of BenchmarkCrossing (go test
// -bench in natsbridge/bench, usually results/latest.txt, written by
// run.sh) into the markdown of natsbridge's benchmark table: per path the
// median events per second over all runs, their range, the ratio to the
// raw nats.go path of the same mode (the median of the per-run ratios:
// the i-th run of each path ran at about the same time), allocations per
// event, and whether the targets were met.
//
// Usage:
//
//	crossingtable [-in results/latest.txt] [-update FILE]...
//
// Without -update it prints the block. Each -update FILE replaces the text
// between the lines <!-- crossing:start --> and <!-- crossing:end --> of
// FILE, and fails, changing nothing, unless FILE has exactly one of each
// marker in that order.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
)

// The markers around the generated region of a README.
const (
	startMarker = "<!-- crossing:start -->"
	endMarker   = "<!-- crossing:end -->"
)

func main() {
	in := flag.String("in", "results/latest.txt", "benchmark output to read")
	var updates []string
	flag.Func("update", "replace the crossing:start/crossing:end region of this file (repeatable)", func(s string) error {
		updates = append(updates, s)
		return nil
	})
	flag.Parse()
	if err := run(*in, updates, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "crossingtable:", err)
		os.Exit(1)
	}
}

func run(in string, updates []string, stdout io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	block := render(res)
	if len(updates) == 0 {
		_, err := io.WriteString(stdout, block)
		return err
	}
	for _, path := range updates {
		if err := updateFile(path, block); err != nil {
			return err
		}
	}
	return nil
}

// updateFile replaces the region between the markers of the file at path
// with block.
func updateFile(path, block string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	start := bytes.Index(doc, []byte(startMarker))
	end := bytes.Index(doc, []byte(endMarker))
	if start < 0 || end < start || bytes.Count(doc, []byte(startMarker)) != 1 || bytes.Count(doc, []byte(endMarker)) != 1 {
		return fmt.Errorf("%s: want one %s and, after it, one %s", path, startMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:start+len(startMarker)])
	out.WriteString("\n")
	out.WriteString(block)
	out.Write(doc[end:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
