package eventbus_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/adws/eventbus"
)

// Guarantee 1: a Publish delivers to the subscriptions registered when it
// started.
func TestSubscribeDuringPublishDoesNotChangeIt(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	var got []string
	subscribed := false
	_, err := b.Subscribe(func(e eventbus.Event) error {
		got = append(got, "first:"+e.Message)
		if !subscribed {
			subscribed = true
			_, err := b.Subscribe(func(e eventbus.Event) error {
				got = append(got, "late:"+e.Message)
				return nil
			})
			return err
		}
		return nil
	})
	require.NoError(t, err)

	e := ev(eventbus.StepStarted)
	e.Message = "1"
	require.NoError(t, b.Publish(context.Background(), e))
	e.Message = "2"
	require.NoError(t, b.Publish(context.Background(), e))
	assert.Equal(t, []string{"first:1", "first:2", "late:2"}, got)
}

// Guarantees 1 and 2 under load: concurrent Subscribe, Unsubscribe and
// Publish never corrupt the registry, and a subscription that lives through
// the whole run sees every event exactly once.
func TestConcurrentSubscribeUnsubscribePublish(t *testing.T) {
	for _, workers := range []int{0, 4} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(workers))
			var seen atomic.Int64
			_, err := b.Subscribe(func(eventbus.Event) error { seen.Add(1); return nil })
			require.NoError(t, err)

			const publishers, perPublisher, churners = 4, 300, 4
			var wg sync.WaitGroup
			for range churners {
				wg.Go(func() {
					for range 200 {
						id, err := b.Subscribe(func(eventbus.Event) error { return nil })
						if !assert.NoError(t, err) {
							return
						}
						aid, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
						if !assert.NoError(t, err) {
							return
						}
						assert.True(t, b.Unsubscribe(id))
						assert.True(t, b.Unsubscribe(aid))
						assert.False(t, b.Unsubscribe(id))
					}
				})
			}
			for range publishers {
				wg.Go(func() {
					for i := range perPublisher {
						var err error
						if i%10 == 0 {
							err = b.PublishAndWait(context.Background(), ev(eventbus.StepStarted))
						} else {
							err = b.Publish(context.Background(), ev(eventbus.StepStarted))
						}
						assert.NoError(t, err)
					}
				})
			}
			wg.Wait()
			drain(t, b)
			assert.Equal(t, int64(publishers*perPublisher), seen.Load())
			m := b.Metrics()
			assert.Equal(t, 1, m.Subscribers)
			assert.Equal(t, uint64(publishers*perPublisher), m.Published)
			assert.Zero(t, m.Failed)
		})
	}
}

// Guarantee 2: a run that is queued but has not started when Unsubscribe
// returns is skipped.
func TestUnsubscribeSkipsQueuedRuns(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	started, release := make(chan struct{}), make(chan struct{})
	_, err := b.Subscribe(func(eventbus.Event) error {
		close(started)
		<-release
		return nil
	}, only(eventbus.WorkflowStarted))
	require.NoError(t, err)
	var ran atomic.Int64
	id, err := b.Subscribe(func(eventbus.Event) error { ran.Add(1); return nil },
		only(eventbus.StepStarted))
	require.NoError(t, err)

	require.NoError(t, b.Publish(context.Background(), ev(eventbus.WorkflowStarted)))
	recv(t, started) // the only worker is busy
	for range 3 {
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	}
	assert.Equal(t, int64(3), b.Metrics().Queued)
	require.True(t, b.Unsubscribe(id))
	close(release)
	drain(t, b)

	assert.Zero(t, ran.Load())
	m := b.Metrics()
	assert.Equal(t, uint64(3), m.Skipped)
	assert.Equal(t, uint64(1), m.Delivered)
	assert.Zero(t, m.Queued)
}

