package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// results holds what one run of run.sh says.
type results struct {
	config   map[string]string // machine, goversion, date, command, load, walltime
	modules  [][2]string       // "module: path version" lines, in order
	paths    map[string]*pathRuns
	failures map[string]string // path → the first reason given
}

// pathRuns gathers every run of one sub-benchmark, in the order they ran.
type pathRuns struct {
	eventsPerSec []float64
	allocsPerOp  []float64
}

var (
	configLine = regexp.MustCompile(`^(machine|goversion|date|command|load|walltime):\s*(.*)$`)
	moduleLine = regexp.MustCompile(`^module:\s*(\S+)\s+(\S+)$`)
	resultLine = regexp.MustCompile(`^BenchmarkCrossing/(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	failLine   = regexp.MustCompile(`--- FAIL: BenchmarkCrossing/(\S+?)(?:-\d+)?(?:\s|$)`)
	logLine    = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
)

// parse reads the output of run.sh: its "key: value" header and go test
// -bench output whose metrics include events/s and allocs/op.
func parse(r io.Reader) (*results, error) {
	res := &results{config: map[string]string{}, paths: map[string]*pathRuns{}, failures: map[string]string{}}
	sc := bufio.NewScanner(r)
	failing := "" // the path whose reason follows
	for sc.Scan() {
		line := sc.Text()
		if m := logLine.FindStringSubmatch(line); m != nil && failing != "" {
			if res.failures[failing] == "" {
				res.failures[failing] = m[1]
			}
			continue
		}
		failing = ""
		switch {
		case configLine.MatchString(line):
			m := configLine.FindStringSubmatch(line)
			res.config[m[1]] = m[2]
		case moduleLine.MatchString(line):
			m := moduleLine.FindStringSubmatch(line)
			res.modules = append(res.modules, [2]string{m[1], m[2]})
		case failLine.MatchString(line):
			failing = failLine.FindStringSubmatch(line)[1]
			if _, ok := res.failures[failing]; !ok {
				res.failures[failing] = ""
			}
		case resultLine.MatchString(line):
			m := resultLine.FindStringSubmatch(line)
			if err := res.add(m[1], m[2]); err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res.paths) == 0 && len(res.failures) == 0 {
		return nil, fmt.Errorf("no BenchmarkCrossing results")
	}
	return res, nil
}

// add records the metrics of one run of path: value-unit pairs.
func (res *results) add(path, metrics string) error {
	fields := strings.Fields(metrics)
	if len(fields)%2 != 0 {
		return fmt.Errorf("metrics do not come in value-unit pairs")
	}
	p := res.paths[path]
	if p == nil {
		p = &pathRuns{}
		res.paths[path] = p
	}
	seen := 0
	for i := 0; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return err
		}
		switch fields[i+1] {
		case "events/s":
			p.eventsPerSec = append(p.eventsPerSec, v)
			seen++
		case "allocs/op":
			p.allocsPerOp = append(p.allocsPerOp, v)
			seen++
		}
	}
	if seen != 2 {
		return fmt.Errorf("want events/s and allocs/op")
	}
	return nil
}
