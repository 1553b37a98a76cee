package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIntakeNeverWaits calls the bus handler with no pump to take events:
// it returns every time, keeps the first limit events and counts the rest
// as lost, in order.
func TestIntakeNeverWaits(t *testing.T) {
	in := newIntake(10)
	for i := range 100 {
		require.NoError(t, in.handle(eventbus.Event{Type: "t", Message: strconv.Itoa(i)}))
	}
	batch, lost := in.take(make([]eventbus.Event, 0, 10))
	require.Len(t, batch, 10)
	assert.Equal(t, "9", batch[9].Message)
	assert.Equal(t, uint64(90), lost)
	assert.Equal(t, uint64(90), in.dropped.Load())
	batch, lost = in.take(batch)
	assert.Empty(t, batch)
	assert.Zero(t, lost, "take resets the loss")
}

// TestIntakeAllocatesNothing checks the bus handler's promise: no
// allocation per event, whether the event fits or is dropped.
func TestIntakeAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's bookkeeping allocates")
	}
	in := newIntake(101) // AllocsPerRun calls f once more than asked
	e := eventbus.Event{Type: "t", ADWID: "adw-1", Message: "m"}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = in.handle(e) }), "events that fit")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = in.handle(e) }), "events dropped")
	assert.Equal(t, uint64(101), in.dropped.Load())
}

// TestIntakeLossBecomesGap stalls the pump (it waits for the ring's lock)
// while 100 events are published into an intake of 4: the bus never
// waits, the events that did not fit are counted, and a client reading the
// stream gets gap events that add up to exactly that count, in their place.
func TestIntakeLossBecomesGap(t *testing.T) {
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()
	s, err := New(bus, WithIntakeBuffer(4))
	require.NoError(t, err)
	defer s.Close()

	s.ring.mu.RLock()
	for i := range 100 {
		require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: "t", Message: strconv.Itoa(i)}))
	}
	s.ring.mu.RUnlock()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, WaitTaken(ctx, s, 100))
	dropped := s.in.dropped.Load()
	require.GreaterOrEqual(t, dropped, uint64(100-8), "at most two batches of 4 got through")

	done, stop := context.WithCancel(t.Context())
	stop() // the stream writes what the ring holds, then ends
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequestWithContext(done, http.MethodGet, "/events?last_event_id=0", nil))
	var events, missed uint64
	for _, block := range strings.Split(rec.Body.String(), "\n\n") {
		switch {
		case strings.HasPrefix(block, "event: gap\n"):
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(block, "event: gap\ndata: {\"missed\":"), "}"), 10, 64)
			require.NoError(t, err, block)
			missed += n
		case strings.HasPrefix(block, "id: "):
			events++
		}
	}
	assert.Equal(t, dropped, missed, "the gaps report every dropped event")
	assert.Equal(t, 100-dropped, events)
}