// Guarantee 2, inline: a handler that unsubscribes a later one stops it from
// seeing the event being published.
func TestUnsubscribeDuringInlinePublish(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	var later eventbus.SubscriptionID
	_, err := b.Subscribe(func(eventbus.Event) error {
		b.Unsubscribe(later)
		return nil
	})
	require.NoError(t, err)
	ran := false
	later, err = b.Subscribe(func(eventbus.Event) error { ran = true; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	assert.False(t, ran)
	assert.Equal(t, uint64(1), b.Metrics().Skipped)
}

// Guarantee 3: WithMaxWorkers(0) runs sync handlers inline, in subscription
// order, before Publish returns.
func TestInlineOrder(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	var got []int
	for i := range 5 {
		_, err := b.Subscribe(func(eventbus.Event) error {
			got = append(got, i)
			return nil
		})
		require.NoError(t, err)
		// Async subscriptions in between do not disturb the sync order.
		_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
		require.NoError(t, err)
	}
	for round := range 3 {
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		require.Len(t, got, 5*(round+1), "all sync handlers ran before Publish returned")
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4}, got)
}

// Guarantee 4: a failing or panicking handler does not shrink the pool.
func TestPoolKeepsItsSizeAfterFaults(t *testing.T) {
	const workers = 3
	b := newBus(t, eventbus.WithMaxWorkers(workers))
	faults := []func(){
		func() { panic("string") },
		func() { panic(errors.New("error")) },
		func() { panic(nil) },
		func() { runtimeGoexit() },
	}
	for i, f := range faults {
		_, err := b.Subscribe(func(eventbus.Event) error { f(); return nil },
			eventbus.Filter{Types: []eventbus.EventType{eventbus.EventType("fault-" + strconv.Itoa(i))}})
		require.NoError(t, err)
	}
	for i := range faults {
		for range workers {
			require.NoError(t, b.Publish(context.Background(), ev(eventbus.EventType("fault-"+strconv.Itoa(i)))))
		}
	}
	drain(t, b)
	m := b.Metrics()
	assert.Equal(t, uint64(len(faults)*workers), m.Failed)
	assert.Equal(t, uint64(3*workers), m.Panics)

	assertFullPool(t, b, workers)
}

// Guarantee 5: PublishAndWait returns only after every matching handler,
// sync and async, has returned.
func TestPublishAndWaitWaitsForAll(t *testing.T) {
	for _, order := range gateOrders {
		t.Run(order.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBus(t, eventbus.WithMaxWorkers(2))
				syncGate, asyncGate, first, second := gates(order.syncFirst)
				finished := subscribeBlocked(t, b, syncGate, asyncGate, 3, 3)
				result := make(chan error, 1)
				go func() { result <- b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)) }()
				require.NoError(t, openInTurn(t, first, second, result, "PublishAndWait returned before its handlers"))
				assert.Equal(t, int64(6), finished.Load())
			})
		})
	}
}

// Guarantee 5: when ctx ends first PublishAndWait returns ctx.Err(), and the
// handlers still finish and Drain still waits for them. (With free workers:
// when every worker is busy the caller runs its own handlers, see
// TestPublishAndWaitCallerHelps.)
func TestPublishAndWaitContextEndsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(4))
		syncGate, asyncGate, first, second := gates(true)
		finished := subscribeBlocked(t, b, syncGate, asyncGate, 2, 1)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := b.PublishAndWait(ctx, ev(eventbus.StepStarted))
		require.ErrorIs(t, err, context.DeadlineExceeded)

		drained := make(chan error, 1)
		go func() { drained <- b.Drain(context.Background()) }()
		require.NoError(t, openInTurn(t, first, second, drained, "Drain returned while handlers were running"))
		assert.Equal(t, int64(3), finished.Load())
	})
}

// Guarantee 6: via Publish an async handler's ctx keeps the publisher's
// values but not its cancellation.
func TestAsyncPublishContextIsDetached(t *testing.T) {
	type key struct{}
	b := newBus(t)
	cancelled := make(chan struct{})
	type seen struct {
		value any
		err   error
	}
	result := make(chan seen, 1)
	_, err := b.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
		<-cancelled
		result <- seen{ctx.Value(key{}), ctx.Err()}
		return nil
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "trace-7"))
	require.NoError(t, b.Publish(ctx, ev(eventbus.StepStarted)))
	cancel()
	close(cancelled)
	got := recv(t, result)
	assert.Equal(t, "trace-7", got.value)
	assert.NoError(t, got.err, "the publisher's cancellation does not reach the handler")
}

