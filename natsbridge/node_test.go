package natsbridge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeExample is the folder of the Node.js example.
const nodeExample = "examples/node"

// needNode skips the test, or fails it under $NATSBRIDGE_NO_SKIP, unless
// node and the example's packages (npm ci) are there.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		natstest.Unavailable(t, "the Node.js example needs node: %v", err)
	}
	if _, err := os.Stat(filepath.Join(nodeExample, "node_modules", "nats")); err != nil {
		natstest.Unavailable(t, "the Node.js example needs its packages: cd natsbridge/%s && npm ci", nodeExample)
	}
}

// TestNodeExample runs examples/node/index.mjs, a service written with the
// official Node.js client, beside a Go bus with a Bridge that exports and
// imports, in core NATS and JetStream mode, on each server. The Node.js
// service's event, published the way a Python ADWS service writes one,
// reaches the bus intact on the subject the scheme gives it; the bus's
// event reaches the Node.js service; and neither comes back to its origin.
func TestNodeExample(t *testing.T) {
	needNode(t)
	for _, mode := range []string{"core", "jetstream"} {
		t.Run(mode, func(t *testing.T) {
			onEachServer(t, func(t *testing.T, es *natstest.Server) {
				bus := newBus(t)
				fromNode := make(chan eventbus.Event, 1)
				_, err := bus.Subscribe(func(e eventbus.Event) error {
					if e.Source == "node-example" {
						fromNode <- e
					}
					return nil
				})
				require.NoError(t, err)
				opts := []natsbridge.Option{natsbridge.WithExport(), natsbridge.WithImport("")}
				if mode == "jetstream" {
					opts = append(opts, natsbridge.WithJetStream("ADWS"))
				}
				br := newBridge(t, bus, es.Connect("go"), opts...)
				subjects, err := es.Connect("watch").SubscribeSync(natsbridge.DefaultSubjectPrefix + ".>")
				require.NoError(t, err)

				node := startNode(t, es.URL(), mode)
				node.expect(t, "ready")
				sent := event(eventbus.WorkflowCompleted, "adw-go", 0)
				require.NoError(t, bus.PublishAndWait(ctxFor(t), sent))

				got := receive(t, fromNode)
				id, subject, _ := strings.Cut(node.expect(t, "published "), " ")
				assert.Equal(t, id, got.ID.String())
				assert.Equal(t, eventbus.EventType("step_completed"), got.Type)
				assert.Equal(t, "py-7 run.1", got.ADWID)
				assert.Equal(t, eventbus.SeverityInfo, got.Severity)
				assert.Equal(t, map[string]any{"rows": 1200.0, "table": "orders"}, got.Data)
				assert.False(t, got.Timestamp.IsZero())
				assert.Equal(t, "adws.events.step_completed.py-7%20run%2E1", subject)
				assert.Equal(t, natsbridge.Subject(natsbridge.DefaultSubjectPrefix, got), subject)

				back, err := natsbridge.Decode([]byte(node.expect(t, "received ")))
				require.NoError(t, err)
				assert.Equal(t, sent.ID, back.ID)
				assert.Equal(t, sent.Type, back.Type)
				node.wait(t)

				st := br.Stats()
				assert.Equal(t, uint64(1), st.Exported)
				assert.Equal(t, uint64(1), st.Imported, "the Node.js event, once")
				assert.Equal(t, uint64(1), st.Looped, "its own export")
				checkSubjects(t, subjects, sent, got)
			})
		})
	}
}

// checkSubjects checks that the events went out on the subjects that
// natsbridge.Subject gives them, and nothing else did.
func checkSubjects(t *testing.T, sub *nats.Subscription, events ...eventbus.Event) {
	t.Helper()
	want, got := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		want[natsbridge.Subject(natsbridge.DefaultSubjectPrefix, e)] = true
		m, err := sub.NextMsgWithContext(ctxFor(t))
		require.NoError(t, err)
		got[m.Subject] = true
	}
	assert.Equal(t, want, got)
	n, _, err := sub.Pending()
	require.NoError(t, err)
	assert.Zero(t, n, "messages on other subjects")
}

// TestNodeEscapesAsGoDoes holds the example's escapeToken to EscapeToken.
func TestNodeEscapesAsGoDoes(t *testing.T) {
	needNode(t)
	inputs := []string{"", "_", "__", "adw-7", "run 3.1", "a*b>c%d", "tab\there", "\x7f", "é✓",
		"nb\u00a0sp", "ideographic\u3000space", "line\u2028sep", "bom\ufeff", "%5F", "emoji😀"}
	in, err := json.Marshal(inputs)
	require.NoError(t, err)
	cmd := exec.CommandContext(ctxFor(t), "node", "--input-type=module", "-e",
		`import { escapeToken } from "./subject.mjs";
		 const inputs = JSON.parse(await new Response(process.stdin).text());
		 console.log(JSON.stringify(inputs.map(escapeToken)));`)
	cmd.Dir = nodeExample
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var got []string
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	require.Len(t, got, len(inputs))
	for i, s := range inputs {
		assert.Equal(t, natsbridge.EscapeToken(s), got[i], "escapeToken(%q)", s)
	}
}

// A nodeProcess is the example running, with its output read line by line.
type nodeProcess struct {
	cmd    *exec.Cmd
	lines  chan string
	read   sync.WaitGroup
	stderr bytes.Buffer
}

// startNode starts the example against the server at url. The test kills
// it, if it still runs, and waits for it when it ends.
func startNode(t *testing.T, url, mode string) *nodeProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &nodeProcess{cmd: exec.CommandContext(ctx, "node", "index.mjs", url, mode), lines: make(chan string, 16)}
	p.cmd.Dir = nodeExample
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	p.read.Go(func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	t.Cleanup(func() {
		cancel()
		for range p.lines { // unblock the reader
		}
		p.read.Wait()
		_ = p.cmd.Wait()
	})
	return p
}

// expect returns the rest of the next line of output, which must start
// with prefix.
func (p *nodeProcess) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		require.True(t, ok, "the example ended before %q; stderr: %s", prefix, &p.stderr)
		rest, found := strings.CutPrefix(line, prefix)
		require.True(t, found, "got %q, want a line starting with %q", line, prefix)
		return rest
	case <-ctxFor(t).Done():
		t.Fatalf("no %q from the example in time", prefix)
		return ""
	}
}

// wait waits for the example to exit, which it must do with status 0.
func (p *nodeProcess) wait(t *testing.T) {
	t.Helper()
	for line := range p.lines {
		t.Errorf("unexpected output from the example: %q", line)
	}
	p.read.Wait()
	require.NoError(t, p.cmd.Wait(), "stderr: %s", &p.stderr)
}
