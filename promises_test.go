package eventbus_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// These tests pin down the seven ways an adversarial review found the core
// breaking its own promises when features combine (issue 11). Each failed
// on every run before the dispatch core was rebuilt.

// 1. A handler may call PublishAndWait with any pool size, with a ctx that
// can end, without deadlock, also when its event's ordered run is parked
// behind a run still queued behind the caller's own worker (or async
// goroutine).
func TestReentrantPublishAndWaitWithDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []eventbus.Option
		async   bool
		ordered bool // the publishing handler's own subscription is ordered too
	}{
		{"sync ordered", []eventbus.Option{eventbus.WithMaxWorkers(1)}, false, true},
		{"plain handler publishes to ordered", []eventbus.Option{eventbus.WithMaxWorkers(1)}, false, false},
		{"async ordered", []eventbus.Option{eventbus.WithMaxAsync(1)}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBus(t, tc.opts...)
				gate := make(chan struct{})
				result := make(chan error, 1)
				var ran sync.Map
				handle := func(ctx context.Context, e eventbus.Event) error {
					ran.Store(e.Message, true)
					if e.Message == "A1" {
						<-gate
						ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						defer cancel()
						result <- b.PublishAndWait(ctx, eventbus.Event{Type: "o", ADWID: "B", Message: "B1"})
					}
					return nil
				}
				root := []eventbus.SubscribeOption{only("root")}
				if tc.ordered {
					root = append(root, eventbus.Ordered())
				}
				_, err := subscribeAs(b, tc.async, handle, root...)
				require.NoError(t, err)
				_, err = subscribeAs(b, tc.async, handle, only("o"), eventbus.Ordered())
				require.NoError(t, err)

				bg := context.Background()
				require.NoError(t, b.Publish(bg, eventbus.Event{Type: "root", ADWID: "A", Message: "A1"}))
				synctest.Wait() // A1 holds the only goroutine
				require.NoError(t, b.Publish(bg, eventbus.Event{Type: "o", ADWID: "B", Message: "B0"}))
				close(gate) // A1 waits for B1, parked behind the queued B0
				require.NoError(t, <-result, "PublishAndWait from a handler ran out its deadline")
				_, b1 := ran.Load("B1")
				assert.True(t, b1)
			})
		})
	}
}

// 2. A caller that runs its event's ordered run itself returns once that
// run is over; the lane's later events go on elsewhere.
func TestPublishAndWaitLeavesTheLaneBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1))
		gates := map[string]chan struct{}{"E": make(chan struct{}), "E2": make(chan struct{})}
		defer openAll(gates)
		started := make(chan string, 2)
		_, err := b.Subscribe(func(e eventbus.Event) error {
			started <- e.Message
			<-gates[e.Message]
			return nil
		}, eventbus.Ordered())
		require.NoError(t, err)

		result := make(chan error, 1)
		go func() {
			result <- b.PublishAndWait(context.Background(), eventbus.Event{Type: "x", ADWID: "k", Message: "E"})
		}()
		assert.Equal(t, "E", <-started) // on the caller's own goroutine
		require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: "k", Message: "E2"}))
		open1(gates["E"])
		synctest.Wait()
		require.NoError(t, already(t, result, "PublishAndWait(E) waited for E2, the next run of its lane"))
		assert.Equal(t, "E2", already(t, started, "E2 did not go on elsewhere"))
		openAll(gates)
		require.NoError(t, b.Drain(context.Background()))
	})
}

// 3. What a busy worker has not started, another goroutine takes, so a
// slow handler holds up no run of a caller that waits with a ctx that can
// end. (The old core let the worker stash the caller's second run in a
// batch behind the slow one.)
func TestWaitingCallerNotHeldUpBySlowHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1))
		gates := map[string]chan struct{}{"hold": make(chan struct{}), "X": make(chan struct{}), "E1": make(chan struct{})}
		defer openAll(gates) // also if the test fails: the bubble must be able to end
		block := func(name string) eventbus.Handler {
			return func(eventbus.Event) error { <-gates[name]; return nil }
		}
		for _, name := range []string{"hold", "X"} {
			_, err := b.Subscribe(block(name), only(eventbus.EventType(name)))
			require.NoError(t, err)
		}
		_, err := b.Subscribe(func(eventbus.Event) error { return nil }, only("warm"))
		require.NoError(t, err)
		_, err = b.Subscribe(block("E1"), only("E"))
		require.NoError(t, err)
		var e2 atomic.Bool
		_, err = b.Subscribe(func(eventbus.Event) error { e2.Store(true); return nil }, only("E"))
		require.NoError(t, err)

		bg := context.Background()
		require.NoError(t, b.Publish(bg, ev("hold"))) // the only worker is busy
		synctest.Wait()
		for range 3 {
			require.NoError(t, b.Publish(bg, ev("warm"))) // quick runs: a batching worker would batch
		}
		require.NoError(t, b.Publish(bg, ev("X")))
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		result := make(chan error, 1)
		go func() { result <- b.PublishAndWait(ctx, ev("E")) }()
		synctest.Wait()
		open1(gates["hold"])
		synctest.Wait()
		open1(gates["E1"])
		synctest.Wait() // X still blocks the only worker
		require.NoError(t, already(t, result, "the caller waits for a run held up behind X"))
		assert.True(t, e2.Load())
	})
}