// Guarantee 6: via PublishAndWait an async handler's ctx is the caller's.
func TestAsyncPublishAndWaitContextIsCallers(t *testing.T) {
	type key struct{}
	for _, others := range []bool{false, true} {
		t.Run("other handlers="+strconv.FormatBool(others), func(t *testing.T) {
			b := newBus(t)
			if others { // the caller then starts goroutines for every async handler
				_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
				require.NoError(t, err)
				_, err = b.Subscribe(func(eventbus.Event) error { return nil })
				require.NoError(t, err)
			}
			deadline := time.Now().Add(time.Hour)
			ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), deadline)
			defer cancel()
			waiting := make(chan struct{})
			var gotValue any
			var gotDeadline time.Time
			_, err := b.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
				gotValue = ctx.Value(key{})
				gotDeadline, _ = ctx.Deadline()
				close(waiting)
				<-ctx.Done()
				return ctx.Err()
			})
			require.NoError(t, err)
			go func() {
				<-waiting
				cancel()
			}()
			err = b.PublishAndWait(ctx, ev(eventbus.StepStarted))
			require.ErrorIs(t, err, context.Canceled)
			drain(t, b)
			assert.Equal(t, "v", gotValue)
			assert.True(t, deadline.Equal(gotDeadline))
			assert.Equal(t, uint64(1), b.Metrics().Failed, "the handler saw the caller's cancellation")
		})
	}
}

// Guarantee 6: async handlers always run; none is skipped.
func TestAsyncHandlersAllRun(t *testing.T) {
	b := newBus(t)
	var runs atomic.Int64
	for range 3 {
		_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { runs.Add(1); return nil })
		require.NoError(t, err)
	}
	for range 1000 {
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	}
	drain(t, b)
	assert.Equal(t, int64(3000), runs.Load())
	assert.Equal(t, uint64(3000), b.Metrics().Delivered)
}

// Guarantees 6 and 8: Shutdown past its deadline cancels async handlers' ctx
// and returns ctx.Err(); a later Close waits for what is left.
func TestShutdownDeadlineCancelsAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := eventbus.New(quiet)
		sawCancel := make(chan error, 2)
		_, err := b.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
			<-ctx.Done()
			sawCancel <- ctx.Err()
			return nil
		})
		require.NoError(t, err)
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		waitCtx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = b.PublishAndWait(waitCtx, ev(eventbus.StepStarted)) }()
		synctest.Wait()

		ctx, cancelShutdown := context.WithTimeout(context.Background(), time.Second)
		defer cancelShutdown()
		require.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
		assert.ErrorIs(t, <-sawCancel, context.Canceled)
		assert.ErrorIs(t, <-sawCancel, context.Canceled)
		require.NoError(t, b.Close())
		assert.ErrorIs(t, b.Publish(context.Background(), ev(eventbus.StepStarted)), eventbus.ErrClosed)
	})
}

// Guarantee 7: Drain waits for every run queued or executing when it was
// called, and returns nil.
func TestDrainWaitsForQueuedAndRunning(t *testing.T) {
	for _, order := range gateOrders {
		t.Run(order.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBus(t, eventbus.WithMaxWorkers(1))
				syncGate, asyncGate, first, second := gates(order.syncFirst)
				finished := subscribeBlocked(t, b, syncGate, asyncGate, 1, 1)
				for range 3 {
					require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
				}
				drained := make(chan error, 1)
				go func() { drained <- b.Drain(context.Background()) }()
				require.NoError(t, openInTurn(t, first, second, drained, "Drain returned early"))
				assert.Equal(t, int64(6), finished.Load())
			})
		})
	}
}

