package dashboard_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFraming checks a live event's frame: its sequence number as id, its
// type as event name, its JSON as data, and the stream's headers.
func TestFraming(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithRetry(1500*time.Millisecond))
	ts := serve(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	require.NoError(t, err)
	res, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	fr := newFrameReader(res.Body)
	first, err := fr.next()
	require.NoError(t, err)
	assert.Equal(t, frame{Retry: "1500"}, first)

	sent := eventbus.Event{ADWID: "adw-1", Type: eventbus.StepFailed, Severity: eventbus.SeverityError,
		Source: "loader", Message: "line one\nline two", Data: map[string]any{"rows": 3.0},
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	publish(t, bus, sent)
	f, err := fr.next()
	require.NoError(t, err)
	assert.Equal(t, "1", f.ID)
	assert.Equal(t, "step_failed", f.Event)
	got := f.decode(t)
	assert.NotZero(t, got.ID)
	sent.ID = got.ID
	assert.Equal(t, sent, got)
	require.NoError(t, d.Close())
}

// TestFilters checks every query filter of GET /events against a fixed set
// of events.
func TestFilters(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus)
	events := []eventbus.Event{
		{ADWID: "a", Type: eventbus.StepStarted, Severity: eventbus.SeverityInfo, Source: "planner", Message: "1"},
		{ADWID: "a", Type: eventbus.StepFailed, Severity: eventbus.SeverityError, Source: "loader", Message: "2"},
		{ADWID: "b", Type: eventbus.AgentMessage, Severity: eventbus.SeverityDebug, Source: "planner", Message: "3"},
		{ADWID: "b", Type: eventbus.ToolReturned, Severity: eventbus.SeverityWarning, Source: "loader", Message: "4"},
		{ADWID: "c", Type: eventbus.WorkflowFailed, Severity: eventbus.SeverityCritical, Source: "planner", Message: "5"},
	}
	publish(t, bus, events...)
	waitRecorded(t, d, uint64(len(events)))

	tests := []struct {
		name, query string
		want        []string // messages
	}{
		{"none", "", []string{"1", "2", "3", "4", "5"}},
		{"type", "type=step_failed", []string{"2"}},
		{"type repeated", "type=step_failed&type=agent_message", []string{"2", "3"}},
		{"severity", "severity=warning", []string{"4"}},
		{"severity repeated", "severity=DEBUG&severity=CRITICAL", []string{"3", "5"}},
		{"min_severity", "min_severity=WARNING", []string{"2", "4", "5"}},
		{"min_severity debug", "min_severity=debug", []string{"1", "2", "3", "4", "5"}},
		{"adw_id", "adw_id=b", []string{"3", "4"}},
		{"adw_id repeated", "adw_id=a&adw_id=c", []string{"1", "2", "5"}},
		{"source", "source=loader", []string{"2", "4"}},
		{"combined", "source=planner&min_severity=INFO", []string{"1", "5"}},
		{"nothing matches", "adw_id=zzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, frames := replay(t, d, "last_event_id=0&"+tt.query)
			require.Equal(t, http.StatusOK, code)
			var got []string
			for _, f := range frames {
				got = append(got, f.decode(t).Message)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestBadQuery checks that an unknown severity, a repeated min_severity
// and an unknown names value are refused with 400.
func TestBadQuery(t *testing.T) {
	d := newDashboard(t, newBus(t))
	for _, q := range []string{"severity=LOUD", "min_severity=LOUD", "min_severity=INFO&min_severity=ERROR", "names=all"} {
		code, _ := replay(t, d, q)
		assert.Equal(t, http.StatusBadRequest, code, q)
	}
}

// TestNames checks names=message: bus events go out without an event
// name, so that a browser's onmessage sees every type; gaps keep theirs.
// It also checks that CR and LF cannot end the event field early.
func TestNames(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithReplay(2))
	publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, "1"),
		ev("a", "custom\r\ndata: injected", eventbus.SeverityInfo, "2"),
		ev("a", "plugin_event", eventbus.SeverityInfo, "3"))
	waitRecorded(t, d, 3)

	_, frames := replay(t, d, "last_event_id=0&names=message")
	require.Len(t, frames, 3)
	assert.Equal(t, frame{Event: "gap", Data: `{"missed":1}`}, frames[0])
	for _, f := range frames[1:] {
		assert.Empty(t, f.Event)
		assert.NotEmpty(t, f.ID)
	}

	_, frames = replay(t, d, "last_event_id=1")
	require.Len(t, frames, 2)
	assert.Equal(t, "custom%0D%0Adata: injected", frames[0].Event)
	assert.Equal(t, "2", frames[0].decode(t).Message)
	assert.Equal(t, "plugin_event", frames[1].Event)
}

// TestHeadersAndMethods checks the Content-Security-Policy, that no CORS
// header goes out unless an origin is allowed, and that the server is
// read-only.
func TestHeadersAndMethods(t *testing.T) {
	bus := newBus(t)
	plain := serve(t, newDashboard(t, bus))
	withCORS := serve(t, newDashboard(t, bus, dashboard.WithAllowedOrigins("https://ops.example")))

	get := func(ts string, method, path, origin string) *http.Response {
		req, err := http.NewRequest(method, ts+path, nil)
		require.NoError(t, err)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := (&http.Client{Timeout: waitFor}).Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	for _, path := range []string{"/", "/static/app.js", "/api/workflows", "/api/metrics"} {
		res := get(plain.URL, http.MethodGet, path, "https://ops.example")
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Equal(t, "default-src 'self'", res.Header.Get("Content-Security-Policy"), path)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), path)
		assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), path)
	}
	res := get(withCORS.URL, http.MethodGet, "/api/workflows", "https://ops.example")
	assert.Equal(t, "https://ops.example", res.Header.Get("Access-Control-Allow-Origin"))
	res = get(withCORS.URL, http.MethodGet, "/api/workflows", "https://evil.example")
	assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
	res = get(withCORS.URL, http.MethodOptions, "/events", "https://ops.example")
	assert.Equal(t, http.StatusNoContent, res.StatusCode)

	head := get(plain.URL, http.MethodHead, "/events", "")
	assert.Equal(t, http.StatusOK, head.StatusCode, "HEAD /events answers with the headers and ends")
	assert.Equal(t, "text/event-stream", head.Header.Get("Content-Type"))

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"/", "/events", "/api/workflows", "/api/metrics"} {
			assert.Equal(t, http.StatusMethodNotAllowed, get(plain.URL, method, path, "").StatusCode, method+" "+path)
		}
	}
}