// 4. A caller whose ctx ends starts no further handler and returns at once.
func TestPublishAndWaitStopsWhenCtxEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1))
		gates := map[string]chan struct{}{"hold": make(chan struct{}), "2": make(chan struct{})}
		defer openAll(gates)
		hold, gate2 := gates["hold"], gates["2"]
		_, err := b.Subscribe(func(eventbus.Event) error { <-hold; return nil }, only("hold"))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err = b.Subscribe(func(eventbus.Event) error { cancel(); return nil }, only("E"))
		require.NoError(t, err)
		var second atomic.Int64
		_, err = b.Subscribe(func(eventbus.Event) error { second.Add(1); <-gate2; return nil }, only("E"))
		require.NoError(t, err)

		require.NoError(t, b.Publish(context.Background(), ev("hold"))) // the worker is held
		synctest.Wait()
		result := make(chan error, 1)
		go func() { result <- b.PublishAndWait(ctx, ev("E")) }()
		synctest.Wait()
		assert.ErrorIs(t, already(t, result, "PublishAndWait ran a handler after its ctx ended"), context.Canceled)
		openAll(gates)
		require.NoError(t, b.Drain(context.Background()))
		assert.Equal(t, int64(1), second.Load(), "the second handler still ran, elsewhere")
	})
}

// 5. A run's duration is its own, and a run is reported slow only if it is
// still going after the threshold, also for a PublishAndWait into a full
// queue.
func TestRunTimedOnItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &logRecorder{level: slog.LevelWarn}
		obs := &recordingObserver{}
		b := newBus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowBlock),
			eventbus.WithSlowHandlerThreshold(time.Second), eventbus.WithObserver(obs), eventbus.WithLogger(slog.New(rec)))
		hold := make(chan struct{})
		_, err := b.Subscribe(func(eventbus.Event) error { <-hold; return nil }, only("hold"))
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { time.Sleep(1500 * time.Millisecond); return nil }, only("slow"))
		require.NoError(t, err)
		own, err := b.Subscribe(func(eventbus.Event) error { time.Sleep(300 * time.Millisecond); return nil }, only("own"))
		require.NoError(t, err)
		// A second handler: the old core queued events with more than one.
		_, err = b.Subscribe(func(eventbus.Event) error { return nil }, only("own"))
		require.NoError(t, err)

		bg := context.Background()
		require.NoError(t, b.Publish(bg, ev("hold")))
		synctest.Wait()
		require.NoError(t, b.Publish(bg, ev("slow"))) // the queue is full
		result := make(chan error, 1)
		go func() { result <- b.PublishAndWait(bg, ev("own")) }()
		synctest.Wait()
		close(hold)
		require.NoError(t, <-result)
		require.NoError(t, b.Drain(bg))

		_, runs, _ := obs.snapshot()
		for _, r := range runs {
			if r.SubscriptionID == own {
				assert.Equal(t, 300*time.Millisecond, r.Duration)
			}
		}
		for _, s := range b.Subscriptions() {
			if s.ID == own {
				assert.Equal(t, 300*time.Millisecond, s.MaxDuration)
			}
		}
		var slow []string
		for _, r := range rec.records() {
			if r.Message == "handler slow" {
				slow = append(slow, attrs(r)["event_type"].String())
			}
		}
		assert.Equal(t, []string{"slow"}, slow, "only the 1.5s run is reported slow")
	})
}

