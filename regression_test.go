package eventbus_test

import (
	"context"
	"errors"
	"log/slog"
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
	"github.com/adws/eventbus/eventbustest"
)

// These tests pin down defects an independent review found, and the gaps it
// found in the other tests.

// A Filter.Match that panics is recovered, logged, and rejects the event for
// its own subscription only: the others (a Once one here) still get it, and
// Drain and Shutdown do not hang.
func TestFilterMatchPanic(t *testing.T) {
	for _, workers := range []int{0, 2} {
		rec := &logRecorder{level: slog.LevelError}
		b := eventbus.New(eventbus.WithMaxWorkers(workers), eventbus.WithLogger(slog.New(rec)))
		var otherRuns atomic.Int64
		onceGot := make(chan string, 2)
		_, err := b.Subscribe(func(e eventbus.Event) error { onceGot <- e.Message; return nil }, eventbus.Once())
		require.NoError(t, err)
		panicky, err := b.Subscribe(func(eventbus.Event) error { otherRuns.Add(1); return nil }, eventbus.Filter{Match: func(e eventbus.Event) bool {
			if e.Message == "boom" {
				panic("bug in a filter")
			}
			return true
		}})
		require.NoError(t, err)

		require.NoError(t, b.PublishAndWait(context.Background(), msg("boom")))
		require.NoError(t, b.PublishAndWait(context.Background(), msg("ok")))
		assert.Equal(t, "boom", <-onceGot, "the other subscriptions got the event")
		assert.Empty(t, onceGot, "Once ran twice")
		assert.Equal(t, int64(1), otherRuns.Load(), "the panicking filter rejected the event")
		recs := rec.records()
		require.Len(t, recs, 1)
		assert.Equal(t, "filter panicked", recs[0].Message)
		assert.Equal(t, string(panicky), attrs(recs[0])["subscription_id"].String())

		ctx, cancel := context.WithTimeout(context.Background(), hardTimeout)
		assert.NoError(t, b.Drain(ctx))
		assert.NoError(t, b.Shutdown(ctx))
		cancel()
	}
}

// A Filter.Match that calls runtime.Goexit ends the publisher's goroutine but
// leaves nothing counted: Drain and Close return. Every event is matched
// before it is accepted, inline too, so the event was never accepted and a
// Once subscription is still there for the next event.
func TestFilterMatchGoexit(t *testing.T) {
	for _, workers := range []int{0, 2} {
		b := eventbus.New(quiet, eventbus.WithMaxWorkers(workers))
		onceGot := make(chan string, 2)
		_, err := b.Subscribe(func(e eventbus.Event) error { onceGot <- e.Message; return nil }, eventbus.Once())
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { return nil }, eventbus.Filter{Match: func(e eventbus.Event) bool {
			if e.Message == "exit" {
				runtimeGoexit()
			}
			return true
		}})
		require.NoError(t, err)
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			_ = b.Publish(context.Background(), msg("exit"))
		}()
		recv(t, exited)
		require.NoError(t, b.PublishAndWait(context.Background(), msg("ok")))
		ctx, cancel := context.WithTimeout(context.Background(), hardTimeout)
		assert.NoError(t, b.Drain(ctx))
		assert.NoError(t, b.Shutdown(ctx))
		cancel()
		assert.Equal(t, "ok", <-onceGot, "workers=%d", workers)
		assert.Empty(t, onceGot, "Once ran twice")
	}
}

// A logger whose handler panics loses its line, nothing else.
func TestLoggerPanic(t *testing.T) {
	b := newBus(t, eventbus.WithLogger(slog.New(panickyHandler{})))
	_, err := b.Subscribe(func(eventbus.Event) error { return errors.New("fails") })
	require.NoError(t, err)
	for range 3 {
		require.Error(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
		require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	}
	drain(t, b)
	assert.Equal(t, uint64(6), b.Metrics().Failed)
}

type panickyHandler struct{}

func (panickyHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panickyHandler) Handle(context.Context, slog.Record) error { panic("logger bug") }
func (h panickyHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panickyHandler) WithGroup(string) slog.Handler           { return h }

// An async handler started by Publish sees neither the publisher's
// cancellation nor its cause, also through context.Cause, once Shutdown's
// deadline cancels its ctx.
func TestDetachedContextHidesPublisherCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := eventbus.New(quiet)
		type seen struct{ err, cause error }
		res := make(chan seen, 1)
		_, err := b.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
			<-ctx.Done()
			res <- seen{ctx.Err(), context.Cause(ctx)}
			return nil
		})
		require.NoError(t, err)
		errReqDone := errors.New("request finished")
		pctx, cancel := context.WithCancelCause(context.Background())
		require.NoError(t, b.Publish(pctx, ev(eventbus.StepStarted)))
		cancel(errReqDone)
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		defer scancel()
		require.ErrorIs(t, b.Shutdown(sctx), context.DeadlineExceeded)
		got := <-res
		assert.ErrorIs(t, got.err, context.Canceled)
		assert.NotErrorIs(t, got.cause, errReqDone)
		require.NoError(t, b.Close())
	})
}

