package eventbus_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// A fault is one way a handler can misbehave.
type fault struct {
	name  string
	do    func(ctx context.Context) error
	panic bool // counted in Metrics.Panics
	check func(t *testing.T, he *eventbus.HandlerError)
}

var errFault = errors.New("fault: handler error")

var faults = []fault{
	{name: "returns error", do: func(context.Context) error { return errFault },
		check: func(t *testing.T, he *eventbus.HandlerError) {
			assert.ErrorIs(t, he, errFault)
			assert.Nil(t, he.Panic)
		}},
	{name: "panics with error", panic: true, do: func(context.Context) error { panic(errFault) },
		check: func(t *testing.T, he *eventbus.HandlerError) {
			assert.ErrorIs(t, he, errFault)
			assert.Equal(t, errFault, he.Panic)
			assert.NotEmpty(t, he.Stack)
		}},
	{name: "panics with string", panic: true, do: func(context.Context) error { panic("fault: string") },
		check: func(t *testing.T, he *eventbus.HandlerError) {
			assert.Equal(t, "fault: string", he.Panic)
			assert.ErrorContains(t, he, "panic: fault: string")
		}},
	{name: "panics with nil", panic: true, do: func(context.Context) error { panic(nil) },
		check: func(t *testing.T, he *eventbus.HandlerError) {
			var pe *runtimePanicNilError
			assert.ErrorAs(t, he, &pe, "panic(nil) arrives as *runtime.PanicNilError")
		}},
	{name: "calls Goexit", do: func(context.Context) error { runtimeGoexit(); return nil },
		check: func(t *testing.T, he *eventbus.HandlerError) {
			assert.ErrorContains(t, he, "runtime.Goexit")
			assert.Nil(t, he.Panic)
		}},
	{name: "blocks until ctx ends", do: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		check: func(t *testing.T, he *eventbus.HandlerError) {
			assert.ErrorIs(t, he, context.DeadlineExceeded)
		}},
}

// TestFaults runs every fault in a sync handler on the pool (and in an async
// handler), and then proves that the fault was logged and counted once, that
// later events are still delivered, and that the pool still has all its
// workers.
func TestFaults(t *testing.T) {
	const workers = 3
	for _, f := range faults {
		for _, async := range []bool{false, true} {
			if f.name == "blocks until ctx ends" && !async {
				continue // a sync handler has no ctx
			}
			t.Run(f.name+"/async="+strconv.FormatBool(async), func(t *testing.T) {
				rec := &logRecorder{level: slog.LevelInfo}
				b := newBus(t, eventbus.WithMaxWorkers(workers), eventbus.WithLogger(slog.New(rec)))
				faultyID, err := subscribeAs(b, async, func(ctx context.Context, _ eventbus.Event) error { return f.do(ctx) }, only("fault"))
				require.NoError(t, err)
				var healthy atomic.Int64
				_, err = b.Subscribe(func(eventbus.Event) error { healthy.Add(1); return nil })
				require.NoError(t, err)

				// Publish from a goroutine of its own, in case the fault
				// ends the publishing goroutine.
				timeout := hardTimeout // a ctx that can end: the workers run the handlers
				if f.name == "blocks until ctx ends" {
					timeout = 50 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				result := make(chan error, 1)
				go func() {
					sent := false
					defer func() {
						if !sent {
							result <- errNoResult
						}
					}()
					err := b.PublishAndWait(ctx, ev("fault"))
					sent = true
					result <- err
				}()
				err = recv(t, result)
				drain(t, b)

				var he *eventbus.HandlerError
				if f.name == "blocks until ctx ends" {
					require.ErrorIs(t, err, context.DeadlineExceeded)
				} else {
					require.ErrorAs(t, err, &he)
					assert.Equal(t, faultyID, he.SubscriptionID)
					f.check(t, he)
				}

				// Logged once, counted once.
				var logged []slog.Record
				for _, r := range rec.records() {
					if r.Level == slog.LevelError {
						logged = append(logged, r)
					}
				}
				require.Len(t, logged, 1, "the fault is logged exactly once")
				a := attrs(logged[0])
				assert.Equal(t, string(faultyID), a["subscription_id"].String())
				assert.Equal(t, slog.KindDuration, a["duration"].Kind())
				if f.name == "blocks until ctx ends" {
					var loggedErr *eventbus.HandlerError
					require.ErrorAs(t, a["error"].Any().(error), &loggedErr)
					f.check(t, loggedErr)
				}
				m := b.Metrics()
				assert.Equal(t, uint64(1), m.Failed)
				assert.Equal(t, map[bool]uint64{true: 1, false: 0}[f.panic], m.Panics)

				// Later events still get through, to every subscription.
				require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
				assert.Equal(t, int64(2), healthy.Load())

				assertFullPool(t, b, workers)
			})
		}
	}
}

var errNoResult = errors.New("no result: the publishing goroutine exited")