// Guarantee 7: a timed-out Drain returns ctx.Err(), leaves the bus open and
// leaves no goroutine behind.
func TestDrainTimeout(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	release := make(chan struct{})
	_, err := b.Subscribe(func(e eventbus.Event) error {
		if e.Type == eventbus.StepStarted {
			<-release
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))

	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, b.Drain(ctx), context.DeadlineExceeded)
	goleak.VerifyNone(t, before)

	close(release)
	require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepCompleted)), "the bus is still open")
	drain(t, b)
	assert.Equal(t, uint64(2), b.Metrics().Delivered)
}

// Guarantee 7: Drain does not wait for events accepted after it was called,
// so it returns even while publishers never pause.
func TestDrainIgnoresLaterEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(2))
		first, later := make(chan struct{}), make(chan struct{})
		_, err := b.Subscribe(func(e eventbus.Event) error {
			if e.Message == "first" {
				<-first
			} else {
				<-later
			}
			return nil
		})
		require.NoError(t, err)
		e := ev(eventbus.StepStarted)
		e.Message = "first"
		require.NoError(t, b.Publish(context.Background(), e))
		drained := make(chan error, 1)
		go func() { drained <- b.Drain(context.Background()) }()
		synctest.Wait()
		e.Message = "later"
		require.NoError(t, b.Publish(context.Background(), e))
		close(first)
		synctest.Wait()
		select {
		case err := <-drained:
			require.NoError(t, err)
		default:
			t.Fatal("Drain waits for an event published after it was called")
		}
		close(later)
	})
}

// Guarantee 7 under load: every event whose Publish returned before Drain was
// called has been handled when Drain returns.
func TestDrainWhilePublishing(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(3))
	const events = 20000
	var handled [events]atomic.Bool
	_, err := b.Subscribe(func(e eventbus.Event) error {
		n, _ := strconv.Atoi(e.Message)
		handled[n].Store(true)
		return nil
	})
	require.NoError(t, err)
	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(stop)
		for i := range events {
			e := ev(eventbus.StepStarted)
			e.Message = strconv.Itoa(i)
			if !assert.NoError(t, b.Publish(context.Background(), e)) {
				return
			}
			published.Store(int64(i + 1))
		}
	})
	drains := 0
	for done := false; !done; drains++ {
		select {
		case <-stop:
			done = true
		default:
		}
		n := published.Load()
		within(t, func() { drain(t, b) })
		for i := range n {
			if !handled[i].Load() {
				t.Fatalf("event %d was published before Drain but not handled after it", i)
			}
		}
	}
	wg.Wait()
	t.Logf("%d drains", drains)
}

// Guarantee 8: after Close, Publish, PublishAndWait and Subscribe return
// ErrClosed, pending work has finished, no goroutine is left, and a second
// call returns nil.
func TestClose(t *testing.T) {
	before := goleak.IgnoreCurrent()
	b := eventbus.New(quiet, eventbus.WithMaxWorkers(2))
	release := make(chan struct{})
	finished := subscribeBlocked(t, b, release, release, 1, 1)
	for range 100 {
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	assert.Eventually(t, func() bool { // Close has begun: it refuses new work at once
		_, err := b.Subscribe(func(eventbus.Event) error { return nil })
		return errors.Is(err, eventbus.ErrClosed)
	}, hardTimeout, time.Millisecond)
	notYet(t, closed, "Close returned before pending work finished")
	close(release)
	require.NoError(t, recv(t, closed))
	assert.Equal(t, int64(200), finished.Load(), "pending work finished before Close returned")
	goleak.VerifyNone(t, before)

	assert.ErrorIs(t, b.Publish(context.Background(), ev(eventbus.StepStarted)), eventbus.ErrClosed)
	assert.ErrorIs(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)), eventbus.ErrClosed)
	_, err := b.Subscribe(func(eventbus.Event) error { return nil })
	assert.ErrorIs(t, err, eventbus.ErrClosed)
	_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
	assert.ErrorIs(t, err, eventbus.ErrClosed)
	assert.NoError(t, b.Close())
	assert.NoError(t, b.Shutdown(context.Background()))
	assert.NoError(t, b.Drain(context.Background()))
	assert.Equal(t, uint64(100), b.Metrics().Published)
	assert.Equal(t, int64(200), finished.Load())
}

