package bench

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/adws/eventbus"
)

// Baselines: what a hand-written fan-out costs, with the same handler
// (eventbus.Handler counting into a tally) and the same event as this bus.

// handlers returns n handlers that count their runs in t. They never fail.
func handlers(t *tally, n int) []eventbus.Handler {
	hs := make([]eventbus.Handler, n)
	for i := range hs {
		hs[i] = func(eventbus.Event) error { t.hit(); return nil }
	}
	return hs
}

// call runs h on e and checks its error, as a bus must.
func call(h eventbus.Handler, e eventbus.Event) {
	if h(e) != nil {
		panic("bench: a baseline handler failed")
	}
}

// epoch and clockSink are baseline-direct-clock's: it reads the monotonic
// clock relative to epoch, as this bus does (time.Now would also read the
// wall clock, which costs about twice as much), and stores the sum where
// the compiler cannot drop it.
var (
	epoch     = time.Now()
	clockSink atomic.Int64
)

// callAll calls every handler with benchEvent. With clock it reads the
// clock once per handler, plus once per event, and adds up the handlers'
// durations: the least a bus that times each handler can do.
func callAll(hs []eventbus.Handler, clock bool) {
	if !clock {
		for _, h := range hs {
			call(h, benchEvent)
		}
		return
	}
	var total time.Duration
	start := time.Since(epoch)
	for _, h := range hs {
		call(h, benchEvent)
		end := time.Since(epoch)
		total += end - start
		start = end
	}
	clockSink.Store(int64(total))
}

func directS1(clock bool) func(*testing.B, int) {
	return func(b *testing.B, n int) {
		t := newTally(b)
		hs := handlers(t, n)
		ops := 0
		for b.Loop() {
			callAll(hs, clock)
			ops++
		}
		t.verify(b, ops*n)
	}
}

func directS4(clock bool) func(*testing.B) {
	return func(b *testing.B) {
		t := newTally(b)
		hs := handlers(t, s4Subs)
		b.ResetTimer()
		ops := parallelOps(b, func() error { callAll(hs, clock); return nil })
		b.StopTimer()
		t.verify(b, ops*s4Subs)
	}
}

// slogRun logs one handler run the way this bus logs it at Debug, with the
// same message and attributes, through debugLogger.
func slogRun(id string, took time.Duration) {
	debugLogger.LogAttrs(context.Background(), slog.LevelDebug, "handler finished",
		slog.String("subscription_id", id),
		slog.String("event_type", string(benchEvent.Type)),
		slog.Any("event_id", benchEventID),
		slog.String("adw_id", benchEvent.ADWID),
		slog.Duration("duration", took),
	)
}

// benchEventID stands for the ID this bus gives each event.
var benchEventID = uuid.MustParse("6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11")

// subIDs are the subscription ids this bus gives the handlers.
var subIDs = func() []string {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = "sub-" + strconv.Itoa(i+1)
	}
	return ids
}()

// callAllLogged is callAll with the clock, logging each run.
func callAllLogged(hs []eventbus.Handler) {
	start := time.Since(epoch)
	for i, h := range hs {
		call(h, benchEvent)
		end := time.Since(epoch)
		slogRun(subIDs[i], end-start)
		start = end
	}
}

func slogS1(b *testing.B, n int) {
	t := newTally(b)
	hs := handlers(t, n)
	ops := 0
	for b.Loop() {
		callAllLogged(hs)
		ops++
	}
	t.verify(b, ops*n)
}

func slogS4(b *testing.B) {
	t := newTally(b)
	hs := handlers(t, s4Subs)
	b.ResetTimer()
	ops := parallelOps(b, func() error { callAllLogged(hs); return nil })
	b.StopTimer()
	t.verify(b, ops*s4Subs)
}

// channelBuffer is the capacity of the channel baseline's channel and of the
// worker-pool baseline's job queue.
const channelBuffer = 1024

