package dashboard_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResumeAcrossServerCut cuts a client's connection on the server side
// while events are in flight and more are published, then reconnects with
// Last-Event-ID: the client gets every event after the last one it read,
// in order, none lost and none repeated, without a gap.
func TestResumeAcrossServerCut(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus)
	ts := serve(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, fr := openStream(t, ctx, ts, "/events", nil)

	message := 0
	next := func() eventbus.Event {
		message++
		return ev("adw-1", eventbus.StepCompleted, eventbus.SeverityInfo, strconv.Itoa(message))
	}
	for range 10 {
		publish(t, bus, next())
	}
	last := 0
	for range 4 { // read some; the rest are in flight
		f, err := fr.next()
		require.NoError(t, err)
		last++
		require.Equal(t, strconv.Itoa(last), f.ID)
	}
	ts.CloseClientConnections()
	for range 20 {
		publish(t, bus, next())
	}
	waitRecorded(t, d, 30)

	_, fr = openStream(t, ctx, ts, "/events", http.Header{"Last-Event-Id": {strconv.Itoa(last)}})
	for last < 30 {
		f, err := fr.next()
		require.NoError(t, err)
		require.NotEqual(t, "gap", f.Event, "no gap: everything is in the buffer")
		last++
		require.Equal(t, strconv.Itoa(last), f.ID, "in order, none lost, none repeated")
		require.Equal(t, strconv.Itoa(last), f.decode(t).Message)
	}
	publish(t, bus, next())
	f, err := fr.next()
	require.NoError(t, err)
	assert.Equal(t, "31", f.ID, "then live")
	assert.GreaterOrEqual(t, d.Stats().Resumes, uint64(1))
	require.NoError(t, d.Close())
}

// TestResumeGap checks resuming past what the replay buffer holds: the
// client first gets a gap event with the number of events lost, then what
// the buffer still has.
func TestResumeGap(t *testing.T) {
	tests := []struct {
		name      string
		replay    int
		published int
		lastID    string
		wantGap   string // the gap's data, or "" for none
		wantFirst int    // first id after the gap; 0: no events
	}{
		{"within the buffer", 5, 20, "16", "", 17},
		{"older than the buffer", 5, 20, "3", `{"missed":12}`, 16},
		{"from the start", 5, 20, "0", `{"missed":15}`, 16},
		{"no replay", 0, 10, "3", `{"missed":7}`, 0},
		{"up to date", 5, 20, "20", "", 0},
		{"id past the newest (restarted server)", 50, 5, "1000", "", 1},
		{"not a number: live only", 50, 5, "abc", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := newBus(t)
			d := newDashboard(t, bus, dashboard.WithReplay(tt.replay))
			for i := range tt.published {
				publish(t, bus, ev("adw-1", eventbus.StepStarted, eventbus.SeverityInfo, strconv.Itoa(i+1)))
			}
			waitRecorded(t, d, uint64(tt.published))
			_, frames := replay(t, d, "last_event_id="+tt.lastID)
			if tt.wantGap != "" {
				require.NotEmpty(t, frames)
				assert.Equal(t, frame{Event: "gap", Data: tt.wantGap}, frames[0])
				frames = frames[1:]
			}
			var ids []string
			for _, f := range frames {
				ids = append(ids, f.ID)
			}
			var want []string
			for id := tt.wantFirst; id > 0 && id <= tt.published; id++ {
				want = append(want, strconv.Itoa(id))
			}
			assert.Equal(t, want, ids)
		})
	}
}