// Guarantee 8: Close waits for the sync handlers and for the async ones,
// whichever finish last.
func TestCloseWaitsForSyncAndAsync(t *testing.T) {
	for _, order := range gateOrders {
		t.Run(order.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := eventbus.New(quiet, eventbus.WithMaxWorkers(2))
				syncGate, asyncGate, first, second := gates(order.syncFirst)
				finished := subscribeBlocked(t, b, syncGate, asyncGate, 1, 1)
				for range 10 {
					require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
				}
				closed := make(chan error, 1)
				go func() { closed <- b.Close() }()
				require.NoError(t, openInTurn(t, first, second, closed, "Close returned before pending work finished"))
				assert.Equal(t, int64(20), finished.Load())
			})
		})
	}
}

// Guarantee 8: Shutdown returns ctx.Err() when its deadline passes while a
// sync handler blocks, and the workers still finish the queue afterwards.
func TestShutdownDeadlineSyncHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := eventbus.New(quiet, eventbus.WithMaxWorkers(1))
		release := make(chan struct{})
		finished := subscribeBlocked(t, b, release, nil, 1, 0)
		for range 3 {
			require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
		assert.ErrorIs(t, b.Publish(context.Background(), ev(eventbus.StepStarted)), eventbus.ErrClosed)
		close(release)
		require.NoError(t, b.Close())
		assert.Equal(t, int64(3), finished.Load(), "accepted events are not lost")
	})
}

// Guarantee 8: Publish racing with Close returns ErrClosed or delivers the
// event; it never panics and never loses an accepted event.
func TestPublishRacingClose(t *testing.T) {
	for _, workers := range []int{0, 1, 4} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			for range 20 {
				b := eventbus.New(quiet, eventbus.WithMaxWorkers(workers))
				var handled atomic.Int64
				_, err := b.Subscribe(func(eventbus.Event) error { handled.Add(1); return nil })
				require.NoError(t, err)
				_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { handled.Add(1); return nil })
				require.NoError(t, err)
				var accepted atomic.Int64
				var wg sync.WaitGroup
				for p := range 4 {
					wg.Go(func() {
						for i := 0; ; i++ {
							var err error
							if (p+i)%3 == 0 {
								err = b.PublishAndWait(context.Background(), ev(eventbus.StepStarted))
							} else {
								err = b.Publish(context.Background(), ev(eventbus.StepStarted))
							}
							if errors.Is(err, eventbus.ErrClosed) {
								return
							}
							if !assert.NoError(t, err) {
								return
							}
							accepted.Add(1)
						}
					})
				}
				require.Eventually(t, func() bool { return accepted.Load() > 50 }, hardTimeout, time.Millisecond)
				require.NoError(t, b.Close())
				wg.Wait()
				assert.Equal(t, 2*accepted.Load(), handled.Load())
				assert.Equal(t, uint64(accepted.Load()), b.Metrics().Published)
			}
		})
	}
}

// Guarantee 10: by default Publish never blocks and never drops.
func TestPublishNeverBlocksByDefault(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	release := make(chan struct{})
	handled := subscribeBlocked(t, b, release, nil, 1, 0)
	const events = 10000
	within(t, func() {
		for range events {
			require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		}
	})
	close(release)
	drain(t, b)
	assert.Equal(t, int64(events), handled.Load())
	assert.Zero(t, b.Metrics().Rejected)
}

