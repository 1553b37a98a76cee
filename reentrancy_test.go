package eventbus_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// reentrancyConfigs are the bus settings every re-entrancy test runs under.
var reentrancyConfigs = []struct {
	name string
	opts []eventbus.Option
}{
	{"workers=0", []eventbus.Option{eventbus.WithMaxWorkers(0)}},
	{"workers=1", []eventbus.Option{eventbus.WithMaxWorkers(1)}},
	{"workers=default", nil},
	{"workers=1/limit=2/block", []eventbus.Option{eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(2, eventbus.OverflowBlock)}},
	{"workers=2/limit=1/block", []eventbus.Option{eventbus.WithMaxWorkers(2), eventbus.WithQueueLimit(1, eventbus.OverflowBlock)}},
	{"workers=1/maxasync=1", []eventbus.Option{eventbus.WithMaxWorkers(1), eventbus.WithMaxAsync(1)}},
}

// TestReentrancy: handlers, sync and async, that publish, publish and wait,
// subscribe, unsubscribe themselves and unsubscribe others, under every pool
// size and with a full OverflowBlock queue. None may deadlock: each case must
// finish within hardTimeout, and every event must arrive.
func TestReentrancy(t *testing.T) {
	for _, cfg := range reentrancyConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			b := newBus(t, cfg.opts...)
			ctx := context.Background()
			var leaves, subscribed, selfRuns, victimRuns atomic.Int64

			_, err := b.Subscribe(func(eventbus.Event) error { leaves.Add(1); return nil }, only("leaf"))
			require.NoError(t, err)
			_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { leaves.Add(1); return nil }, only("leaf"))
			require.NoError(t, err)
			// Ordered leaves, sync and async: all leaves share one workflow,
			// so their runs wait in one lane.
			var orderedLeaves atomic.Int64
			_, err = b.Subscribe(func(eventbus.Event) error { orderedLeaves.Add(1); return nil }, only("leaf"), eventbus.Ordered())
			require.NoError(t, err)
			_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { orderedLeaves.Add(1); return nil }, only("leaf"), eventbus.Ordered())
			require.NoError(t, err)

			// Publishes and waits, sync and async, from inside handlers.
			publisher := func(ctx context.Context) error {
				if err := b.PublishAndWait(ctx, ev("leaf")); err != nil {
					return err
				}
				return b.Publish(ctx, ev("leaf"))
			}
			_, err = b.Subscribe(func(eventbus.Event) error { return publisher(ctx) }, only("root"))
			require.NoError(t, err)
			_, err = b.SubscribeAsync(func(ctx context.Context, _ eventbus.Event) error { return publisher(ctx) }, only("root"))
			require.NoError(t, err)

			// Subscribes a handler, publishes to it, and unsubscribes it.
			var freshIDs atomic.Int64
			_, err = b.Subscribe(func(eventbus.Event) error {
				fresh := ev("fresh")
				fresh.Message = strconv.FormatInt(freshIDs.Add(1), 10) // roots run concurrently
				id, err := b.Subscribe(func(eventbus.Event) error { subscribed.Add(1); return nil },
					eventbus.Filter{Match: func(e eventbus.Event) bool { return e.Message == fresh.Message }}, only("fresh"))
				if err != nil {
					return err
				}
				defer b.Unsubscribe(id)
				return b.PublishAndWait(ctx, fresh)
			}, only("root"))
			require.NoError(t, err)

			// Unsubscribes itself on its first run.
			var self eventbus.SubscriptionID
			self, err = b.Subscribe(func(eventbus.Event) error {
				selfRuns.Add(1)
				b.Unsubscribe(self)
				return nil
			}, only("self"))
			require.NoError(t, err)

			// Unsubscribes another subscription, whose later events stop.
			victim, err := b.Subscribe(func(eventbus.Event) error { victimRuns.Add(1); return nil }, only("victim"))
			require.NoError(t, err)
			_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error {
				b.Unsubscribe(victim)
				return nil
			}, only("killer"))
			require.NoError(t, err)

			const roots = 30
			within(t, func() {
				for i := range roots {
					if i%2 == 0 {
						assert.NoError(t, b.PublishAndWait(ctx, ev("root")))
					} else {
						assert.NoError(t, b.Publish(ctx, ev("root")))
					}
				}
				for range 3 {
					assert.NoError(t, b.PublishAndWait(ctx, ev("self")))
				}
				assert.NoError(t, b.PublishAndWait(ctx, ev("victim")))
				assert.NoError(t, b.PublishAndWait(ctx, ev("killer")))
				assert.NoError(t, b.PublishAndWait(ctx, ev("victim")))
				drain(t, b)
				drain(t, b) // what the last roots' handlers published
			})
			// Each root: 2 publishing handlers x 2 leaf events x 2 leaf handlers.
			assert.Equal(t, int64(roots*2*2*2), leaves.Load())
			assert.Equal(t, int64(roots*2*2*2), orderedLeaves.Load())
			assert.Equal(t, int64(roots), subscribed.Load())
			assert.Equal(t, int64(1), selfRuns.Load())
			assert.Equal(t, int64(1), victimRuns.Load())
			assert.Zero(t, b.Metrics().Failed)
		})
	}
}

