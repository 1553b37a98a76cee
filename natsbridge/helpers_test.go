package natsbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// waitFor is the generous timeout of every wait in the tests. It bounds a
// failing test; a passing one never waits for it.
const waitFor = 30 * time.Second

// tick is how often require.Eventually checks its condition.
const tick = 5 * time.Millisecond

// An embedded is a NATS server with JetStream, run in this process on
// 127.0.0.1 with a random port and its storage in a temp dir.
type embedded struct {
	tb   testing.TB
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// startServer starts an embedded server that the test stops when it ends.
func startServer(tb testing.TB) *embedded {
	tb.Helper()
	es := &embedded{tb: tb, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	es.start()
	// Restarts reuse the port the first start was given.
	es.opts.Port = es.srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(es.stop)
	return es
}

func (es *embedded) start() {
	es.tb.Helper()
	opts := es.opts // the server keeps and changes what it is given
	s, err := server.NewServer(&opts)
	require.NoError(es.tb, err)
	s.Start()
	require.True(es.tb, s.ReadyForConnections(waitFor), "server not ready")
	es.mu.Lock()
	es.srv = s
	es.mu.Unlock()
}

// stop shuts the server down and waits until it is gone.
func (es *embedded) stop() {
	es.mu.Lock()
	s := es.srv
	es.srv = nil
	es.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// restart starts the server again on the same port with the same storage.
func (es *embedded) restart() { es.start() }

func (es *embedded) URL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(es.opts.Port)
}

// connect opens a client connection that reconnects forever, quickly, and is
// closed when the test ends.
func connect(tb testing.TB, es *embedded, name string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(es.URL(),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		// Write errors while a test stops the server are expected.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
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