// backpressureBus returns a bus with one worker and a queue of one event, with
// a sync and an async subscription that record the messages they see. The
// first event blocks the worker until release is closed.
func backpressureBus(t *testing.T, policy eventbus.OverflowPolicy) (b *eventbus.Bus, release chan struct{}, seen func() []string) {
	b = newBus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, policy))
	release = make(chan struct{})
	var mu sync.Mutex
	var got []string
	record := func(who string, e eventbus.Event) {
		mu.Lock()
		got = append(got, who+":"+e.Message)
		mu.Unlock()
	}
	_, err := b.Subscribe(func(e eventbus.Event) error {
		if e.Message == "1" {
			<-release
		}
		record("sync", e)
		return nil
	})
	require.NoError(t, err)
	_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error {
		record("async", e)
		return nil
	})
	require.NoError(t, err)
	return b, release, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// Guarantee 10: with OverflowBlock, Publish waits for room until ctx ends,
// then returns ctx.Err() and no handler sees the event.
func TestOverflowBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, release, seen := backpressureBus(t, eventbus.OverflowBlock)
		bg := context.Background()
		require.NoError(t, b.Publish(bg, msg("1"))) // taken by the worker, which blocks
		synctest.Wait()
		require.NoError(t, b.Publish(bg, msg("2"))) // fills the queue

		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		require.ErrorIs(t, b.Publish(ctx, msg("3")), context.DeadlineExceeded)
		require.ErrorIs(t, b.PublishAndWait(ctx, msg("3")), context.DeadlineExceeded)

		// A ctx that can end makes Publish wait for room (a publisher
		// with context.Background lends the bus a worker that makes room:
		// see TestReentrantOverflowBlock).
		waitCtx, cancelWait := context.WithCancel(bg)
		defer cancelWait()
		blocked := make(chan error, 1)
		go func() { blocked <- b.Publish(waitCtx, msg("4")) }()
		synctest.Wait()
		notYet(t, blocked, "Publish into a full queue returned without waiting")
		close(release)
		synctest.Wait()
		require.NoError(t, <-blocked)
		require.NoError(t, b.Drain(bg))
		assert.ElementsMatch(t, []string{"sync:1", "async:1", "sync:2", "async:2", "sync:4", "async:4"}, seen())
		m := b.Metrics()
		assert.Equal(t, uint64(2), m.Rejected, "ctx ending while Publish waits for room, and a ctx already done")
		assert.Equal(t, uint64(3), m.Published)
	})
}

// Guarantee 10: with OverflowReject, Publish returns ErrQueueFull at once and
// no handler sees the event.
func TestOverflowReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, release, seen := backpressureBus(t, eventbus.OverflowReject)
		bg := context.Background()
		require.NoError(t, b.Publish(bg, msg("1")))
		synctest.Wait()
		require.NoError(t, b.Publish(bg, msg("2")))
		require.ErrorIs(t, b.Publish(bg, msg("3")), eventbus.ErrQueueFull)
		close(release)
		require.NoError(t, b.Drain(bg))
		require.NoError(t, b.Publish(bg, msg("4")), "room again once the worker caught up")
		require.NoError(t, b.Drain(bg))
		assert.ElementsMatch(t, []string{"sync:1", "async:1", "sync:2", "async:2", "sync:4", "async:4"}, seen())
		m := b.Metrics()
		assert.Equal(t, uint64(1), m.Rejected)
		assert.Equal(t, uint64(3), m.Published)
	})
}

// Guarantee 10: a rejected event does not use up a Once subscription.
func TestOverflowRejectKeepsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, release, _ := backpressureBus(t, eventbus.OverflowReject)
		bg := context.Background()
		var got []string
		_, err := b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error {
			got = append(got, e.Message)
			return nil
		}, eventbus.Once(), eventbus.Filter{Match: func(e eventbus.Event) bool { return e.Message >= "3" }})
		require.NoError(t, err)
		require.NoError(t, b.Publish(bg, msg("1")))
		synctest.Wait()
		require.NoError(t, b.Publish(bg, msg("2")))
		require.ErrorIs(t, b.Publish(bg, msg("3")), eventbus.ErrQueueFull)
		assert.Equal(t, 3, b.Metrics().Subscribers, "the Once subscription is still there")
		close(release)
		require.NoError(t, b.Drain(bg))
		require.NoError(t, b.Publish(bg, msg("4")))
		require.NoError(t, b.Drain(bg))
		assert.Equal(t, []string{"4"}, got)
		assert.Equal(t, 2, b.Metrics().Subscribers)
	})
}

