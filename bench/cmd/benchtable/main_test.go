package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string) *results {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parse(f)
	if err != nil {
		t.Fatalf("parse() error = %v", err)
	}
	return res
}

func TestParse(t *testing.T) {
	res := parseFile(t, "testdata/output.txt")
	if got, want := res.config["machine"], "Test CPU @ 1.00GHz, 2 cores"; got != want {
		t.Errorf("config[machine] = %q, want %q", got, want)
	}
	if got, want := res.config["walltime"], "0m02s"; got != want {
		t.Errorf("config[walltime] = %q, want %q", got, want)
	}
	s1 := res.scenarios["S1"]
	if s1 == nil {
		t.Fatal("no S1")
	}
	if got, want := strings.Join(s1.libs, ","), "eventbus,kelindar,baseline-direct"; got != want {
		t.Errorf("S1 libs = %s, want %s", got, want)
	}
	for _, tt := range []struct {
		scenario, lib string
		subs          int
		runs          int
		failure       string
	}{
		{"S1", "eventbus", 1, 3, ""},
		{"S1", "eventbus", 10, 1, ""},
		{"S1", "kelindar", 100, 0, "loses events: handlers ran 9 times, want 10 (no progress for 3s)"},
		{"S4", "eventbus-debug", 0, 1, ""},
		{"S4", "hub", 0, 0, "duplicates events: handlers ran 11 times, want 10"},
	} {
		c := res.scenarios[tt.scenario].cells[tt.lib][tt.subs]
		if c == nil {
			t.Errorf("%s/%s/%d: no cell", tt.scenario, tt.lib, tt.subs)
			continue
		}
		if len(c.ns) != tt.runs || len(c.bytes) != tt.runs || len(c.allocs) != tt.runs {
			t.Errorf("%s/%s/%d: runs = %d/%d/%d, want %d", tt.scenario, tt.lib, tt.subs, len(c.ns), len(c.bytes), len(c.allocs), tt.runs)
		}
		if c.failure != tt.failure {
			t.Errorf("%s/%s/%d: failure = %q, want %q", tt.scenario, tt.lib, tt.subs, c.failure, tt.failure)
		}
	}
	if _, ok := res.scenarios["S1"].cells["kelindar"][0]; ok {
		t.Error("the parent FAIL line of kelindar made a cell")
	}
}

