package natsbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/google/uuid"
)

// waitFor is the generous timeout of every wait in the tests. It bounds a
// failing test; a passing one never waits for it.
const waitFor = natstest.Wait

// tick is how often require.Eventually checks its condition.
const tick = 5 * time.Millisecond

// startServer starts an embedded server, nats-server v2.15 in this
// process, that the test stops when it ends.
func startServer(tb testing.TB) *natstest.Server { return natstest.Start(tb, natstest.Embedded) }

// onEachServer runs test as a subtest on each kind of server, with a
// server of its own: embedded (nats-server v2.15, in this process) and
// standalone (a nats-server binary in a child process, such as Debian's
// 2.9.10; skipped, with the reason, where there is none).
func onEachServer(t *testing.T, test func(t *testing.T, es *natstest.Server)) {
	for _, kind := range natstest.Kinds {
		t.Run(kind.String(), func(t *testing.T) { test(t, natstest.Start(t, kind)) })
	}
}

// quiet is a logger for buses and bridges whose expected failures would
// clutter the test output.
var quiet = slog.New(slog.DiscardHandler)

// newBus returns a bus that the test closes when it ends.
func newBus(tb testing.TB) *eventbus.Bus {
	tb.Helper()
	bus := eventbus.New(eventbus.WithLogger(quiet))
	tb.Cleanup(func() { bus.Close() })
	return bus
}

// ctxFor returns a context that ends after waitFor or when the test ends.
func ctxFor(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	tb.Cleanup(cancel)
	return ctx
}

// A recorder is a bus handler that remembers every event it sees.
type recorder struct {
	mu     sync.Mutex
	events []eventbus.Event
	byID   map[uuid.UUID]int
}

func newRecorder() *recorder { return &recorder{byID: map[uuid.UUID]int{}} }

func (r *recorder) handle(e eventbus.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.byID[e.ID]++
	return nil
}

// count returns how many events the recorder saw, duplicates included.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// unique returns how many distinct event ids the recorder saw.
func (r *recorder) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

func (r *recorder) snapshot() []eventbus.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventbus.Event(nil), r.events...)
}

func (r *recorder) seen(id uuid.UUID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// event returns a valid event with a fresh id.
func event(t eventbus.EventType, adw string, i int) eventbus.Event {
	return eventbus.Event{
		ID:       uuid.New(),
		ADWID:    adw,
		Type:     t,
		Source:   "test",
		Severity: eventbus.SeverityInfo,
		Message:  fmt.Sprintf("event %d", i),
	}
}
