package eventbus_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// TestSoak pushes many events through a bus whose subscriptions churn, and
// checks that the heap after a forced GC does not grow: no per-event or
// per-subscription bookkeeping may be left behind. It sends
// $EVENTBUS_SOAK_EVENTS events (CI: 5,000,000), 100,000 by default.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	events := 100_000
	if env := os.Getenv("EVENTBUS_SOAK_EVENTS"); env != "" {
		n, err := strconv.Atoi(env)
		require.NoError(t, err, "EVENTBUS_SOAK_EVENTS")
		events = n
	}
	// WithMaxAsync keeps the number of goroutines, whose descriptors the
	// runtime never frees, from drifting up with the scheduling.
	// The watchdog and an ordered subscription keep per-run records and
	// per-workflow lanes: they must be given back too.
	b := eventbus.New(quiet, eventbus.WithMaxWorkers(4), eventbus.WithMaxAsync(64),
		eventbus.WithSlowHandlerThreshold(time.Minute))
	ctx := context.Background()

	var runs atomic.Int64
	count := func(eventbus.Event) error { runs.Add(1); return nil }
	for i := range 6 {
		var err error
		if i%2 == 0 {
			_, err = b.Subscribe(count, eventbus.Filter{Types: []eventbus.EventType{eventbus.StepStarted, eventbus.StepCompleted}})
		} else {
			_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return count(e) })
		}
		require.NoError(t, err)
	}
	_, err := b.Subscribe(count, eventbus.Ordered())
	require.NoError(t, err)

	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // a second cycle empties sync.Pool's victim cache
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// publish sends n events from 4 goroutines while another one keeps
	// subscribing and unsubscribing (with a Once subscription now and then).
	publish := func(n int) {
		stop := make(chan struct{})
		var churn, pubs sync.WaitGroup
		churn.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var opts []eventbus.SubscribeOption
				if i%3 == 0 {
					opts = append(opts, eventbus.Once())
				}
				id, err := b.Subscribe(count, opts...)
				if !assert.NoError(t, err) {
					return
				}
				runtime.Gosched()
				b.Unsubscribe(id)
			}
		})
		for p := range 4 {
			pubs.Go(func() {
				types := [...]eventbus.EventType{eventbus.StepStarted, eventbus.StepCompleted, eventbus.ToolCalled}
				for i := range n / 4 {
					e := eventbus.Event{Type: types[i%3], ADWID: "adw-" + strconv.Itoa(p) + "-" + strconv.Itoa(i%512), Data: map[string]any{"i": i}}
					var err error
					if i%64 == 0 {
						err = b.PublishAndWait(ctx, e)
					} else {
						err = b.Publish(ctx, e)
					}
					if !assert.NoError(t, err) {
						return
					}
				}
			})
		}
		pubs.Wait()
		close(stop)
		churn.Wait()
		drain(t, b)
	}

	// The heap is compared between quarters of the run, after the first
	// quarter, so that the pools and the goroutine peak are warm.
	publish(max(events/10, 4000)) // warm up pools and caches
	var heaps []uint64
	for range 4 {
		publish(events / 4)
		heaps = append(heaps, heap())
	}
	m := b.Metrics()
	require.NoError(t, b.Close())

	kib := make([]uint64, len(heaps))
	for i, h := range heaps {
		kib[i] = h / 1024
	}
	t.Logf("%d events, %d handler runs; heap after GC at each quarter: %v KiB", m.Published, runs.Load(), kib)
	assert.Equal(t, uint64(runs.Load()), m.Delivered)
	assert.Zero(t, m.Failed)
	// A flat heap: allow 128 KiB of noise (runtime and testing state; runs
	// here grow by less than 10 KiB). That is under 2 bytes per event at the
	// default 75,000 measured events, and 0.03 at CI's 3.75 million.
	growth := int64(heaps[3]) - int64(heaps[0])
	assert.Less(t, growth, int64(128<<10), "heap grew from %d to %d bytes over %d events", heaps[0], heaps[3], events*3/4)
	assert.Equal(t, 7, m.Subscribers)
}
