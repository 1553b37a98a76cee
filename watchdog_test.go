package eventbus_test

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// A handler still running after the threshold is logged once at Warn and
// counted in Metrics.Slow; it keeps running and finishes normally. A fast
// handler is not reported.
func TestSlowHandlerWatchdog(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &logRecorder{level: slog.LevelWarn}
				b := newBus(t, eventbus.WithMaxWorkers(workers), eventbus.WithLogger(slog.New(rec)),
					eventbus.WithSlowHandlerThreshold(100*time.Millisecond))
				release := make(chan struct{})
				slowID, err := b.Subscribe(func(e eventbus.Event) error {
					if e.Type == eventbus.StepStarted {
						<-release
					}
					return nil
				}, eventbus.WithName("loader"))
				require.NoError(t, err)
				_, err = b.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
					if e.Type == eventbus.StepStarted {
						time.Sleep(80 * time.Millisecond) // fast enough
					}
					return nil
				})
				require.NoError(t, err)

				e := ev(eventbus.StepStarted)
				go func() { _ = b.Publish(context.Background(), e) }() // inline: blocks in the handler
				time.Sleep(99 * time.Millisecond)
				synctest.Wait()
				assert.Empty(t, rec.records(), "nothing is slow before the threshold")

				time.Sleep(50 * time.Millisecond) // the watchdog looks every 25ms
				synctest.Wait()
				recs := rec.records()
				require.Len(t, recs, 1)
				assert.Equal(t, slog.LevelWarn, recs[0].Level)
				assert.Equal(t, "handler slow", recs[0].Message)
				a := attrs(recs[0])
				assert.Equal(t, string(slowID), a["subscription_id"].String())
				assert.Equal(t, "loader", a["subscription_name"].String())
				assert.Equal(t, "step_started", a["event_type"].String())
				assert.GreaterOrEqual(t, a["elapsed"].Duration(), 100*time.Millisecond)
				assert.Equal(t, uint64(1), b.Metrics().Slow)
				assert.Equal(t, int64(1), b.Metrics().InFlight, "the slow handler keeps running")

				time.Sleep(time.Second)
				synctest.Wait()
				assert.Len(t, rec.records(), 1, "reported once")
				close(release)
				require.NoError(t, b.Drain(context.Background()))
				m := b.Metrics()
				assert.Equal(t, uint64(2), m.Delivered)
				assert.Equal(t, uint64(1), m.Slow)
			})
		})
	}
}

// Without a threshold there is no watchdog goroutine.
func TestNoWatchdogByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(0))
		_, err := b.Subscribe(func(eventbus.Event) error { return nil })
		require.NoError(t, err)
		before := runtime.NumGoroutine()
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		assert.Equal(t, before, runtime.NumGoroutine())
	})
	assert.PanicsWithValue(t, "eventbus: WithSlowHandlerThreshold: threshold must be positive",
		func() { eventbus.WithSlowHandlerThreshold(0) })
}
