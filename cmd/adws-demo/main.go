// Command adws-demo simulates a few agentic data workflows publishing events
// on an eventbus.Bus, with the subscribers a real service would have: a
// console timeline, an error-only alert, an async archive sink and, at the
// end, the bus's metrics.
//
//	go run ./cmd/adws-demo [-workflows 4] [-v]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/adws/eventbus"
)

func main() {
	workflows := flag.Int("workflows", 4, "how many workflows to simulate (the third one fails)")
	verbose := flag.Bool("v", false, "log every handler run at Debug level")
	flag.Parse()
	if err := run(os.Stdout, *workflows, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "adws-demo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, workflows int, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	bus := eventbus.New(eventbus.WithMaxWorkers(4), eventbus.WithLogger(logger))

	start := time.Now()
	var printMu sync.Mutex
	printf := func(format string, args ...any) {
		printMu.Lock()
		defer printMu.Unlock()
		fmt.Fprintf(out, format, args...)
	}

	// A console timeline of every workflow and step event, each workflow's
	// events in order (Ordered), different workflows in parallel.
	if _, err := bus.Subscribe(func(e eventbus.Event) error {
		printf("%6s  %-7s %-18s %-8s %s\n",
			e.Timestamp.Sub(start).Round(time.Millisecond), e.ADWID, e.Type, e.Severity, e.Message)
		return nil
	}, eventbus.WithName("timeline"), eventbus.Ordered(), eventbus.Filter{Match: func(e eventbus.Event) bool {
		return strings.HasPrefix(string(e.Type), "workflow_") || strings.HasPrefix(string(e.Type), "step_")
	}}); err != nil {
		return err
	}

	// An alert for errors only, as a pager integration would do it.
	if _, err := bus.Subscribe(func(e eventbus.Event) error {
		printf("        ALERT   %s %s from %s: %s\n", e.ADWID, e.Type, e.Source, e.Message)
		return nil
	}, eventbus.WithName("alerts"), eventbus.Ordered(), eventbus.Filter{
		Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical},
	}); err != nil {
		return err
	}

	// A webhook that tells the data team when a workflow ends. Its endpoint
	// refuses failures today: the error reaches the workflow's
	// PublishAndWait, the log and the metrics, and no other subscriber.
	if _, err := bus.Subscribe(func(e eventbus.Event) error {
		if e.Type == eventbus.WorkflowFailed {
			return errors.New("webhook: 503 Service Unavailable")
		}
		return nil
	}, eventbus.WithName("webhook"), eventbus.Filter{
		Types: []eventbus.EventType{eventbus.WorkflowCompleted, eventbus.WorkflowFailed},
	}); err != nil {
		return err
	}

	// An async sink that archives every event as a JSON line, as a writer to
	// object storage would. It honours ctx, which Shutdown cancels if it
	// runs out of time.
	var archive struct {
		sync.Mutex
		lines int
		bytes int
	}
	if _, err := bus.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(rand.IntN(3)) * time.Millisecond): // the upload
		}
		archive.Lock()
		archive.lines++
		archive.bytes += len(line) + 1
		archive.Unlock()
		return nil
	}, eventbus.WithName("archive")); err != nil {
		return err
	}

	fmt.Fprintf(out, "%6s  %-7s %-18s %-8s %s\n", "time", "adw_id", "event_type", "severity", "message")
	var wg sync.WaitGroup
	for i := range workflows {
		wg.Go(func() { simulate(bus, fmt.Sprintf("adw-%d", i+1), i == 2, printf) })
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bus.Drain(ctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	subs := bus.Subscriptions()
	if err := bus.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}

	archive.Lock()
	fmt.Fprintf(out, "\narchived %d events (%d bytes of JSON lines)\n\n", archive.lines, archive.bytes)
	archive.Unlock()
	printSubscriptions(out, subs)
	fmt.Fprintln(out)
	printMetrics(out, bus.Metrics())
	return nil
}

