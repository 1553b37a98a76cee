package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results holds what one benchmark output says.
type results struct {
	config    map[string]string // "key: value" lines: machine, goversion, date, command, walltime, cpu, ...
	scenarios map[string]*scenarioResults
}

// scenarioResults holds one scenario's cells, and its contenders in the order
// the output first names them.
type scenarioResults struct {
	libs  []string
	cells map[string]map[int]*cell // lib → subscriber count (0 when the scenario has none) → cell
}

// A cell gathers every run of one sub-benchmark.
type cell struct {
	ns, bytes, allocs []float64
	failure           string // the first message of a failed run; such a cell shows no figures
}

var (
	configLine  = regexp.MustCompile(`^([a-z][^\s:]*):\s*(.*)$`)
	resultLine  = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.*)$`)
	failLine    = regexp.MustCompile(`--- (FAIL|SKIP): (Benchmark\S+)`)
	procsSuffix = regexp.MustCompile(`-\d+$`)
	logLine     = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
)

// parse reads go test -bench output. Benchmark names must look like
// BenchmarkS1/lib=NAME/subs=N or BenchmarkS4/lib=NAME, with an optional
// -GOMAXPROCS suffix (so NAME must not end in a dash and digits). A failure
// appears in one of two forms: "--- FAIL: NAME" on a line of its own when the
// first, one-iteration run failed, or after the padded NAME-GOMAXPROCS of a
// result line when a later run did; the log lines that follow give the
// reason.
func parse(r io.Reader) (*results, error) {
	res := &results{config: map[string]string{}, scenarios: map[string]*scenarioResults{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var failing *cell // the cell whose failure messages follow
	reason := false   // whether the next log line gives failing its reason
	for sc.Scan() {
		line := sc.Text()
		if failing != nil {
			if m := logLine.FindStringSubmatch(line); m != nil {
				if reason {
					failing.failure, reason = m[1], false
				}
				continue
			}
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			failing = nil
		}
		if m := failLine.FindStringSubmatch(line); m != nil {
			c, err := res.cell(procsSuffix.ReplaceAllString(m[2], ""))
			if err != nil {
				return nil, err
			}
			if c == nil { // a parent benchmark: its failing child reports the reason
				continue
			}
			failing = c
			reason = c.failure == "" // the first failed run gives the reason
			if reason {
				c.failure = strings.ToLower(m[1]) // "fail" or "skip" until a log line says why
			}
			continue
		}
		if m := resultLine.FindStringSubmatch(line); m != nil {
			c, err := res.cell(procsSuffix.ReplaceAllString(m[1], ""))
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, fmt.Errorf("result for %s, which is not a sub-benchmark", m[1])
			}
			if err := c.add(m[3]); err != nil {
				return nil, fmt.Errorf("%s: %w", m[1], err)
			}
			continue
		}
		if m := configLine.FindStringSubmatch(line); m != nil {
			res.config[m[1]] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res.scenarios) == 0 {
		return nil, fmt.Errorf("no benchmark results")
	}
	return res, nil
}

// cell returns the cell of a full benchmark name, creating it, or nil for a
// name without a lib (a parent such as BenchmarkS1) or with a lib but
// without subs where the scenario has subscriber counts.
func (res *results) cell(name string) (*cell, error) {
	parts := strings.Split(name, "/")
	scenario, ok := strings.CutPrefix(parts[0], "Benchmark")
	if !ok || scenario == "" {
		return nil, fmt.Errorf("malformed benchmark name %q", name)
	}
	lib, subs := "", 0
	for _, p := range parts[1:] {
		key, value, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("malformed benchmark name %q", name)
		}
		switch key {
		case "lib":
			lib = value
		case "subs":
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("malformed subs in %q", name)
			}
			subs = n
		default:
			return nil, fmt.Errorf("unknown key %q in %q", key, name)
		}
	}
	if lib == "" || (subs == 0 && len(subCounts(scenario)) > 0) {
		return nil, nil
	}
	s := res.scenarios[scenario]
	if s == nil {
		s = &scenarioResults{cells: map[string]map[int]*cell{}}
		res.scenarios[scenario] = s
	}
	if s.cells[lib] == nil {
		s.cells[lib] = map[int]*cell{}
		s.libs = append(s.libs, lib)
	}
	c := s.cells[lib][subs]
	if c == nil {
		c = &cell{}
		s.cells[lib][subs] = c
	}
	return c, nil
}

// add records the measurements of one result line ("123 ns/op 45 B/op 6
// allocs/op").
func (c *cell) add(measurements string) error {
	fields := strings.Fields(measurements)
	if len(fields)%2 != 0 {
		return fmt.Errorf("malformed measurements %q", measurements)
	}
	for i := 0; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return fmt.Errorf("malformed value %q", fields[i])
		}
		switch fields[i+1] {
		case "ns/op":
			c.ns = append(c.ns, v)
		case "B/op":
			c.bytes = append(c.bytes, v)
		case "allocs/op":
			c.allocs = append(c.allocs, v)
		}
	}
	return nil
}

// median returns the median of vs, and false if vs is empty.
func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}