// 6. The observer hears of every call whose event was valid, also one
// whose ctx was already done.
func TestObserverHearsPublishWithDoneCtx(t *testing.T) {
	for _, wait := range []bool{false, true} {
		obs := &recordingObserver{}
		b := newBus(t, eventbus.WithObserver(obs))
		_, err := b.Subscribe(func(eventbus.Event) error { return nil })
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		publish := b.Publish
		if wait {
			publish = b.PublishAndWait
		}
		require.ErrorIs(t, publish(ctx, ev(eventbus.StepStarted)), context.Canceled)
		require.Error(t, publish(context.Background(), eventbus.Event{}), "invalid: not reported")
		pubs, _, _ := obs.snapshot()
		require.Len(t, pubs, 1, "wait=%v", wait)
		assert.ErrorIs(t, pubs[0].Err, context.Canceled)
		assert.Zero(t, pubs[0].Runs)
		assert.Equal(t, wait, pubs[0].Wait)
		assert.Equal(t, uint64(1), b.Metrics().Rejected)
	}
}

// 7. runtime.Goexit on a worker ends that one run: every other run the
// worker would have taken is still run, none is skipped, plain or ordered.
func TestGoexitOnWorkerEndsOneRun(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run("ordered="+strconv.FormatBool(ordered), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(1))
			hold, started := make(chan struct{}), make(chan struct{})
			_, err := b.Subscribe(func(eventbus.Event) error { close(started); <-hold; return nil }, only("hold"))
			require.NoError(t, err)
			_, err = b.Subscribe(func(eventbus.Event) error { runtimeGoexit(); return nil }, only("boom"))
			require.NoError(t, err)
			var mu sync.Mutex
			var got []string
			opts := []eventbus.SubscribeOption{only("e")}
			if ordered {
				opts = append(opts, eventbus.Ordered())
			}
			_, err = b.Subscribe(func(e eventbus.Event) error {
				mu.Lock()
				got = append(got, e.Message)
				mu.Unlock()
				return nil
			}, opts...)
			require.NoError(t, err)

			bg := context.Background()
			require.NoError(t, b.Publish(bg, ev("hold")))
			recv(t, started)
			var want []string
			publish := func(n int) {
				for range n {
					want = append(want, strconv.Itoa(len(want)))
					require.NoError(t, b.Publish(bg, eventbus.Event{Type: "e", ADWID: "k", Message: want[len(want)-1]}))
				}
			}
			publish(12)
			require.NoError(t, b.Publish(bg, ev("boom")))
			publish(12)
			close(hold)
			within(t, func() { drain(t, b) })
			mu.Lock()
			defer mu.Unlock()
			if ordered {
				assert.Equal(t, want, got)
			} else {
				assert.ElementsMatch(t, want, got)
			}
			m := b.Metrics()
			assert.Zero(t, m.Skipped)
			assert.Equal(t, uint64(1), m.Failed)
			assertFullPool(t, b, 1)
		})
	}
}

// 7, worse: a PublishAndWait returns only once every matching handler has
// returned, also when a worker that could have taken one of its runs ends
// with runtime.Goexit.
func TestPublishAndWaitNotFooledByGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1))
		hold, first := make(chan struct{}), make(chan struct{})
		_, err := b.Subscribe(func(eventbus.Event) error { <-hold; return nil }, only("hold"))
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { return nil }, only("warm"))
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { runtimeGoexit(); return nil }, only("boom"))
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { <-first; return nil }, only("pair"))
		require.NoError(t, err)
		var second atomic.Bool
		_, err = b.Subscribe(func(eventbus.Event) error { second.Store(true); return nil }, only("pair"))
		require.NoError(t, err)

		bg := context.Background()
		require.NoError(t, b.Publish(bg, ev("hold")))
		synctest.Wait()
		for range 3 {
			require.NoError(t, b.Publish(bg, ev("warm")))
		}
		require.NoError(t, b.Publish(bg, ev("boom")))
		result := make(chan error, 1)
		go func() { result <- b.PublishAndWait(bg, ev("pair")) }()
		synctest.Wait()
		close(hold)
		synctest.Wait()
		close(first)
		require.NoError(t, <-result)
		assert.True(t, second.Load(), "PublishAndWait returned before its second handler ran")
		require.NoError(t, b.Drain(bg))
		assert.Zero(t, b.Metrics().Skipped)
	})
}

// open1 opens gate g, if it is not open yet.
func open1(g chan struct{}) {
	select {
	case <-g:
	default:
		close(g)
	}
}

// openAll opens every gate that is not open yet.
func openAll(gates map[string]chan struct{}) {
	for _, g := range gates {
		open1(g)
	}
}