// A publisher that gives up waiting for room never took a Once subscription:
// the next matching event that is accepted reaches it.
func TestOnceNotTakenByRefusedEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowBlock))
		release := make(chan struct{})
		_, err := b.Subscribe(func(eventbus.Event) error { <-release; return nil }, only(eventbus.WorkflowStarted))
		require.NoError(t, err)
		var mu sync.Mutex
		var got []string
		_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error {
			mu.Lock()
			got = append(got, e.Message)
			mu.Unlock()
			return nil
		}, eventbus.Once(), only(eventbus.StepStarted))
		require.NoError(t, err)
		// A also has a sync handler, so it needs queue room; B does not.
		_, err = b.Subscribe(func(eventbus.Event) error { return nil },
			eventbus.Filter{Match: func(e eventbus.Event) bool { return e.Message == "A" }})
		require.NoError(t, err)

		bg := context.Background()
		require.NoError(t, b.Publish(bg, ev(eventbus.WorkflowStarted))) // the worker is busy
		synctest.Wait()
		require.NoError(t, b.Publish(bg, ev(eventbus.WorkflowStarted))) // the queue is full

		ctxA, cancelA := context.WithCancel(bg)
		resA := make(chan error, 1)
		go func() { resA <- b.Publish(ctxA, msg("A")) }() // waits for room
		synctest.Wait()
		require.NoError(t, b.Publish(bg, msg("B"))) // no sync runs: accepted at once
		cancelA()
		require.ErrorIs(t, <-resA, context.Canceled)

		close(release)
		require.NoError(t, b.Drain(bg))
		require.NoError(t, b.Publish(bg, msg("C")))
		require.NoError(t, b.Drain(bg))
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"B"}, got)
	})
}

// Drain does not wait for an event whose publisher was still waiting for
// queue room when Drain was called.
func TestDrainIgnoresPublishersWaitingForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowBlock))
		release1, release3 := make(chan struct{}), make(chan struct{})
		_, err := b.Subscribe(func(e eventbus.Event) error {
			switch e.Message {
			case "1":
				<-release1
			case "3":
				<-release3
			}
			return nil
		})
		require.NoError(t, err)
		bg := context.Background()
		waitCtx, cancel := context.WithCancel(bg) // can end: waits instead of helping
		defer cancel()
		require.NoError(t, b.Publish(bg, msg("1"))) // executing
		synctest.Wait()
		require.NoError(t, b.Publish(bg, msg("2"))) // queued
		pub3 := make(chan error, 1)
		go func() { pub3 <- b.Publish(waitCtx, msg("3")) }() // waits for room
		synctest.Wait()

		drained := make(chan error, 1)
		go func() { drained <- b.Drain(bg) }()
		synctest.Wait()
		close(release1) // 1 and 2 finish; only now is 3 accepted
		synctest.Wait()
		require.NoError(t, <-pub3)
		select {
		case err := <-drained:
			assert.NoError(t, err)
		default:
			t.Error("Drain waits for event 3, which was neither queued nor running when Drain was called")
		}
		close(release3)
	})
}

// A PublishAndWait caller whose ctx can end runs its own queued handlers as
// soon as every worker is busy, not only if they were all busy when it
// published.
func TestPublishAndWaitHelpsWhenPoolBecomesBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(1))
		release := make(chan struct{})
		var ran atomic.Int64
		for range 2 {
			_, err := b.Subscribe(func(eventbus.Event) error {
				ran.Add(1)
				<-release
				return nil
			})
			require.NoError(t, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		result := make(chan error, 1)
		go func() { result <- b.PublishAndWait(ctx, ev(eventbus.StepStarted)) }()
		synctest.Wait()
		// The only worker runs one handler; the caller must run the other.
		assert.Equal(t, int64(2), ran.Load(), "both handlers run at once")
		close(release)
		require.NoError(t, <-result)
	})
}

