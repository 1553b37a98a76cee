package otelbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

// The Observer's allocations per call stay where the benchmarks put them:
// none for a publish, and for a run only what the trace API and the
// providers need (see README.md, Costs).
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	herr := &eventbus.HandlerError{SubscriptionID: "sub-1", EventType: eventbus.StepFailed, Err: errors.New("no rows")}
	run := eventbus.RunInfo{SubscriptionID: "sub-1", Name: "indexer",
		Event: eventbus.Event{Type: eventbus.StepCompleted, ADWID: "adw-1"}, Start: time.Now(), Duration: time.Millisecond}
	failed := run
	failed.Err = herr
	pub := eventbus.PublishInfo{Event: eventbus.Event{Type: eventbus.StepCompleted}, Runs: 1}
	for _, tt := range []struct {
		name string
		p    providers
		call func(o *otelbus.Observer, ctx context.Context)
		max  float64
	}{
		{name: "Published/noop", p: noopProviders, call: func(o *otelbus.Observer, ctx context.Context) { o.Published(ctx, pub) }},
		{name: "Published/sdk", p: sdkProviders, call: func(o *otelbus.Observer, ctx context.Context) { o.Published(ctx, pub) }},
		{name: "run/noop", p: noopProviders, call: func(o *otelbus.Observer, ctx context.Context) { observeRun(o, ctx, run) }, max: 0},
		{name: "run/global-unset", p: globalUnset, call: func(o *otelbus.Observer, ctx context.Context) { observeRun(o, ctx, run) }, max: 0},
		{name: "run/sdk", p: sdkProviders, call: func(o *otelbus.Observer, ctx context.Context) { observeRun(o, ctx, run) }, max: 12},
		{name: "run/sdk/failed", p: sdkProviders, call: func(o *otelbus.Observer, ctx context.Context) { observeRun(o, ctx, failed) }, max: 25},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, ctx := benchObserver(t, tt.p)
			tt.call(o, ctx) // fill the caches
			if got := testing.AllocsPerRun(200, func() { tt.call(o, ctx) }); got > tt.max {
				t.Errorf("%v allocations per call, want at most %v", got, tt.max)
			}
		})
	}
}
