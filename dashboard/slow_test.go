package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A heldStream is GET /events served with a gateWriter, so the test
// decides when each write completes.
type heldStream struct {
	*gateWriter
	ended  chan struct{} // closed when the handler returns
	cancel context.CancelFunc
}

// holdStream serves GET path on d and lets the stream's first write (its
// retry field) through.
func holdStream(t *testing.T, d *dashboard.Server, path string) *heldStream {
	ctx, cancel := context.WithCancel(t.Context())
	h := &heldStream{gateWriter: newGateWriter(), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(h.ended)
		d.ServeHTTP(h.gateWriter, httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil))
	}()
	retry := h.pass(t)
	require.NotEmpty(t, retry[0].Retry)
	return h
}

// stop cancels the request and waits for the handler to return.
func (h *heldStream) stop() {
	h.cancel()
	<-h.ended
}

// TestSlowClientGap holds a stream inside a write while 100 events are
// published to a client with room for 8: once the write returns, the
// client gets a gap event saying it missed 100 events, then live events.
func TestSlowClientGap(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithClientBuffer(8))
	w := holdStream(t, d, "/events")
	defer w.stop()

	publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, "1"))
	var held []byte
	select {
	case held = <-w.entered: // the stream is inside the write of event 1
	case <-time.After(waitFor):
		t.Fatal("event 1 was not written")
	}
	for i := 2; i <= 101; i++ {
		publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, fmt.Sprint(i)))
	}
	waitRecorded(t, d, 101)
	w.release <- struct{}{}
	assert.Contains(t, string(held), "id: 1\n")

	gap := w.pass(t)
	assert.Equal(t, []frame{{Event: "gap", Data: `{"missed":100}`}}, gap)
	publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, "102"))
	live := w.pass(t)
	require.Len(t, live, 1)
	assert.Equal(t, "102", live[0].ID)

	st := d.Stats()
	assert.Equal(t, uint64(1), st.SlowClients)
	assert.Equal(t, uint64(1), st.Gaps)
	assert.Equal(t, uint64(100), st.Missed)
}

// TestSlowClientGapCountsMatchingEvents checks that a filtered client's gap
// counts only the events its filter selects.
func TestSlowClientGapCountsMatchingEvents(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithClientBuffer(8))
	w := holdStream(t, d, "/events?type=step_failed")
	defer w.stop()

	publish(t, bus, ev("a", eventbus.StepFailed, eventbus.SeverityError, "1"))
	<-w.entered
	for i := 2; i <= 101; i++ {
		typ := eventbus.StepStarted
		if i%10 == 0 {
			typ = eventbus.StepFailed // 10 of them
		}
		publish(t, bus, ev("a", typ, eventbus.SeverityInfo, fmt.Sprint(i)))
	}
	waitRecorded(t, d, 101)
	w.release <- struct{}{}
	assert.Equal(t, []frame{{Event: "gap", Data: `{"missed":10}`}}, w.pass(t))
}

// TestSlowClientDisconnect checks DisconnectSlowClients: the client that
// fell behind has its stream ended instead of getting a gap.
func TestSlowClientDisconnect(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithClientBuffer(8), dashboard.WithSlowClients(dashboard.DisconnectSlowClients))
	w := holdStream(t, d, "/events")
	defer w.stop()

	publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, "1"))
	<-w.entered
	for i := 2; i <= 20; i++ {
		publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, fmt.Sprint(i)))
	}
	waitRecorded(t, d, 20)
	w.release <- struct{}{}
	select {
	case <-w.ended:
	case b := <-w.entered:
		t.Fatalf("the slow client got another write: %q", b)
	case <-time.After(waitFor):
		t.Fatal("the slow client's stream did not end")
	}
	st := d.Stats()
	assert.Equal(t, uint64(1), st.SlowDisconnects)
	assert.Zero(t, st.Gaps)
}

// TestClientThatStopsReadingDoesNotSlowTheBus holds a stream inside a
// write, as a client that stopped reading does once the socket buffers are
// full, and publishes 20,000 events: every Publish returns and the
// dashboard's handler finishes every run, while the stream stays stuck.
// Close then fails the stuck write at once, although the write timeout is
// an hour.
func TestClientThatStopsReadingDoesNotSlowTheBus(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithWriteTimeout(time.Hour))
	w := holdStream(t, d, "/events")
	publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, "stuck"))
	<-w.entered // the stream is now stuck in this write, for good

	const n = 20000
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := bus.Publish(t.Context(), ev("a", eventbus.AgentMessage, eventbus.SeverityInfo, "x")); err != nil {
				published <- fmt.Errorf("event %d: %w", i, err)
				return
			}
		}
		published <- nil
	}()
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("publishing stalled behind a client that stopped reading")
	}
	assert.Equal(t, uint64(n+1), dashboardRuns(bus), "the dashboard's handler returned for every event")
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, dashboard.WaitTaken(ctx, d, n+1))
	st := d.Stats()
	assert.Equal(t, uint64(n+1), st.Events+st.IntakeDropped, "every event recorded or counted as dropped")

	closeWithin(t, d)
	<-w.ended
	assert.Equal(t, uint64(1), d.Stats().WriteErrors, "the stuck write failed")
}

// TestClientThatStopsReadingOverTCP is the same over a real socket: a
// client that never reads, 320 MB of events offered to it. Publishing
// finishes, and Close returns promptly with the stream's write timeout at
// an hour.
func TestClientThatStopsReadingOverTCP(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithWriteTimeout(time.Hour))
	ts := serve(t, d)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)

	const n = 5000
	payload := strings.Repeat("x", 64<<10)
	for range n {
		require.NoError(t, bus.Publish(t.Context(), ev("a", eventbus.AgentMessage, eventbus.SeverityInfo, payload)))
	}
	assert.Equal(t, uint64(n), dashboardRuns(bus))
	closeWithin(t, d)
}

// dashboardRuns returns how many runs of the dashboard's subscription
// returned.
func dashboardRuns(bus *eventbus.Bus) uint64 {
	for _, s := range bus.Subscriptions() {
		if s.Name == "dashboard" {
			return s.Delivered
		}
	}
	return 0
}

// closeWithin closes d and fails the test if that takes longer than waitFor.
func closeWithin(t *testing.T, d *dashboard.Server) {
	t.Helper()
	closed := make(chan struct{})
	go func() { _ = d.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("Close waited for a stuck client")
	}
}
