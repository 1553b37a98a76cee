package main

import (
	"context"
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

// simulate starts rate workflows a second until ctx ends, then waits for
// the running ones to stop.
func simulate(ctx context.Context, bus *eventbus.Bus, rate float64) {
	var live sync.WaitGroup
	slots := make(chan struct{}, maxLive)
	every := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
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
		w := workflow{bus: bus, id: fmt.Sprintf("adw-%04d", n)}
		live.Go(func() {
			defer func() { <-slots }()
			w.run(ctx)
		})
	}
}

// A workflow publishes the events of one simulated agentic data workflow.
type workflow struct {
	bus *eventbus.Bus
	id  string
}

func (w workflow) run(ctx context.Context) {
	w.emit(ctx, eventbus.WorkflowStarted, eventbus.SeverityInfo, "planner", "workflow started")
	n := 3 + rand.IntN(len(steps)-2)
	for i := range n {
		if ctx.Err() != nil {
			return // the demo is stopping
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

// step runs one step: an agent that thinks and calls a tool or two. It
// reports whether the step succeeded.
func (w workflow) step(ctx context.Context, name string) bool {
	src := sources[1+rand.IntN(len(sources)-1)]
	w.emit(ctx, eventbus.StepStarted, eventbus.SeverityInfo, src, "step "+name+" started")
	w.emit(ctx, eventbus.AgentMessage, eventbus.SeverityDebug, src, "planning "+name)
	for range 1 + rand.IntN(2) {
		tool := tools[rand.IntN(len(tools))]
		w.emit(ctx, eventbus.ToolCalled, eventbus.SeverityDebug, src, "calling "+tool)
		if rand.IntN(12) == 0 {
			w.emit(ctx, eventbus.ToolReturned, eventbus.SeverityWarning, src, tool+" was slow: retried")
		} else {
			w.emit(ctx, eventbus.ToolReturned, eventbus.SeverityDebug, src, tool+" returned")
		}
	}
	if rand.IntN(14) == 0 {
		w.emit(ctx, eventbus.StepFailed, eventbus.SeverityError, src, "step "+name+": upstream table missing")
		return false
	}
	w.emit(ctx, eventbus.StepCompleted, eventbus.SeverityInfo, src, "step "+name+" done")
	return true
}

// emit publishes one event after a pause that stands for the work, unless
// the demo is stopping.
func (w workflow) emit(ctx context.Context, t eventbus.EventType, sev eventbus.Severity, src, msg string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(100+rand.IntN(700)) * time.Millisecond):
	}
	_ = w.bus.Publish(ctx, eventbus.Event{
		ADWID: w.id, Type: t, Severity: sev, Source: src, Message: msg,
	})
}
