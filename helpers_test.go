package eventbus_test

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
		t.Fatalf("did not finish within %v: deadlock?", hardTimeout)
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

// subscribeBlocked subscribes nSync sync and nAsync async handlers that wait
// until release is closed, and returns the count of runs that finished.
func subscribeBlocked(t testing.TB, b *eventbus.Bus, release <-chan struct{}, nSync, nAsync int) *atomic.Int64 {
	t.Helper()
	finished := new(atomic.Int64)
	for range nSync {
		_, err := b.Subscribe(func(eventbus.Event) error {
			<-release
			finished.Add(1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range nAsync {
		_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error {
			<-release
			finished.Add(1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return finished
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