// A handler on the only worker that publishes into its own full
// OverflowBlock queue can only get room by running queued handlers itself.
// With a ctx that can never end it does so, and the event gets through; with
// a ctx that can end it waits for room until the ctx ends and gets ctx.Err(),
// and the event is not delivered. Either way nothing deadlocks for good.
func TestReentrantOverflowBlock(t *testing.T) {
	for _, tt := range []struct {
		name     string
		deadline bool
	}{{"ctx without deadline", false}, {"ctx with deadline", true}} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowBlock))
			result := make(chan error, 1)
			var leaves, fillers atomic.Int64
			_, err := b.Subscribe(func(eventbus.Event) error { leaves.Add(1); return nil }, only("leaf"))
			require.NoError(t, err)
			_, err = b.Subscribe(func(eventbus.Event) error { fillers.Add(1); return nil }, only("filler"))
			require.NoError(t, err)
			_, err = b.Subscribe(func(eventbus.Event) error {
				ctx := context.Background()
				if err := b.Publish(ctx, ev("filler")); err != nil { // fills the queue
					return err
				}
				if tt.deadline {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					defer cancel()
				}
				result <- b.Publish(ctx, ev("leaf"))
				return nil
			}, only("root"))
			require.NoError(t, err)

			within(t, func() {
				require.NoError(t, b.Publish(context.Background(), ev("root")))
				err := recv(t, result)
				drain(t, b)
				if tt.deadline {
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					assert.Zero(t, leaves.Load())
					assert.Equal(t, uint64(1), b.Metrics().Rejected)
				} else {
					assert.NoError(t, err)
					assert.Equal(t, int64(1), leaves.Load())
				}
				assert.Equal(t, int64(1), fillers.Load())
			})
		})
	}
}

// Drain and Shutdown called with the ctx of one of the bus's own async
// handlers would wait for that handler forever: they return ErrInHandler.
func TestDrainAndShutdownFromAsyncHandler(t *testing.T) {
	b := newBus(t)
	results := make(chan error, 2)
	_, err := b.SubscribeAsync(func(ctx context.Context, _ eventbus.Event) error {
		results <- b.Drain(ctx)
		ctx, cancel := context.WithTimeout(ctx, time.Minute) // derived ctxs are recognised too
		defer cancel()
		results <- b.Shutdown(ctx)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	assert.ErrorIs(t, recv(t, results), eventbus.ErrInHandler)
	assert.ErrorIs(t, recv(t, results), eventbus.ErrInHandler)
	drain(t, b)
	assert.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)), "the bus is still open")
}

// A sync handler has no ctx the bus could recognise: Drain or Shutdown from
// inside it waits for the handler itself until its ctx ends, as doc.go says.
// (Close, which has no ctx, would wait forever.)
func TestDrainFromSyncHandlerWaitsForCtx(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	results := make(chan error, 1)
	_, err := b.Subscribe(func(eventbus.Event) error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		results <- b.Drain(ctx)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	assert.ErrorIs(t, recv(t, results), context.DeadlineExceeded)
	drain(t, b)
}