// newChannel starts one consumer that calls the n handlers for every event
// sent on the returned channel. stop closes the channel and waits for the
// consumer; it also runs at cleanup.
func newChannel(b *testing.B, t *tally, n int) (chan<- eventbus.Event, func()) {
	hs := handlers(t, n)
	events := make(chan eventbus.Event, channelBuffer)
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for e := range events {
			for _, h := range hs {
				call(h, e)
			}
		}
	})
	stop := sync.OnceFunc(func() {
		close(events)
		consumer.Wait()
	})
	b.Cleanup(stop)
	return events, stop
}

func channelS2(b *testing.B, n int) {
	t := newTally(b)
	events, stop := newChannel(b, t, n)
	b.ResetTimer()
	for range b.N {
		events <- benchEvent
	}
	t.expect(b, b.N*n)
	b.StopTimer()
	stop()
	t.verify(b, b.N*n)
}

func channelS3(b *testing.B, n int) {
	t := newTally(b)
	events, stop := newChannel(b, t, n)
	ops := 0
	for b.Loop() {
		events <- benchEvent
		ops++
		t.expect(b, ops*n)
	}
	stop()
	t.verify(b, ops*n)
}

// A job is one handler run for the worker-pool baseline.
type job struct {
	h    eventbus.Handler
	e    *eventbus.Event
	done *sync.WaitGroup
}

// newWorkerPool starts poolSize workers that run the jobs sent on the
// returned channel. stop closes it and waits for the workers; it also runs
// at cleanup.
func newWorkerPool(b *testing.B) (chan<- job, func()) {
	jobs := make(chan job, channelBuffer)
	var workers sync.WaitGroup
	for range poolSize() {
		workers.Go(func() {
			for j := range jobs {
				call(j.h, *j.e)
				j.done.Done()
			}
		})
	}
	stop := sync.OnceFunc(func() {
		close(jobs)
		workers.Wait()
	})
	b.Cleanup(stop)
	return jobs, stop
}

// submit queues one job per handler for e, adding them to done.
func submit(jobs chan<- job, hs []eventbus.Handler, e *eventbus.Event, done *sync.WaitGroup) {
	done.Add(len(hs))
	for _, h := range hs {
		jobs <- job{h: h, e: e, done: done}
	}
}

func workerPoolS2(b *testing.B, n int) {
	t := newTally(b)
	hs := handlers(t, n)
	jobs, stop := newWorkerPool(b)
	e := benchEvent
	var done sync.WaitGroup
	b.ResetTimer()
	for range b.N {
		submit(jobs, hs, &e, &done)
	}
	done.Wait()
	b.StopTimer()
	stop()
	t.verify(b, b.N*n)
}

func workerPoolS3(b *testing.B, n int) {
	t := newTally(b)
	hs := handlers(t, n)
	jobs, stop := newWorkerPool(b)
	e := benchEvent
	var done sync.WaitGroup
	ops := 0
	for b.Loop() {
		submit(jobs, hs, &e, &done)
		done.Wait()
		ops++
	}
	stop()
	t.verify(b, ops*n)
}

// goroutines starts one goroutine per handler for benchEvent, in done.
func goroutines(hs []eventbus.Handler, done *sync.WaitGroup) {
	for _, h := range hs {
		done.Go(func() { call(h, benchEvent) })
	}
}

func goroutineS2(b *testing.B, n int) {
	t := newTally(b)
	hs := handlers(t, n)
	var done sync.WaitGroup
	b.ResetTimer()
	for range b.N {
		goroutines(hs, &done)
	}
	done.Wait()
	b.StopTimer()
	t.verify(b, b.N*n)
}

func goroutineS3(b *testing.B, n int) {
	t := newTally(b)
	hs := handlers(t, n)
	var done sync.WaitGroup
	ops := 0
	for b.Loop() {
		goroutines(hs, &done)
		done.Wait()
		ops++
	}
	t.verify(b, ops*n)
}