// Guarantee 11: a PublishAndWait caller runs its own event's queued handlers
// when every worker is busy, so it never starves.
func TestPublishAndWaitCallerHelps(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	_, err := b.Subscribe(func(eventbus.Event) error {
		close(started)
		<-release
		return nil
	}, only(eventbus.WorkflowStarted))
	require.NoError(t, err)
	var ran atomic.Int64
	for range 3 {
		_, err := b.Subscribe(func(eventbus.Event) error { ran.Add(1); return nil },
			only(eventbus.StepStarted))
		require.NoError(t, err)
	}
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.WorkflowStarted)))
	recv(t, started) // the only worker blocks until the test ends
	within(t, func() {
		assert.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
	})
	assert.Equal(t, int64(3), ran.Load())
}

// A handler that calls runtime.Goexit (as t.FailNow does) on the publisher's
// own goroutine ends that goroutine and nothing else: the fault is counted
// once, the runs the publisher had not started are handed to the bus's
// goroutines and run, none is skipped, and Drain and Close do not hang.
func TestGoexitOnPublisherGoroutine(t *testing.T) {
	for _, tt := range []struct {
		name    string
		workers int
		async   bool
	}{
		{"inline", 0, false},
		{"inline with async", 0, true},
		{"caller runs its own", 2, false},
		{"caller runs its own, with async", 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(tt.workers))
			var later atomic.Int64
			_, err := b.Subscribe(func(e eventbus.Event) error {
				if e.Message == "exit" {
					runtimeGoexit()
				}
				return nil
			})
			require.NoError(t, err)
			_, err = b.Subscribe(func(eventbus.Event) error { later.Add(1); return nil })
			require.NoError(t, err)
			if tt.async {
				_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { later.Add(1); return nil })
				require.NoError(t, err)
			}
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				_ = b.PublishAndWait(context.Background(), msg("exit"))
				t.Error("PublishAndWait returned although its goroutine called Goexit")
			}()
			recv(t, exited)
			within(t, func() { drain(t, b) })
			require.NoError(t, b.PublishAndWait(context.Background(), msg("fine")))

			m := b.Metrics()
			assert.Equal(t, uint64(1), m.Failed, "the Goexit is counted once")
			assert.Zero(t, m.Panics)
			assert.Zero(t, m.Skipped, "no run is skipped")
			assert.Equal(t, 2*(b.Metrics().Subscribers-1), int(later.Load()), "the handlers after the Goexit ran, for both events")
			assert.Equal(t, 2*b.Metrics().Subscribers, int(m.Delivered+m.Failed), "every matched run is accounted for")
		})
	}
}

// WithMaxAsync bounds the goroutines running async handlers; the runs beyond
// the bound wait and all of them still run.
func TestMaxAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, events = 3, 20
		b := newBus(t, eventbus.WithMaxAsync(limit))
		release := make(chan struct{})
		var running, peak, finished atomic.Int64
		_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			running.Add(-1)
			finished.Add(1)
			return nil
		})
		require.NoError(t, err)
		goroutines := runtime.NumGoroutine()
		for range events {
			require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
		}
		synctest.Wait()
		assert.Equal(t, int64(limit), running.Load())
		assert.Equal(t, int64(events-limit), b.Metrics().Queued, "the other runs wait")
		assert.LessOrEqual(t, runtime.NumGoroutine(), goroutines+limit)
		close(release)
		require.NoError(t, b.Drain(context.Background()))
		assert.Equal(t, int64(events), finished.Load())
		assert.Equal(t, int64(limit), peak.Load())
		assert.Zero(t, b.Metrics().Queued)
	})
}
