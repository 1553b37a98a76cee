package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCloseEndsStreams checks that Close ends open streams (their clients
// read to EOF), unsubscribes from the bus, is idempotent, and that a
// stream asked for afterwards gets 503. TestMain's goleak check then finds
// no goroutine of the dashboard left.
func TestCloseEndsStreams(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus)
	ts := serve(t, d)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	var readers sync.WaitGroup
	for range 3 {
		res, _ := openStream(t, ctx, ts, "/events", nil)
		readers.Go(func() {
			_, err := io.Copy(io.Discard, res.Body)
			assert.NoError(t, err, "the stream ends cleanly")
		})
	}
	require.Equal(t, 3, d.Stats().Clients)
	subscribers := bus.Metrics().Subscribers

	require.NoError(t, d.Close())
	readers.Wait()
	assert.Equal(t, 0, d.Stats().Clients)
	assert.Equal(t, subscribers-1, bus.Metrics().Subscribers, "unsubscribed")
	require.NoError(t, d.Close(), "a second Close")

	res, err := ts.Client().Get(ts.URL + "/events")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, err = ts.Client().Get(ts.URL + "/api/workflows")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "the API still answers")
}

// A bufWriter is a ResponseWriter that keeps what is written, safe to read
// while a stream writes.
type bufWriter struct {
	header http.Header
	mu     sync.Mutex
	b      strings.Builder
}

func (w *bufWriter) Header() http.Header { return w.header }
func (w *bufWriter) WriteHeader(int)     {}
func (w *bufWriter) Flush()              {}
func (w *bufWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}
func (w *bufWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// idleStream runs f with the output of an idle stream of a dashboard made
// with opts, all inside a synctest bubble; the stream and everything else
// stop when f returns.
func idleStream(t *testing.T, f func(w *bufWriter), opts ...dashboard.Option) {
	synctest.Test(t, func(t *testing.T) {
		bus := eventbus.New(eventbus.WithMaxWorkers(0))
		defer bus.Close()
		d, err := dashboard.New(bus, opts...)
		require.NoError(t, err)
		defer d.Close()
		ctx, cancel := context.WithCancel(t.Context())
		w := &bufWriter{header: http.Header{}}
		var served sync.WaitGroup
		served.Go(func() { d.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/events", nil)) })
		f(w)
		cancel()
		served.Wait()
	})
}

// TestHeartbeat checks, on synctest's fake clock, that an idle stream gets
// a comment every WithHeartbeat interval and nothing before it.
func TestHeartbeat(t *testing.T) {
	idleStream(t, func(w *bufWriter) {
		time.Sleep(15*time.Second - time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, 0, strings.Count(w.String(), ": heartbeat\n\n"), "none before 15 s")
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, 1, strings.Count(w.String(), ": heartbeat\n\n"), "one at 15 s")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		assert.Equal(t, 3, strings.Count(w.String(), ": heartbeat\n\n"), "one every 15 s")
	}, dashboard.WithHeartbeat(15*time.Second))
}

// TestDefaultHeartbeat checks the default: 15 s.
func TestDefaultHeartbeat(t *testing.T) {
	idleStream(t, func(w *bufWriter) {
		time.Sleep(15*time.Second - time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, 0, strings.Count(w.String(), ": heartbeat\n\n"))
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, 1, strings.Count(w.String(), ": heartbeat\n\n"))
	})
}
