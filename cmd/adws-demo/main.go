// Command adws-demo simulates a few agentic data workflows publishing events
// on an eventbus.Bus, with the subscribers a real service would have: a
// console timeline, an error alert, a pager that fires once, a webhook that
// fails, a cost tracker that panics on a malformed event, a slow audit, an
// async archive sink and, at the end, the bus's per-subscription table and
// metrics. Before the workflows start, preflight checks run on an inline bus
// (WithMaxWorkers(0)). Log lines (failed, panicked and slow handlers) go to
// stderr, the rest to stdout.
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

// slowAfter is the demo's slow-handler threshold: the audit of a load step
// takes longer, and the watchdog reports it.
const slowAfter = 50 * time.Millisecond

func run(out io.Writer, workflows int, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	p := &printer{out: out, start: time.Now()}
	if err := preflight(p, logger); err != nil {
		return err
	}

	bus := eventbus.New(eventbus.WithMaxWorkers(4), eventbus.WithLogger(logger),
		eventbus.WithSlowHandlerThreshold(slowAfter))
	archive, err := subscribe(bus, p)
	if err != nil {
		return err
	}
	p.printf("%6s  %-7s %-18s %-8s %s\n", "time", "adw_id", "event_type", "severity", "message")
	var wg sync.WaitGroup
	for i := range workflows {
		wg.Go(func() { simulate(bus, fmt.Sprintf("adw-%d", i+1), i == 2, p) })
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
	fmt.Fprintf(out, "\narchived %d events (%d bytes of JSON lines)\n\n", archive.lines, archive.bytes)
	printSubscriptions(out, subs)
	fmt.Fprintln(out)
	printMetrics(out, bus.Metrics())
	return nil
}

// A printer writes whole lines from many goroutines.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

// preflight runs the checks a pipeline makes before it starts on a bus
// without workers: each handler runs in the publisher, in subscription
// order, before Publish returns.
func preflight(p *printer, logger *slog.Logger) error {
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithLogger(logger))
	defer bus.Close()
	for _, check := range []string{"warehouse credentials", "source schema", "disk quota"} {
		if _, err := bus.Subscribe(func(e eventbus.Event) error {
			p.printf("preflight: %s ok for %s\n", check, e.Message)
			return nil
		}); err != nil {
			return err
		}
	}
	err := bus.Publish(context.Background(), eventbus.Event{Type: "preflight", Message: "nightly orders pipeline"})
	p.printf("preflight: done, inline: every check ran before Publish returned\n\n")
	return err
}

// subscribe adds the subscribers a real service would have, and returns the
// archive sink's totals, complete once the bus has shut down.
func subscribe(bus *eventbus.Bus, p *printer) (*archiveTotals, error) {
	steps := eventbus.Filter{Match: func(e eventbus.Event) bool {
		return strings.HasPrefix(string(e.Type), "workflow_") || strings.HasPrefix(string(e.Type), "step_")
	}}
	errorsOnly := eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical}}
	ends := eventbus.Filter{Types: []eventbus.EventType{eventbus.WorkflowCompleted, eventbus.WorkflowFailed}}
	archive := new(archiveTotals)
	subs := []struct {
		h    eventbus.Handler
		opts []eventbus.SubscribeOption
	}{
		// A console timeline: each workflow's events in order (Ordered),
		// different workflows in parallel.
		{p.timeline, []eventbus.SubscribeOption{eventbus.WithName("timeline"), eventbus.Ordered(), steps}},
		// An alert for errors only, as a pager integration would do it.
		{p.alert, []eventbus.SubscribeOption{eventbus.WithName("alerts"), eventbus.Ordered(), errorsOnly}},
		// The on-call engineer is paged once, for the first failure: Once.
		{p.page, []eventbus.SubscribeOption{eventbus.WithName("pager"), eventbus.Once(), errorsOnly}},
		// A webhook whose endpoint refuses failures today: the error reaches
		// the workflow's PublishAndWait, the log and the metrics, and no
		// other subscriber.
		{webhook, []eventbus.SubscribeOption{eventbus.WithName("webhook"), ends}},
		// A cost tracker that panics on a tool result without a cost: the
		// bus recovers it, logs it with its stack, and goes on.
		{trackCost, []eventbus.SubscribeOption{eventbus.WithName("costs"), eventbus.Filter{Types: []eventbus.EventType{eventbus.ToolReturned}}}},
		// An audit that is slow for load steps: the watchdog reports it.
		{audit, []eventbus.SubscribeOption{eventbus.WithName("audit"), eventbus.Filter{Types: []eventbus.EventType{eventbus.StepCompleted}}}},
	}
	for _, s := range subs {
		if _, err := bus.Subscribe(s.h, s.opts...); err != nil {
			return nil, err
		}
	}
	// An async sink that archives every event as a JSON line, as a writer to
	// object storage would. It honours ctx, which Shutdown cancels if it
	// runs out of time.
	_, err := bus.SubscribeAsync(archive.add, eventbus.WithName("archive"))
	return archive, err
}

