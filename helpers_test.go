package eventbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// hardTimeout bounds every wait that would otherwise hang CI when a deadlock
// or lost wake-up breaks a test.
const hardTimeout = 10 * time.Second

// quiet discards the bus's log lines.
var quiet = eventbus.WithLogger(slog.New(slog.DiscardHandler))

// newBus returns a quiet bus that is closed when the test ends. Later options
// override earlier ones, so a test may pass its own logger.
func newBus(t testing.TB, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	b := eventbus.New(append([]eventbus.Option{quiet}, opts...)...)
	t.Cleanup(func() {
		// Bounded, so that a broken Shutdown fails the test instead of
		// hanging the run.
		ctx, cancel := context.WithTimeout(context.Background(), hardTimeout)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown() = %v", err)
		}
	})
	return b
}

// within runs f and fails the test if it has not returned after hardTimeout.
// f is then still running, and would touch t after the test ended, so a
// timeout ends the test binary instead, with every goroutine's stack.
func within(t testing.TB, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(hardTimeout):
		stacks := make([]byte, 1<<20)
		stacks = stacks[:runtime.Stack(stacks, true)]
		panic(fmt.Sprintf("%s: did not finish within %v: deadlock?\n\n%s", t.Name(), hardTimeout, stacks))
	}
}

// recv waits for a value from ch, failing the test after hardTimeout.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hardTimeout):
		t.Fatalf("nothing received within %v", hardTimeout)
		panic("unreachable")
	}
}

func drain(t testing.TB, b *eventbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hardTimeout)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Fatalf("Drain() = %v", err)
	}
}

func ev(typ eventbus.EventType) eventbus.Event {
	return eventbus.Event{Type: typ, ADWID: "adw-1", Source: "test", Severity: eventbus.SeverityInfo}
}

// logRecorder is a slog.Handler that keeps every record, for tests that check
// what the bus logs.
type logRecorder struct {
	level slog.Level
	mu    sync.Mutex
	recs  []slog.Record
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) records() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

// attrs returns the attributes of rec by key.
func attrs(rec slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value
		return true
	})
	return m
}

// runtimeGoexit ends the calling goroutine the way t.FailNow does.
func runtimeGoexit() { runtime.Goexit() }

// subscribeBlocked subscribes nSync sync handlers that wait until syncGate
// is closed and nAsync async ones that wait for asyncGate, and returns the
// count of runs that finished.
func subscribeBlocked(t testing.TB, b *eventbus.Bus, syncGate, asyncGate <-chan struct{}, nSync, nAsync int) *atomic.Int64 {
	t.Helper()
	finished := new(atomic.Int64)
	for range nSync {
		_, err := b.Subscribe(func(eventbus.Event) error {
			<-syncGate
			finished.Add(1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range nAsync {
		_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error {
			<-asyncGate
			finished.Add(1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return finished
}

// openInTurn checks, in a synctest bubble, that done holds nothing while
// either gate is shut: it opens first, then second, and returns what done
// then delivers. Run it with the gates both ways round to show that done
// waits for each kind of handler.
func openInTurn[T any](t *testing.T, first, second chan struct{}, done <-chan T, what string) T {
	t.Helper()
	synctest.Wait()
	notYet(t, done, what)
	close(first)
	synctest.Wait()
	notYet(t, done, what+" (one gate still shut)")
	close(second)
	synctest.Wait()
	return recv(t, done)
}

// gateOrders names the two ways round for openInTurn.
var gateOrders = []struct {
	name      string
	syncFirst bool
}{{"sync-first", true}, {"async-first", false}}

// gates returns the sync and async gates, and the one to open first.
func gates(syncFirst bool) (syncGate, asyncGate, first, second chan struct{}) {
	syncGate, asyncGate = make(chan struct{}), make(chan struct{})
	if syncFirst {
		return syncGate, asyncGate, syncGate, asyncGate
	}
	return syncGate, asyncGate, asyncGate, syncGate
}

// notYet fails the test if ch already holds a result: what sends it should
// still be blocked.
func notYet[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s (got %v)", what, v)
	default:
	}
}

// runtimePanicNilError is what recover returns after panic(nil).
type runtimePanicNilError = runtime.PanicNilError

// only is a Filter on one event type.
func only(typ eventbus.EventType) eventbus.Filter {
	return eventbus.Filter{Types: []eventbus.EventType{typ}}
}

// msg is a StepStarted event with message m.
func msg(m string) eventbus.Event {
	e := ev(eventbus.StepStarted)
	e.Message = m
	return e
}

// subscribeAs subscribes h as an async handler, or, if not async, as a sync
// one called with context.Background().
func subscribeAs(b *eventbus.Bus, async bool, h eventbus.AsyncHandler, opts ...eventbus.SubscribeOption) (eventbus.SubscriptionID, error) {
	if async {
		return b.SubscribeAsync(h, opts...)
	}
	return b.Subscribe(func(e eventbus.Event) error { return h(context.Background(), e) }, opts...)
}

// already returns what ch holds, failing the test if it holds nothing yet:
// what sends it should have finished. The inverse of notYet.
func already[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatal(what)
		panic("unreachable")
	}
}

// assertFullPool proves that the bus still has workers workers: that many
// handlers that each wait for all the others can only finish if they all run
// at the same time.
func assertFullPool(t *testing.T, b *eventbus.Bus, workers int) {
	t.Helper()
	var barrier sync.WaitGroup
	barrier.Add(workers)
	var done atomic.Int64
	id, err := b.Subscribe(func(eventbus.Event) error {
		barrier.Done()
		barrier.Wait()
		done.Add(1)
		return nil
	}, only("barrier"))
	require.NoError(t, err)
	defer b.Unsubscribe(id)
	for range workers {
		require.NoError(t, b.Publish(context.Background(), ev("barrier")))
	}
	within(t, func() { drain(t, b) })
	assert.Equal(t, int64(workers), done.Load(), fmt.Sprintf("the pool has %d workers", workers))
}
