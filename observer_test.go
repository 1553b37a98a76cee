package eventbus_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// recordingObserver keeps everything an Observer is told.
type recordingObserver struct {
	mu   sync.Mutex
	pubs []eventbus.PublishInfo
	runs []eventbus.RunInfo
	ctxs []context.Context
}

func (o *recordingObserver) Published(ctx context.Context, p eventbus.PublishInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pubs = append(o.pubs, p)
}

func (o *recordingObserver) HandlerDone(ctx context.Context, r eventbus.RunInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs = append(o.runs, r)
	o.ctxs = append(o.ctxs, ctx)
}

func (o *recordingObserver) snapshot() ([]eventbus.PublishInfo, []eventbus.RunInfo, []context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]eventbus.PublishInfo(nil), o.pubs...), append([]eventbus.RunInfo(nil), o.runs...), append([]context.Context(nil), o.ctxs...)
}

type traceKey struct{}

// The observer hears once of every valid publish, with the runs it was
// accepted for and its outcome, and once of every handler run, with the
// handler's ctx, before PublishAndWait returns.
func TestObserver(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			obs := &recordingObserver{}
			b := newBus(t, eventbus.WithMaxWorkers(workers), eventbus.WithObserver(obs))
			errNo := errors.New("no")
			okID, _ := b.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("ok"))
			failID, _ := b.Subscribe(func(eventbus.Event) error { return errNo }, only(eventbus.StepFailed))
			asyncID, _ := b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
			_, _ = b.Subscribe(func(eventbus.Event) error { panic("boom") }, only("panic"))

			ctx := context.WithValue(context.Background(), traceKey{}, "span-1")
			e := ev(eventbus.StepFailed)
			e.Message = "first"
			err := b.PublishAndWait(ctx, e)
			require.ErrorIs(t, err, errNo)

			pubs, runs, ctxs := obs.snapshot()
			require.Len(t, runs, 3, "every run is reported before PublishAndWait returns")
			require.Len(t, pubs, 1)
			assert.Equal(t, 3, pubs[0].Runs)
			assert.True(t, pubs[0].Wait)
			assert.ErrorIs(t, pubs[0].Err, errNo)
			assert.Equal(t, "first", pubs[0].Event.Message)
			assert.NotZero(t, pubs[0].Event.ID)
			byID := map[eventbus.SubscriptionID]eventbus.RunInfo{}
			for i, r := range runs {
				byID[r.SubscriptionID] = r
				assert.Equal(t, "span-1", ctxs[i].Value(traceKey{}), "the handler's ctx carries the publisher's values")
				assert.Equal(t, pubs[0].Event.ID, r.Event.ID)
				assert.False(t, r.Start.IsZero())
				assert.GreaterOrEqual(t, r.Duration, time.Duration(0))
			}
			assert.Equal(t, "ok", byID[okID].Name)
			assert.NoError(t, byID[okID].Err)
			var he *eventbus.HandlerError
			require.ErrorAs(t, byID[failID].Err, &he)
			assert.ErrorIs(t, he, errNo)
			assert.True(t, byID[asyncID].Async)

			require.NoError(t, b.Publish(ctx, ev("panic")))
			drain(t, b)
			pubs, runs, _ = obs.snapshot()
			require.Len(t, pubs, 2)
			assert.False(t, pubs[1].Wait)
			assert.NoError(t, pubs[1].Err)
			assert.Equal(t, 3, pubs[1].Runs) // ok, async, panic
			var panicked int
			for _, r := range runs[3:] {
				if errors.As(r.Err, &he) && he.Panic != nil {
					panicked++
				}
			}
			assert.Equal(t, 1, panicked)

			// A refused event is reported with its error and no runs; an
			// invalid one is not reported.
			require.NoError(t, b.Close())
			require.ErrorIs(t, b.Publish(ctx, ev(eventbus.StepStarted)), eventbus.ErrClosed)
			require.ErrorIs(t, b.Publish(ctx, eventbus.Event{}), eventbus.ErrInvalidEvent)
			pubs, _, _ = obs.snapshot()
			require.Len(t, pubs, 3)
			assert.ErrorIs(t, pubs[2].Err, eventbus.ErrClosed)
			assert.Zero(t, pubs[2].Runs)
		})
	}
}

// The observer also hears of refused events, with the refusal.
func TestObserverRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &recordingObserver{}
		b := newBus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowReject), eventbus.WithObserver(obs))
		release := make(chan struct{})
		_, err := b.Subscribe(func(eventbus.Event) error { <-release; return nil })
		require.NoError(t, err)
		bg := context.Background()
		require.NoError(t, b.Publish(bg, ev("a")))
		synctest.Wait()
		require.NoError(t, b.Publish(bg, ev("b")))
		require.ErrorIs(t, b.Publish(bg, ev("c")), eventbus.ErrQueueFull)
		close(release)
		require.NoError(t, b.Drain(bg))
		pubs, runs, _ := obs.snapshot()
		require.Len(t, pubs, 3)
		assert.ErrorIs(t, pubs[2].Err, eventbus.ErrQueueFull)
		assert.Zero(t, pubs[2].Runs)
		assert.Len(t, runs, 2)
	})
}