func (p *printer) timeline(e eventbus.Event) error {
	p.printf("%6s  %-7s %-18s %-8s %s\n",
		e.Timestamp.Sub(p.start).Round(time.Millisecond), e.ADWID, e.Type, e.Severity, e.Message)
	return nil
}

func (p *printer) alert(e eventbus.Event) error {
	p.printf("        ALERT   %s %s from %s: %s\n", e.ADWID, e.Type, e.Source, e.Message)
	return nil
}

func (p *printer) page(e eventbus.Event) error {
	p.printf("        PAGE    on-call paged once, for %s: %s\n", e.ADWID, e.Message)
	return nil
}

func webhook(e eventbus.Event) error {
	if e.Type == eventbus.WorkflowFailed {
		return errors.New("webhook: 503 Service Unavailable")
	}
	return nil
}

func trackCost(e eventbus.Event) error {
	_ = e.Data["cost_usd"].(float64) // panics when a tool reported no cost
	return nil
}

func audit(e eventbus.Event) error {
	if e.Message == "load" {
		time.Sleep(2 * slowAfter) // a full-table checksum
	}
	return nil
}

// archiveTotals counts what the archive sink wrote.
type archiveTotals struct {
	mu           sync.Mutex
	lines, bytes int
}

func (a *archiveTotals) add(ctx context.Context, e eventbus.Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(rand.IntN(3)) * time.Millisecond): // the upload
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines++
	a.bytes += len(line) + 1
	return nil
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
// A failing workflow's load step fails and the workflow fails with it. The
// first workflow's profiling tool reports no cost, which the cost tracker
// does not expect.
func simulate(bus *eventbus.Bus, adwID string, fail bool, p *printer) {
	publish := func(typ eventbus.EventType, sev eventbus.Severity, source, msg string, data map[string]any) {
		e := eventbus.Event{ADWID: adwID, Type: typ, Source: source, Severity: sev, Message: msg, Data: data}
		// Events go out with Publish; the workflow's last word goes out with
		// PublishAndWait, so that every subscriber has handled it when the
		// workflow reports its end.
		var err error
		if typ == eventbus.WorkflowCompleted || typ == eventbus.WorkflowFailed {
			err = bus.PublishAndWait(context.Background(), e)
		} else {
			err = bus.Publish(context.Background(), e)
		}
		for _, he := range eventbus.HandlerErrors(err) {
			p.printf("        NOTIFY  %s %s not delivered to %s: %v\n", adwID, typ, he.Name, he.Err)
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
			publish(eventbus.ToolReturned, eventbus.SeverityWarning, st.agent, st.tool+": permission denied", map[string]any{"cost_usd": 0.0})
			publish(eventbus.StepFailed, eventbus.SeverityError, st.agent, st.name+": warehouse rejected the copy", nil)
			publish(eventbus.WorkflowFailed, eventbus.SeverityCritical, "orchestrator", "aborted after "+st.name, nil)
			return
		}
		result := map[string]any{"cost_usd": 0.002}
		if adwID == "adw-1" && st.name == "profile" {
			result = nil // this tool does not report a cost
		}
		publish(eventbus.ToolReturned, eventbus.SeverityDebug, st.agent, st.tool+": ok", result)
		publish(eventbus.StepCompleted, eventbus.SeverityInfo, "orchestrator", st.name, nil)
	}
	publish(eventbus.WorkflowCompleted, eventbus.SeverityInfo, "orchestrator", "all steps done", nil)
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

func printMetrics(out io.Writer, m eventbus.Metrics) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "published\tdelivered\tfailed\tpanics\tslow\trejected\tskipped\tqueued\tin flight\tsubscribers\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n",
		m.Published, m.Delivered, m.Failed, m.Panics, m.Slow, m.Rejected, m.Skipped, m.Queued, m.InFlight, m.Subscribers)
	tw.Flush()
}