// A sync handler on the only worker that calls PublishAndWait with a ctx
// that can end does not wait for itself: its runs are run by itself.
func TestPublishAndWaitFromSyncHandlerWithDeadline(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	var leaves atomic.Int64
	_, err := b.Subscribe(func(eventbus.Event) error { leaves.Add(1); return nil }, only("leaf"))
	require.NoError(t, err)
	_, err = b.Subscribe(func(eventbus.Event) error { leaves.Add(1); return nil }, only("leaf"))
	require.NoError(t, err)
	_, err = b.Subscribe(func(eventbus.Event) error {
		ctx, cancel := context.WithTimeout(context.Background(), hardTimeout)
		defer cancel()
		return b.PublishAndWait(ctx, ev("leaf"))
	}, only("root"))
	require.NoError(t, err)
	within(t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), hardTimeout)
		defer cancel()
		assert.NoError(t, b.PublishAndWait(ctx, ev("root")))
	})
	assert.Equal(t, int64(2), leaves.Load())
}

// Unsubscribe skips the queued run of a Once subscription, like any other.
func TestUnsubscribeSkipsQueuedOnceRun(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	started, release := make(chan struct{}), make(chan struct{})
	_, err := b.Subscribe(func(eventbus.Event) error { close(started); <-release; return nil }, only(eventbus.WorkflowStarted))
	require.NoError(t, err)
	var ran atomic.Int64
	id, err := b.Subscribe(func(eventbus.Event) error { ran.Add(1); return nil }, eventbus.Once(), only(eventbus.StepStarted))
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.WorkflowStarted)))
	recv(t, started)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted))) // queued
	assert.Equal(t, 1, b.Metrics().Subscribers, "the Once subscription left the registry")
	assert.True(t, b.Unsubscribe(id), "its run has not started")
	close(release)
	drain(t, b)
	assert.Zero(t, ran.Load())
	assert.Equal(t, uint64(1), b.Metrics().Skipped)
	assert.False(t, b.Unsubscribe(id))
}

// After its run, a Once subscription is gone: Unsubscribe reports false.
func TestOnceForgottenAfterRun(t *testing.T) {
	b := newBus(t)
	id, err := b.Subscribe(func(eventbus.Event) error { return nil }, eventbus.Once())
	require.NoError(t, err)
	require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
	assert.False(t, b.Unsubscribe(id))
}

// Queued runs start in the order their events were accepted.
func TestQueuedRunsStartInAcceptanceOrder(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	started, release := make(chan struct{}), make(chan struct{})
	_, err := b.Subscribe(func(eventbus.Event) error { close(started); <-release; return nil }, only(eventbus.WorkflowStarted))
	require.NoError(t, err)
	var order []string
	_, err = b.Subscribe(func(e eventbus.Event) error { order = append(order, e.Message); return nil }, only(eventbus.StepStarted))
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.WorkflowStarted)))
	recv(t, started)
	var want []string
	for i := range 50 {
		m := string(rune('A' + i%26))
		want = append(want, m)
		require.NoError(t, b.Publish(context.Background(), msg(m)))
	}
	close(release)
	drain(t, b)
	assert.Equal(t, want, order)
}

// New starts no goroutine; the workers start with the first queued run.
func TestNewStartsNoGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	b := eventbus.New(quiet)
	_, err := b.Subscribe(func(eventbus.Event) error { return nil })
	require.NoError(t, err)
	require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted))) // run by the caller
	goleak.VerifyNone(t, before)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted))) // queued: starts the pool
	require.NoError(t, b.Close())
	goleak.VerifyNone(t, before)
}

// The second review's findings.