func printSubscriptions(out io.Writer, subs []eventbus.SubscriptionInfo) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "subscription\tname\tkind\tfilter\tdelivered\tfailed\tpanics\tavg\tmax\tin flight")
	for _, s := range subs {
		kind := "sync"
		if s.Async {
			kind = "async"
		}
		if s.Ordered {
			kind += ", ordered"
		}
		var avg time.Duration
		if runs := s.Delivered + s.Failed; runs > 0 {
			avg = s.TotalDuration / time.Duration(runs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%v\t%v\t%d\n", s.ID, s.Name, kind, s.Filter,
			s.Delivered, s.Failed, s.Panics, avg.Round(time.Microsecond), s.MaxDuration.Round(time.Microsecond), s.InFlight)
	}
	tw.Flush()
}

// steps is the plan every simulated workflow follows.
var steps = []struct {
	name  string
	agent string
	tool  string
}{
	{"extract", "ingest-agent", "s3.list_objects"},
	{"profile", "analyst-agent", "duckdb.query"},
	{"transform", "coder-agent", "python.run"},
	{"load", "ingest-agent", "warehouse.copy"},
}

// simulate runs one workflow, publishing what an agentic data pipeline would.
// A failing workflow's load step fails and the workflow fails with it.
func simulate(bus *eventbus.Bus, adwID string, fail bool, printf func(string, ...any)) {
	ctx := context.Background()
	// Events go out with Publish; the workflow's last word goes out with
	// PublishAndWait, so that every subscriber has handled it when the
	// workflow reports its end.
	publish := func(typ eventbus.EventType, sev eventbus.Severity, source, msg string, data map[string]any) {
		e := eventbus.Event{ADWID: adwID, Type: typ, Source: source, Severity: sev, Message: msg, Data: data}
		var err error
		switch typ {
		case eventbus.WorkflowCompleted, eventbus.WorkflowFailed:
			err = bus.PublishAndWait(ctx, e)
		default:
			err = bus.Publish(ctx, e)
		}
		var he *eventbus.HandlerError
		if errors.As(err, &he) {
			printf("        NOTIFY  %s %s not delivered: %v\n", adwID, typ, he.Err)
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
		}
	}
	work := func() { time.Sleep(time.Duration(5+rand.IntN(15)) * time.Millisecond) }

	publish(eventbus.WorkflowStarted, eventbus.SeverityInfo, "orchestrator", "nightly orders pipeline", nil)
	for _, st := range steps {
		publish(eventbus.StepStarted, eventbus.SeverityInfo, "orchestrator", st.name, nil)
		work()
		publish(eventbus.AgentMessage, eventbus.SeverityDebug, st.agent, "planning "+st.name, nil)
		publish(eventbus.ToolCalled, eventbus.SeverityDebug, st.agent, st.tool, map[string]any{"tool": st.tool})
		work()
		if fail && st.name == "load" {
			publish(eventbus.ToolReturned, eventbus.SeverityWarning, st.agent, st.tool+": permission denied", nil)
			publish(eventbus.StepFailed, eventbus.SeverityError, st.agent, st.name+": warehouse rejected the copy", nil)
			publish(eventbus.WorkflowFailed, eventbus.SeverityCritical, "orchestrator", "aborted after "+st.name, nil)
			return
		}
		publish(eventbus.ToolReturned, eventbus.SeverityDebug, st.agent, st.tool+": ok", nil)
		publish(eventbus.StepCompleted, eventbus.SeverityInfo, "orchestrator", st.name, nil)
	}
	publish(eventbus.WorkflowCompleted, eventbus.SeverityInfo, "orchestrator", "all steps done", nil)
}

func printMetrics(out io.Writer, m eventbus.Metrics) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "published\tdelivered\tfailed\tpanics\trejected\tskipped\tqueued\tin flight\tsubscribers\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n",
		m.Published, m.Delivered, m.Failed, m.Panics, m.Rejected, m.Skipped, m.Queued, m.InFlight, m.Subscribers)
	tw.Flush()
}