func TestParseRejects(t *testing.T) {
	for _, tt := range []struct{ name, input string }{
		{"empty", "goos: linux\nPASS\n"},
		{"unknown key", "BenchmarkS1/lib=x/size=1-2 \t 10\t 1 ns/op\n"},
		{"bad subs", "BenchmarkS1/lib=x/subs=ten-2 \t 10\t 1 ns/op\n"},
		{"parent result", "BenchmarkS1-2 \t 10\t 1 ns/op\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse(strings.NewReader(tt.input)); err == nil {
				t.Error("parse() error = nil, want an error")
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
		ok   bool
	}{
		{nil, 0, false},
		{[]float64{7}, 7, true},
		{[]float64{300, 100, 200}, 200, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
		{[]float64{5, 1, 9, 1, 1}, 1, true},
	} {
		got, ok := median(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("median(%v) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRender(t *testing.T) {
	res := parseFile(t, "testdata/output.txt")
	mod, err := os.ReadFile("testdata/gomod.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := render(res, requiredVersions(mod))
	for _, want := range []string{
		"- Machine: Test CPU @ 1.00GHz, 2 cores\n",
		"- Go: `go version go1.26.8 linux/amd64`\n",
		"(wall time 0m02s)",
		"median of 1 to 3 runs",
		"`kelindar` = `github.com/kelindar/event v1.5.2`",
		"`cskr` = `github.com/cskr/pubsub/v2 v2.0.2`",
		"`gookit` = `github.com/gookit/event v1.2.0`",
		"`hub` = `github.com/leandro-lugaresi/hub (version not in go.mod)`",
		"### S1: ",
		// median 200 of 100, 200, 300; ratios against it.
		"| eventbus | 200 | 0 | 0 | 1.0× | 1,000 | 16 | 1 | 1.0× | 10,000 | 16 | 1 | 1.0× |\n",
		"| kelindar <sup>1</sup> | 50.0 | 0 | 0 | 0.25× | 5,000 | 1,234 | 3 | 5.0× | **loses events** | — | — | — |\n",
		"| baseline-direct | 5.00 | 0 | 0 | 0.03× | — | — | — | — | — | — | — | — |\n",
		"Failed its delivery check at n=100: “loses events: handlers ran 9 times, want 10 (no progress for 3s)”.",
		"| gookit <sup>1</sup> | 500 | 72 | 2 | 0.50× | — | — | — | — |\n",
		"| mustafaturan <sup>2</sup> | — | — | — | — | — | — | — | — |\n",
		"No figures: sync only.",
		"| eventbus-debug | 15,000 | 480 | 10 | 10× |\n",
		"| hub <sup>1</sup> | **duplicates events** | — | — | — |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render() lacks %q; got:\n%s", want, out)
		}
	}
	if strings.Contains(out, "### S3") {
		t.Error("render() has a table for S3, which has no results")
	}
}

func TestReplaceRegion(t *testing.T) {
	for _, tt := range []struct {
		name, doc, want string
		wantErr         bool
	}{
		{
			name: "replaces",
			doc:  "a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n",
			want: "a\n<!-- bench:start -->\nNEW\n<!-- bench:end -->\nb\n",
		},
		{
			name: "empty region",
			doc:  "<!-- bench:start -->\n<!-- bench:end -->\n",
			want: "<!-- bench:start -->\nNEW\n<!-- bench:end -->\n",
		},
		{
			name: "indented end marker",
			doc:  "<!-- bench:start -->\nold\n  <!-- bench:end -->",
			want: "<!-- bench:start -->\nNEW\n  <!-- bench:end -->",
		},
		{name: "no start", doc: "old\n<!-- bench:end -->\n", wantErr: true},
		{name: "no end", doc: "<!-- bench:start -->\nold\n", wantErr: true},
		{name: "two starts", doc: "<!-- bench:start -->\n<!-- bench:start -->\n<!-- bench:end -->\n", wantErr: true},
		{name: "reversed", doc: "<!-- bench:end -->\n<!-- bench:start -->\n", wantErr: true},
		{name: "one line", doc: "<!-- bench:start --> old <!-- bench:end -->\n", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replaceRegion([]byte(tt.doc), "NEW")
			if (err != nil) != tt.wantErr {
				t.Fatalf("replaceRegion() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Errorf("replaceRegion() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUpdateCopy runs the whole command on a copy of a README, and twice, to
// show that a second run changes nothing more.
func TestUpdateCopy(t *testing.T) {
	orig, err := os.ReadFile("testdata/README.md")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	for range 2 {
		if err := run("testdata/output.txt", "testdata/gomod.txt", []string{path}, &stdout); err != nil {
			t.Fatalf("run() error = %v", err)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("run() with -update wrote %q to stdout", stdout.String())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(got)
	before, rest, _ := strings.Cut(doc, startMarker+"\n")
	region, after, _ := strings.Cut(rest, endMarker)
	if before != "# Title\n\nIntro text stays.\n\n" {
		t.Errorf("text before the region = %q", before)
	}
	if after != "\n\n## After\n\nTrailing text stays.\n" {
		t.Errorf("text after the region = %q", after)
	}
	if strings.Contains(region, "old generated text") || !strings.Contains(region, "### S1: ") {
		t.Errorf("region = %q, want the new tables only", region)
	}
}

func TestRequiredVersions(t *testing.T) {
	mod, err := os.ReadFile("testdata/gomod.txt")
	if err != nil {
		t.Fatal(err)
	}
	got := requiredVersions(mod)
	want := map[string]string{
		"github.com/kelindar/event": "v1.5.2",
		"github.com/gookit/event":   "v1.2.0",
		"github.com/cskr/pubsub/v2": "v2.0.2",
	}
	if len(got) != len(want) {
		t.Errorf("requiredVersions() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requiredVersions()[%s] = %q, want %q", k, got[k], v)
		}
	}
}