type panickyObserver struct{}

func (panickyObserver) Published(context.Context, eventbus.PublishInfo) { panic("observer bug") }
func (panickyObserver) HandlerDone(context.Context, eventbus.RunInfo)   { panic("observer bug") }

// An observer that panics is logged and does not hurt the bus.
func TestObserverPanic(t *testing.T) {
	rec := &logRecorder{level: slog.LevelError}
	b := newBus(t, eventbus.WithObserver(panickyObserver{}), eventbus.WithLogger(slog.New(rec)))
	_, err := b.Subscribe(func(eventbus.Event) error { return nil })
	require.NoError(t, err)
	require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	drain(t, b)
	assert.Equal(t, uint64(2), b.Metrics().Delivered)
	var panics int
	for _, r := range rec.records() {
		if r.Message == "observer panicked" {
			panics++
		}
	}
	assert.Equal(t, 4, panics)
	assert.PanicsWithValue(t, "eventbus: WithObserver: nil observer", func() { eventbus.WithObserver(nil) })
}

// Subscriptions returns a snapshot per live subscription with its own
// counters.
func TestSubscriptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(2))
		release := make(chan struct{})
		okID, _ := b.Subscribe(func(eventbus.Event) error {
			time.Sleep(10 * time.Millisecond) // takes time, in the bubble's clock
			return nil
		}, eventbus.WithName("timeline"), eventbus.Ordered())
		badID, _ := b.Subscribe(func(e eventbus.Event) error {
			if e.Message == "panic" {
				panic("boom")
			}
			return errors.New("no")
		}, eventbus.Filter{Types: []eventbus.EventType{eventbus.StepFailed}}, eventbus.Filter{ADWIDs: []string{"adw-1"}})
		slowID, _ := b.SubscribeAsync(func(context.Context, eventbus.Event) error { <-release; return nil },
			only("slow"), eventbus.Once())

		bg := context.Background()
		for _, m := range []string{"x", "panic", "y"} {
			e := ev(eventbus.StepFailed)
			e.Message = m
			require.NoError(t, b.Publish(bg, e))
		}
		require.NoError(t, b.Publish(bg, ev("slow")))
		time.Sleep(time.Second) // the bubble's clock: lets the timeline's runs take their time
		synctest.Wait()

		subs := b.Subscriptions()
		require.Len(t, subs, 2, "the Once subscription left the registry when its event was accepted")
		timeline, bad := subs[0], subs[1]
		assert.Equal(t, okID, timeline.ID)
		assert.Equal(t, "timeline", timeline.Name)
		assert.True(t, timeline.Ordered)
		assert.Equal(t, "all", timeline.Filter)
		assert.Equal(t, uint64(4), timeline.Delivered)
		assert.Equal(t, 40*time.Millisecond, timeline.TotalDuration)
		assert.Equal(t, 10*time.Millisecond, timeline.MaxDuration)

		assert.Equal(t, badID, bad.ID)
		assert.Equal(t, "types=[step_failed] and adw_ids=[adw-1]", bad.Filter)
		assert.Equal(t, uint64(3), bad.Failed)
		assert.Equal(t, uint64(1), bad.Panics)
		assert.Zero(t, bad.Delivered)
		assert.False(t, bad.Async)

		assert.Equal(t, int64(1), b.Metrics().InFlight, "the Once run is still going")
		close(release)
		require.NoError(t, b.Drain(bg))
		assert.False(t, b.Unsubscribe(slowID))
	})
}

// A snapshot shows runs in progress per subscription.
func TestSubscriptionsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(3))
		release := make(chan struct{})
		_, _ = b.Subscribe(func(eventbus.Event) error { <-release; return nil })
		_, _ = b.SubscribeAsync(func(context.Context, eventbus.Event) error { <-release; return nil })
		for range 3 {
			require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		}
		synctest.Wait()
		subs := b.Subscriptions()
		assert.Equal(t, int64(3), subs[0].InFlight)
		assert.Equal(t, int64(3), subs[1].InFlight)
		assert.True(t, subs[1].Async)
		close(release)
		require.NoError(t, b.Drain(context.Background()))
		for _, s := range b.Subscriptions() {
			assert.Zero(t, s.InFlight)
			assert.Equal(t, uint64(3), s.Delivered)
		}
	})
}