// A handler that calls runtime.Goexit in the middle of a worker's batch does
// not strand the lanes that the batch's later runs hold: the ordered
// subscription still gets its later events, and Drain and Close return.
func TestBatchGoexitHandsLanesOver(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	gate, started := make(chan struct{}), make(chan struct{})
	_, err := b.Subscribe(func(eventbus.Event) error { close(started); <-gate; return nil }, only("block"))
	require.NoError(t, err)
	_, err = b.Subscribe(func(eventbus.Event) error { runtimeGoexit(); return nil }, only("boom"))
	require.NoError(t, err)
	// The worker batches only after quick runs, so "warm" must have one.
	_, err = b.Subscribe(func(eventbus.Event) error { return nil }, only("warm"))
	require.NoError(t, err)
	var mu sync.Mutex
	var got []string
	_, err = b.Subscribe(func(e eventbus.Event) error {
		mu.Lock()
		got = append(got, e.Message)
		mu.Unlock()
		return nil
	}, only("o"), eventbus.Ordered())
	require.NoError(t, err)

	bg := context.Background()
	require.NoError(t, b.Publish(bg, ev("block")))
	recv(t, started) // the only worker is busy
	for range 3 {
		require.NoError(t, b.Publish(bg, ev("warm"))) // quick runs first, so the worker batches
	}
	require.NoError(t, b.Publish(bg, ev("boom")))
	require.NoError(t, b.Publish(bg, eventbus.Event{Type: "o", ADWID: "k", Message: "1"})) // holds lane k
	close(gate)
	within(t, func() { drain(t, b) })
	require.NoError(t, b.Publish(bg, eventbus.Event{Type: "o", ADWID: "k", Message: "2"}))
	within(t, func() { drain(t, b) })
	// Event 1 ran, or was skipped with the rest of the batch after the
	// Goexit; either way lane k was released and event 2 got through.
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, got)
	assert.Equal(t, "2", got[len(got)-1])
	assert.Zero(t, b.Metrics().Queued)
}

// A plain handler on the only worker that calls PublishAndWait for an event
// whose ordered run is parked behind a run still queued behind that worker
// helps with that queued run, instead of deadlocking.
func TestPublishAndWaitHelpsWithParkedLane(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(1))
	gate, started := make(chan struct{}), make(chan struct{})
	result := make(chan error, 1)
	_, err := b.Subscribe(func(eventbus.Event) error {
		close(started)
		<-gate
		result <- b.PublishAndWait(context.Background(), eventbus.Event{Type: "o", ADWID: "k", Message: "inner"})
		return nil
	}, only("root"))
	require.NoError(t, err)
	var ran atomic.Int64
	_, err = b.Subscribe(func(eventbus.Event) error { ran.Add(1); return nil }, only("o"), eventbus.Ordered())
	require.NoError(t, err)

	bg := context.Background()
	require.NoError(t, b.Publish(bg, ev("root")))
	recv(t, started)
	require.NoError(t, b.Publish(bg, eventbus.Event{Type: "o", ADWID: "k", Message: "queued"})) // holds lane k
	close(gate)
	require.NoError(t, recv(t, result))
	assert.Equal(t, int64(2), ran.Load())
}

// An async handler that calls PublishAndWait while every async goroutine is
// busy runs its event's async handlers itself, instead of waiting for a
// goroutine that only it could free.
func TestPublishAndWaitRunsOwnAsyncWhenPoolFull(t *testing.T) {
	b := newBus(t, eventbus.WithMaxAsync(1))
	result := make(chan error, 1)
	_, err := b.SubscribeAsync(func(ctx context.Context, _ eventbus.Event) error {
		result <- b.PublishAndWait(ctx, ev("leaf"))
		return nil
	}, only("root"))
	require.NoError(t, err)
	var leaves atomic.Int64
	for range 2 {
		_, err = b.SubscribeAsync(func(context.Context, eventbus.Event) error { leaves.Add(1); return nil }, only("leaf"))
		require.NoError(t, err)
	}
	require.NoError(t, b.Publish(context.Background(), ev("root")))
	require.NoError(t, recv(t, result))
	assert.Equal(t, int64(2), leaves.Load())
}

// Skipping an unsubscribed ordered async run from the async wait list does
// not touch its delivery after it may have been recycled (the race detector
// would see the reuse by other publishers).
func TestUnsubscribedOrderedAsyncSkip(t *testing.T) {
	for range 10 {
		b := newBus(t, eventbus.WithMaxAsync(1))
		gate, started := make(chan struct{}), make(chan struct{})
		_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { close(started); <-gate; return nil }, only("block"))
		require.NoError(t, err)
		id, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil }, only("o"), eventbus.Ordered())
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { return nil }, only("noise"))
		require.NoError(t, err)
		bg := context.Background()
		require.NoError(t, b.Publish(bg, ev("block")))
		recv(t, started)                                                         // the only async goroutine is busy
		require.NoError(t, b.Publish(bg, eventbus.Event{Type: "o", ADWID: "k"})) // waits in the async list
		require.True(t, b.Unsubscribe(id))
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 200 { // reuse pooled deliveries meanwhile
				assert.NoError(t, b.Publish(bg, ev("noise")))
			}
		})
		close(gate)
		wg.Wait()
		drain(t, b)
		assert.Equal(t, uint64(1), b.Metrics().Skipped)
	}
}