// TestClientCap checks that past WithMaxClients a stream is refused with
// 503 and Retry-After, and counted.
func TestClientCap(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithMaxClients(2))
	ts := serve(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	openStream(t, ctx, ts, "/events", nil)
	openStream(t, ctx, ts, "/events", nil)

	res, err := ts.Client().Get(ts.URL + "/events")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.Positive(t, secs)
	st := d.Stats()
	assert.Equal(t, 2, st.Clients)
	assert.Equal(t, uint64(1), st.Rejected)
	require.NoError(t, d.Close())
}

// TestOptionsPanic checks that invalid option values panic in the With
// function, as programming errors.
func TestOptionsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"WithReplay":       func() { dashboard.WithReplay(-1) },
		"WithClientBuffer": func() { dashboard.WithClientBuffer(0) },
		"WithMaxClients":   func() { dashboard.WithMaxClients(0) },
		"WithMaxWorkflows": func() { dashboard.WithMaxWorkflows(0) },
		"WithIntakeBuffer": func() { dashboard.WithIntakeBuffer(0) },
		"WithHeartbeat":    func() { dashboard.WithHeartbeat(0) },
		"WithWriteTimeout": func() { dashboard.WithWriteTimeout(-time.Second) },
		"WithRetry":        func() { dashboard.WithRetry(0) },
		"WithSlowClients":  func() { dashboard.WithSlowClients(dashboard.SlowClientPolicy(9)) },
	} {
		assert.PanicsWithValue(t, "dashboard: "+name+panicTail[name], f, name)
	}
	_, err := dashboard.New(nil)
	assert.ErrorIs(t, err, dashboard.ErrNilBus)
	closed := eventbus.New()
	require.NoError(t, closed.Close())
	_, err = dashboard.New(closed)
	assert.ErrorIs(t, err, eventbus.ErrClosed)
}

var panicTail = map[string]string{
	"WithReplay":       ": negative count",
	"WithClientBuffer": ": buffer must be at least 1",
	"WithMaxClients":   ": cap must be at least 1",
	"WithMaxWorkflows": ": bound must be at least 1",
	"WithIntakeBuffer": ": buffer must be at least 1",
	"WithHeartbeat":    ": interval must be positive",
	"WithWriteTimeout": ": timeout must be positive",
	"WithRetry":        ": delay must be positive",
	"WithSlowClients":  ": unknown policy",
}
