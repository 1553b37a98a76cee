// Package simulate publishes simulated agentic data workflows to a bus, for
// cmd/dashboard-demo and for the browser test that takes the README's
// screenshot of it. A workflow runs three to seven steps; each step is an
// agent that plans and calls a tool or two; about one step in fourteen
// fails, and fails its workflow; some tool calls are slow and reported as
// warnings.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/adws/eventbus"
)

// maxLive bounds how many simulated workflows run at once.
const maxLive = 40

var (
	steps   = []string{"extract", "profile", "clean", "join", "validate", "load", "report"}
	tools   = []string{"sql.query", "s3.get", "pandas.describe", "http.fetch", "schema.check"}
	sources = []string{"planner", "extractor-agent", "validator-agent", "loader-agent"}
)

// Config sets the pace of a simulation.
type Config struct {
	Rate  float64       // workflows started per second
	Pause time.Duration // the longest pause between two events of a workflow (the shortest is an eighth of it)
	Seed  uint64        // seeds each workflow's random choices, so a run is repeatable but for timing
}

// Run starts cfg.Rate workflows a second, named adw-0001, adw-0002, ...,
// until ctx ends, then waits for the running ones to stop (they publish
// nothing more once ctx has ended).
func Run(ctx context.Context, bus *eventbus.Bus, cfg Config) {
	var live sync.WaitGroup
	slots := make(chan struct{}, maxLive)
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	for n := uint64(1); ; n++ {
		select {
		case <-ctx.Done():
			live.Wait()
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // enough running
		}
		w := workflow{bus: bus, id: fmt.Sprintf("adw-%04d", n), pause: cfg.Pause,
			rnd: rand.New(rand.NewPCG(cfg.Seed, n))}
		live.Go(func() {
			defer func() { <-slots }()
			w.run(ctx)
		})
	}
}

// Subscribe adds the services a workflow platform would have: an archive,
// an alerter that cannot reach its pager one time in five, and an indexer
// that one time in forty takes 200 to 600 ms, longer than the demo's
// slow-handler threshold (250 ms) most of those times.
func Subscribe(bus *eventbus.Bus) error {
	_, err := bus.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil },
		eventbus.WithName("archive"))
	if err != nil {
		return err
	}
	_, err = bus.Subscribe(func(e eventbus.Event) error {
		if rand.IntN(5) == 0 {
			return errors.New("pager unreachable")
		}
		return nil
	}, eventbus.WithName("alerts"), eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical}})
	if err != nil {
		return err
	}
	_, err = bus.Subscribe(func(e eventbus.Event) error {
		if rand.IntN(40) == 0 {
			time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		}
		return nil
	}, eventbus.WithName("search-indexer"), eventbus.Ordered(),
		eventbus.Filter{Types: []eventbus.EventType{eventbus.StepCompleted, eventbus.ToolReturned}})
	return err
}

// A workflow publishes the events of one simulated workflow.
type workflow struct {
	bus   *eventbus.Bus
	id    string
	pause time.Duration
	rnd   *rand.Rand
}

func (w workflow) run(ctx context.Context) {
	w.emit(ctx, eventbus.WorkflowStarted, eventbus.SeverityInfo, "planner", "workflow started")
	n := 3 + w.rnd.IntN(len(steps)-2)
	for i := range n {
		if ctx.Err() != nil {
			return // the simulation is stopping
		}
		if !w.step(ctx, steps[i]) {
			w.emit(ctx, eventbus.WorkflowFailed, eventbus.SeverityCritical, "planner",
				"workflow failed at step "+steps[i])
			return
		}
	}
	w.emit(ctx, eventbus.WorkflowCompleted, eventbus.SeverityInfo, "planner",
		fmt.Sprintf("workflow completed: %d steps", n))
}

// step runs one step: an agent that plans and calls a tool or two. It
// reports whether the step succeeded.
func (w workflow) step(ctx context.Context, name string) bool {
	src := sources[1+w.rnd.IntN(len(sources)-1)]
	w.emit(ctx, eventbus.StepStarted, eventbus.SeverityInfo, src, "step "+name+" started")
	w.emit(ctx, eventbus.AgentMessage, eventbus.SeverityDebug, src, "planning "+name)
	for range 1 + w.rnd.IntN(2) {
		tool := tools[w.rnd.IntN(len(tools))]
		w.emit(ctx, eventbus.ToolCalled, eventbus.SeverityDebug, src, "calling "+tool)
		if w.rnd.IntN(12) == 0 {
			w.emit(ctx, eventbus.ToolReturned, eventbus.SeverityWarning, src, tool+" was slow: retried")
		} else {
			w.emit(ctx, eventbus.ToolReturned, eventbus.SeverityDebug, src, tool+" returned")
		}
	}
	if w.rnd.IntN(14) == 0 {
		w.emit(ctx, eventbus.StepFailed, eventbus.SeverityError, src, "step "+name+": upstream table missing")
		return false
	}
	w.emit(ctx, eventbus.StepCompleted, eventbus.SeverityInfo, src, "step "+name+" done")
	return true
}

// emit publishes one event after a pause that stands for the work, unless
// the simulation is stopping.
func (w workflow) emit(ctx context.Context, t eventbus.EventType, sev eventbus.Severity, src, msg string) {
	pause := w.pause/8 + time.Duration(w.rnd.Int64N(int64(w.pause-w.pause/8)+1))
	select {
	case <-ctx.Done():
		return
	case <-time.After(pause):
	}
	_ = w.bus.Publish(ctx, eventbus.Event{ADWID: w.id, Type: t, Severity: sev, Source: src, Message: msg})
}