// An OrderedBy key function that calls runtime.Goexit ends its publisher's
// goroutine before the event is accepted: the bus goes on, and Shutdown
// returns.
func TestOrderKeyGoexit(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(2))
	rec := eventbustest.NewRecorder(t, b)
	_, err := b.Subscribe(func(eventbus.Event) error { return nil },
		eventbus.OrderedBy(func(e eventbus.Event) string {
			if e.Message == "bad" {
				runtimeGoexit()
			}
			return e.ADWID
		}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Publish(context.Background(), eventbus.Event{Type: "x", Message: "bad"})
	}()
	recv(t, done)
	within(t, func() {
		require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", Message: "good"}))
		drain(t, b)
	})
	assert.Equal(t, 1, rec.Len(), "the refused event reached no one")
	assert.Equal(t, uint64(1), b.Metrics().Published)
}

type goexitObserver struct{}

func (goexitObserver) Published(context.Context, eventbus.PublishInfo) {}
func (goexitObserver) HandlerDone(context.Context, eventbus.RunInfo)   { runtimeGoexit() }

// An observer that calls runtime.Goexit ends the goroutine but loses no run:
// the run is still counted and recorded, so Drain returns.
func TestObserverGoexit(t *testing.T) {
	for _, workers := range []int{0, 2} {
		b := newBus(t, eventbus.WithObserver(goexitObserver{}), eventbus.WithMaxWorkers(workers))
		_, err := b.Subscribe(func(eventbus.Event) error { return nil })
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { defer close(done); _ = b.Publish(context.Background(), ev("x")) }()
		recv(t, done)
		within(t, func() { drain(t, b) })
		m := b.Metrics()
		assert.Equal(t, uint64(1), m.Delivered)
		assert.Zero(t, m.InFlight)
	}
}

// A worker whose handler blocks does not hold up the runs queued after it:
// with another worker free they all start, and until they start they count
// as queued. (Runs a worker took in a batch are taken from its stash by the
// others: TestBatchGoexitHandsLanesOver and TestReentrancy hang without
// that.)
func TestSlowRunDoesNotHoldUpOthers(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(2))
	gates := map[string]chan struct{}{"b1": make(chan struct{}), "b2": make(chan struct{}), "0": make(chan struct{})}
	blockStarted := make(chan struct{}, 2)
	_, err := b.Subscribe(func(e eventbus.Event) error { blockStarted <- struct{}{}; <-gates[e.Message]; return nil }, only("block"))
	require.NoError(t, err)
	var mu sync.Mutex
	var order []string
	firstStarted := make(chan struct{})
	_, err = b.Subscribe(func(e eventbus.Event) error {
		mu.Lock()
		order = append(order, e.Message)
		mu.Unlock()
		if e.Message == "0" {
			close(firstStarted)
			<-gates["0"]
		}
		return nil
	}, only("rec"))
	require.NoError(t, err)
	bg := context.Background()
	for _, m := range []string{"b1", "b2"} {
		require.NoError(t, b.Publish(bg, eventbus.Event{Type: "block", Message: m}))
		recv(t, blockStarted)
	}
	for i := range 10 {
		require.NoError(t, b.Publish(bg, eventbus.Event{Type: "rec", Message: strconv.Itoa(i)}))
	}
	assert.Equal(t, int64(10), b.Metrics().Queued)
	close(gates["b1"]) // worker 1 takes run 0 and blocks in it
	recv(t, firstStarted)
	close(gates["b2"]) // worker 2 is free for the rest
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 10
	}, hardTimeout, time.Millisecond, "the runs after the blocked one wait although a worker is free")
	mu.Lock()
	assert.ElementsMatch(t, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, order)
	assert.Equal(t, "0", order[0])
	mu.Unlock()
	assert.Zero(t, b.Metrics().Queued)
	close(gates["0"])
	drain(t, b)
}

// The tests below pin down what the second review of the rebuilt core found
// (issue 11's closing review).

