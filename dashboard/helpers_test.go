package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait of a test, so that a broken guarantee fails
// the test instead of hanging it.
const waitFor = 30 * time.Second

// newBus returns an inline bus (WithMaxWorkers(0)), closed at cleanup.
func newBus(t testing.TB) *eventbus.Bus {
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { require.NoError(t, bus.Close()) })
	return bus
}

// newDashboard returns a dashboard of bus, closed at cleanup.
func newDashboard(t testing.TB, bus *eventbus.Bus, opts ...dashboard.Option) *dashboard.Server {
	d, err := dashboard.New(bus, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// serve returns an httptest server for d. Its cleanup runs before d's, but
// d.Close ends the streams, so close d first where streams are open.
func serve(t testing.TB, d *dashboard.Server) *httptest.Server {
	ts := httptest.NewServer(d)
	t.Cleanup(ts.Close)
	return ts
}

// publish publishes events of workflow adw with the given types, and
// waits until d has recorded through seq.
func publish(t testing.TB, bus *eventbus.Bus, es ...eventbus.Event) {
	t.Helper()
	for _, e := range es {
		require.NoError(t, bus.Publish(context.Background(), e))
	}
}

// waitRecorded waits until d has recorded the event with sequence seq.
func waitRecorded(t testing.TB, d *dashboard.Server, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, dashboard.WaitRecorded(ctx, d, seq))
}

// A frame is one SSE message as a client parses it.
type frame struct {
	ID, Event, Data, Retry string
	Comment                string
}

// decode parses the frame's data as an Event.
func (f frame) decode(t testing.TB) eventbus.Event {
	t.Helper()
	var e eventbus.Event
	require.NoError(t, json.Unmarshal([]byte(f.Data), &e))
	return e
}

// A frameReader parses an SSE stream.
type frameReader struct{ r *bufio.Reader }

func newFrameReader(r io.Reader) *frameReader { return &frameReader{r: bufio.NewReader(r)} }

// next returns the next frame: the lines up to a blank line.
func (fr *frameReader) next() (frame, error) {
	var f frame
	for {
		line, err := fr.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return f, nil
		}
		if c, ok := strings.CutPrefix(line, ":"); ok {
			f.Comment = strings.TrimSpace(c)
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.ID = value
		case "event":
			f.Event = value
		case "data":
			f.Data = value
		case "retry":
			f.Retry = value
		}
	}
}

// all parses frames until EOF.
func (fr *frameReader) all(t testing.TB) []frame {
	t.Helper()
	var fs []frame
	for {
		f, err := fr.next()
		if err == io.EOF {
			return fs
		}
		require.NoError(t, err)
		fs = append(fs, f)
	}
}

// openStream opens GET path on ts and returns the response and a reader
// past the stream's first frame (the retry field), which the server writes
// once the stream is registered.
func openStream(t testing.TB, ctx context.Context, ts *httptest.Server, path string, header http.Header) (*http.Response, *frameReader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := ts.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	fr := newFrameReader(res.Body)
	first, err := fr.next()
	require.NoError(t, err)
	require.NotEmpty(t, first.Retry, "the stream starts with its retry field")
	return res, fr
}

// replay serves GET /events?<query> on d with a request whose context is
// already cancelled: the stream writes what the ring holds for it (a
// stream looks at its context only once it has nothing to write) and ends.
func replay(t testing.TB, d http.Handler, query string) (int, []frame) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/events?"+query, nil)
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec.Code, nil
	}
	fs := newFrameReader(rec.Body).all(t)
	require.NotEmpty(t, fs)
	require.NotEmpty(t, fs[0].Retry)
	return rec.Code, fs[1:]
}

// A gateWriter is a ResponseWriter whose every Write is handed to the test
// (on entered) and then waits for the test's word (on release), so a test
// can hold a stream inside a write, as a client that stopped reading does.
// A write deadline in the past (as Close sets) fails the write in progress
// and every later one.
type gateWriter struct {
	header    http.Header
	entered   chan []byte
	release   chan struct{}
	expired   chan struct{} // closed by a deadline in the past
	mu        sync.Mutex
	code      int
	isExpired bool
}

func newGateWriter() *gateWriter {
	return &gateWriter{header: http.Header{}, entered: make(chan []byte, 1), release: make(chan struct{}),
		expired: make(chan struct{})}
}

// SetWriteDeadline is what http.ResponseController calls.
func (w *gateWriter) SetWriteDeadline(d time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.isExpired && !d.After(time.Now()) {
		w.isExpired = true
		close(w.expired)
	}
	return nil
}

func (w *gateWriter) Header() http.Header { return w.header }

func (w *gateWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.code = code
}

func (w *gateWriter) Write(b []byte) (int, error) {
	select {
	case w.entered <- append([]byte(nil), b...):
	case <-w.expired:
		return 0, os.ErrDeadlineExceeded
	}
	select {
	case <-w.release:
		return len(b), nil
	case <-w.expired:
		return 0, os.ErrDeadlineExceeded
	}
}

func (w *gateWriter) Flush() {}

// pass lets the write the stream is in go through and returns its frames.
func (w *gateWriter) pass(t testing.TB) []frame {
	t.Helper()
	var b []byte
	select {
	case b = <-w.entered:
	case <-time.After(waitFor):
		t.Fatal("the stream wrote nothing")
	}
	w.release <- struct{}{}
	return newFrameReader(strings.NewReader(string(b))).all(t)
}

// ev returns an event of workflow adw.
func ev(adw string, typ eventbus.EventType, sev eventbus.Severity, msg string) eventbus.Event {
	return eventbus.Event{ADWID: adw, Type: typ, Severity: sev, Source: "test", Message: msg}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(t testing.TB, path string) *http.Request {
	t.Helper()
	return httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
}
