package eventbus_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/adws/eventbus"
)

// TestAllocations pins the allocation counts the benchmarks report: no path
// allocates per event in the steady state while Debug logging, the observer
// and the watchdog's first run are off, so a change that makes one allocate
// fails a test. The race detector allocates, so CI runs it without -race
// too.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tt := range []struct {
		name string
		opts []eventbus.Option
		kind allocKind
		subs int
		wait bool
	}{
		{"inline/subs=1", []eventbus.Option{eventbus.WithMaxWorkers(0)}, allocSync, 1, false},
		{"inline/subs=10", []eventbus.Option{eventbus.WithMaxWorkers(0)}, allocSync, 10, false},
		{"inline/subs=100", []eventbus.Option{eventbus.WithMaxWorkers(0)}, allocSync, 100, false},
		{"inline/watchdog", []eventbus.Option{eventbus.WithMaxWorkers(0), eventbus.WithSlowHandlerThreshold(1e9)}, allocSync, 10, false},
		{"inline/context", []eventbus.Option{eventbus.WithMaxWorkers(0)}, allocContext, 10, false},
		{"pool/subs=1", nil, allocSync, 1, false},
		{"pool/subs=10", nil, allocSync, 10, false},
		{"pool/context", nil, allocContext, 10, false},
		{"wait/subs=1", nil, allocSync, 1, true},
		{"wait/subs=10", nil, allocSync, 10, true},
		{"async/subs=1", nil, allocAsync, 1, false},
		{"async/subs=10", nil, allocAsync, 10, false},
		{"async/wait/subs=1", nil, allocAsync, 1, true},
		{"async/wait/subs=10", nil, allocAsync, 10, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, tt.opts...)
			// Each run waits until its handlers are done, so that this
			// measures the steady state, not a growing backlog, which
			// needs one delivery per queued event.
			done := subscribeAllocs(t, b, tt.kind, tt.subs)
			ctx, e := context.Background(), ev(eventbus.StepStarted)
			publish := b.Publish
			if tt.wait {
				publish = b.PublishAndWait
			}
			for range 100 { // warm up the pools and start the goroutines
				_ = publish(ctx, e)
				<-done
			}
			got := testing.AllocsPerRun(2000, func() {
				_ = publish(ctx, e)
				<-done
			})
			if got > 0 {
				t.Errorf("%v allocations per event, want none", got)
			}
		})
	}
}

// allocKind is the kind of handler TestAllocations subscribes.
type allocKind int

const (
	allocSync allocKind = iota
	allocContext
	allocAsync
)

// subscribeAllocs subscribes n handlers of kind k, and returns a channel
// that receives once each time all n have run.
func subscribeAllocs(t *testing.T, b *eventbus.Bus, k allocKind, n int) <-chan struct{} {
	var runs atomic.Int64
	done := make(chan struct{}, 1)
	h := func(context.Context, eventbus.Event) error {
		if runs.Add(1)%int64(n) == 0 {
			done <- struct{}{}
		}
		return nil
	}
	for range n {
		var err error
		switch k {
		case allocSync:
			_, err = b.Subscribe(func(e eventbus.Event) error { return h(nil, e) })
		case allocContext:
			_, err = b.SubscribeContext(h)
		case allocAsync:
			_, err = b.SubscribeAsync(h)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return done
}
