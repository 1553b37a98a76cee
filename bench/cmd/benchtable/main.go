// Command benchtable turns the output of the peer-comparison benchmarks
// (go test -bench in bench/, usually bench/results/latest.txt) into markdown
// tables: per scenario, one row per contender and, for each subscriber count,
// the median ns/op, B/op and allocs/op over all runs plus the ratio of ns/op
// to this bus's. A sub-benchmark that failed its delivery check shows the
// failure instead of figures.
//
// Usage:
//
//	benchtable [-in results/latest.txt] [-gomod go.mod] [-update FILE]...
//
// Without -update it prints the tables. Each -update FILE replaces the text
// between the lines <!-- bench:start --> and <!-- bench:end --> of FILE with
// them, and fails, changing nothing, unless FILE has exactly one of each
// marker in that order.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	in := flag.String("in", "results/latest.txt", "benchmark output to read")
	gomod := flag.String("gomod", "go.mod", "go.mod that pins the peers' versions")
	var updates []string
	flag.Func("update", "replace the bench:start/bench:end region of this file (repeatable)", func(s string) error {
		updates = append(updates, s)
		return nil
	})
	flag.Parse()
	if err := run(*in, *gomod, updates, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in, gomod string, updates []string, stdout io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	mod, err := os.ReadFile(gomod)
	if err != nil {
		return err
	}
	block := render(res, requiredVersions(mod))
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

// The markers around the generated region of a README.
const (
	startMarker = "<!-- bench:start -->"
	endMarker   = "<!-- bench:end -->"
)

// updateFile replaces the region between the markers of the file at path
// with block.
func updateFile(path, block string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceRegion(doc, block)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}

// replaceRegion returns doc with the text between the end of the start
// marker's line and the start of the end marker's line replaced by block.
func replaceRegion(doc []byte, block string) ([]byte, error) {
	if n := bytes.Count(doc, []byte(startMarker)); n != 1 {
		return nil, fmt.Errorf("want exactly one %s, found %d", startMarker, n)
	}
	if n := bytes.Count(doc, []byte(endMarker)); n != 1 {
		return nil, fmt.Errorf("want exactly one %s, found %d", endMarker, n)
	}
	start := bytes.Index(doc, []byte(startMarker))
	end := bytes.Index(doc, []byte(endMarker))
	if end < start {
		return nil, fmt.Errorf("%s comes before %s", endMarker, startMarker)
	}
	afterStart := start + len(startMarker)
	if nl := bytes.IndexByte(doc[afterStart:end], '\n'); nl >= 0 {
		afterStart += nl + 1
	} else {
		return nil, fmt.Errorf("%s and %s must be on lines of their own", startMarker, endMarker)
	}
	beforeEnd := bytes.LastIndexByte(doc[:end], '\n') + 1
	if beforeEnd < afterStart {
		beforeEnd = afterStart
	}
	if !strings.HasSuffix(block, "\n") {
		block += "\n"
	}
	var out bytes.Buffer
	out.Write(doc[:afterStart])
	out.WriteString(block)
	out.Write(doc[beforeEnd:])
	return out.Bytes(), nil
}

// requiredVersions returns the module versions required by a go.mod file.
func requiredVersions(mod []byte) map[string]string {
	versions := map[string]string{}
	inBlock := false
	for line := range strings.SplitSeq(string(mod), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		if fields := strings.Fields(line); len(fields) == 2 {
			versions[fields[0]] = fields[1]
		}
	}
	return versions
}