// A worker that ran a lane's queued run must not claim from that lane's job
// once the run has ended: the lane is then free, may be taken by the next
// event with its key, and its job rewritten. Here a publisher hands lane
// "k" to the worker (a2), the worker frees it, and the next publisher takes
// it and queues its own lane run (b2) into the same job. Under -race, the
// worker's late claim on the rewritten job was reported in most rounds;
// without -race it could steal b2's run and corrupt the queue.
func TestLaneJobNotClaimedAfterItsRun(t *testing.T) {
	for round := range 20 {
		b := newBus(t, eventbus.WithMaxWorkers(1))
		ran := make(chan string, 4)
		_, err := b.Subscribe(func(e eventbus.Event) error {
			ran <- e.Message
			if next, ok := map[string]string{"a1": "a2", "b1": "b2"}[e.Message]; ok {
				// Parks behind this run, which holds the lane: when it ends,
				// the publisher queues next as the lane's job.
				return b.Publish(context.Background(), msg(next))
			}
			return nil
		}, eventbus.Ordered())
		require.NoError(t, err)
		ctx := context.Background()
		require.NoError(t, b.PublishAndWait(ctx, msg("a1")))
		recv(t, ran) // a1
		// a2 has run on the worker; it is settling, with no sync edge back here.
		require.Equal(t, "a2", recv(t, ran), "round %d", round)
		require.NoError(t, b.PublishAndWait(ctx, msg("b1")))
		drain(t, b)
		assert.ElementsMatch(t, []string{"b1", "b2"}, []string{recv(t, ran), recv(t, ran)}, "round %d", round)
		assert.Equal(t, uint64(4), b.Metrics().Delivered, "round %d", round)
	}
}

// A PublishAndWait whose ctx can end binds its handlers' ctx to it once, and
// lets go of the binding when its runs are done. It used to bind twice and
// lose the first, which then lived as long as the caller's ctx: for a ctx
// that is not one of package context's own, a goroutine each.
func TestPublishAndWaitLeavesNoBinding(t *testing.T) {
	b := newBus(t)
	_, err := b.SubscribeContext(func(context.Context, eventbus.Event) error { return nil })
	require.NoError(t, err)
	ctx := &foreignCtx{Context: context.Background(), done: make(chan struct{})}
	defer close(ctx.done) // lets any goroutine still bound to it go
	require.NoError(t, b.PublishAndWait(ctx, msg("warm-up")))
	before := runtime.NumGoroutine()
	const calls = 100
	for i := range calls {
		require.NoError(t, b.PublishAndWait(ctx, msg(strconv.Itoa(i))))
	}
	drain(t, b)
	assert.Less(t, runtime.NumGoroutine()-before, calls/2, "goroutines left bound to the caller's ctx")
}

// A foreignCtx can end, but is not one of package context's own, so a
// context.WithCancel of it needs a goroutine to watch it.
type foreignCtx struct {
	context.Context
	done chan struct{}
}

func (c *foreignCtx) Done() <-chan struct{} { return c.done }

func (c *foreignCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// A logger whose Enabled panics loses its lines and nothing else: every run
// still happens and counts, on workers and on the publisher, and the
// process lives on.
func TestLoggerEnabledPanics(t *testing.T) {
	for _, workers := range []int{0, 2} {
		b := eventbus.New(eventbus.WithMaxWorkers(workers), eventbus.WithLogger(slog.New(enabledPanics{})))
		_, err := b.Subscribe(func(eventbus.Event) error { return nil })
		require.NoError(t, err)
		_, err = b.Subscribe(func(eventbus.Event) error { return errors.New("logged, if the logger could") })
		require.NoError(t, err)
		require.NoError(t, b.Publish(context.Background(), msg("publish")))
		err = b.PublishAndWait(context.Background(), msg("wait"))
		assert.Len(t, eventbus.HandlerErrors(err), 1, "workers=%d", workers)
		drain(t, b)
		m := b.Metrics()
		assert.Equal(t, uint64(2), m.Delivered, "workers=%d", workers)
		assert.Equal(t, uint64(2), m.Failed, "workers=%d", workers)
		require.NoError(t, b.Close())
	}
}

type enabledPanics struct{}

func (enabledPanics) Enabled(context.Context, slog.Level) bool  { panic("bug in a logger's Enabled") }
func (enabledPanics) Handle(context.Context, slog.Record) error { return nil }
func (h enabledPanics) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h enabledPanics) WithGroup(string) slog.Handler           { return h }
