package eventbus_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/adws/eventbus"
)

// TestAllocations pins the allocation counts the benchmarks report, so that
// a change that makes the hot paths allocate fails a test. The race detector
// allocates, so CI runs it without -race too.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		opts  []eventbus.Option
		subs  int
		wait  bool
		async bool
		max   float64
	}{
		{"inline/subs=1", []eventbus.Option{eventbus.WithMaxWorkers(0)}, 1, false, false, 0},
		{"inline/subs=10", []eventbus.Option{eventbus.WithMaxWorkers(0)}, 10, false, false, 0},
		{"inline/subs=100", []eventbus.Option{eventbus.WithMaxWorkers(0)}, 100, false, false, 0},
		{"inline/watchdog", []eventbus.Option{eventbus.WithMaxWorkers(0), eventbus.WithSlowHandlerThreshold(1e9)}, 10, false, false, 0},
		{"pool/subs=1", nil, 1, false, false, 1},
		{"pool/subs=10", nil, 10, false, false, 1},
		{"wait/subs=1", nil, 1, true, false, 0},
		{"wait/subs=10", nil, 10, true, false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, tt.opts...)
			// Each run waits until its handlers are done, so that this
			// measures the steady state, not a growing backlog, which
			// needs one delivery per queued event.
			var runs atomic.Int64
			done := make(chan struct{}, 1)
			for range tt.subs {
				if _, err := b.Subscribe(func(eventbus.Event) error {
					if runs.Add(1)%int64(tt.subs) == 0 {
						done <- struct{}{}
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			e := ev(eventbus.StepStarted)
			publish := b.Publish
			if tt.wait {
				publish = b.PublishAndWait
			}
			got := testing.AllocsPerRun(2000, func() {
				_ = publish(ctx, e)
				<-done
			})
			if got > tt.max {
				t.Errorf("%v allocations per event, want at most %v", got, tt.max)
			}
		})
	}
}
