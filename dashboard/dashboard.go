package dashboard

// This file holds the Server: New, Close, the pump goroutine and admission
// of event streams. Server.mu guards the set of open streams and closed;
// the pump alone writes the intake's taken batches, the workflow table and
// the ring (each under its own lock, for readers).

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adws/eventbus"
)

// ErrNilBus is returned by New when given a nil bus.
var ErrNilBus = errors.New("dashboard: nil bus")

// A Server is the live dashboard of one eventbus.Bus: an http.Handler that
// serves the page, the event stream and the JSON API (see the package
// documentation). It is safe for concurrent use. Create it with New and
// stop it with Close; the zero Server is not usable.
type Server struct {
	// Set by New, then only read.
	bus     *eventbus.Bus
	sub     eventbus.SubscriptionID
	cfg     config
	handler http.Handler

	// Shared with the pump; each guards itself.
	in    *intake
	ring  *ring
	flows *workflowTable

	// Atomic counters.
	stats    counters
	recorded atomic.Uint64 // events the pump recorded

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	pump      sync.WaitGroup // the pump goroutine

	mu      sync.Mutex // guards streams and closed
	streams map[*stream]struct{}
	closed  bool
	active  sync.WaitGroup // streams being served; Add under mu while !closed
}

// New subscribes a dashboard to bus and returns it. The subscription is a
// sync handler named "dashboard" that only copies each event into a
// bounded buffer (see WithIntakeBuffer); one goroutine of the Server takes
// them from there. New returns ErrNilBus for a nil bus, and the bus's
// error (eventbus.ErrClosed) if it cannot subscribe. Nil options are
// ignored; invalid option values panic in the With function.
func New(bus *eventbus.Bus, opts ...Option) (*Server, error) {
	if bus == nil {
		return nil, ErrNilBus
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	s := &Server{
		bus:     bus,
		cfg:     cfg,
		in:      newIntake(cfg.intake),
		ring:    newRing(cfg.replay + cfg.clientBuffer),
		flows:   newWorkflowTable(cfg.maxWorkflows),
		done:    make(chan struct{}),
		streams: make(map[*stream]struct{}),
	}
	s.handler = s.routes()
	sub, err := bus.Subscribe(s.in.handle, eventbus.WithName("dashboard"))
	if err != nil {
		return nil, err
	}
	s.sub = sub
	s.pump.Go(s.runPump)
	return s, nil
}

// ServeHTTP serves the dashboard. Requests other than GET and HEAD are
// answered 405 Method Not Allowed (and OPTIONS, when WithAllowedOrigins is
// set, 204 for an allowed origin).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Close unsubscribes the dashboard from the bus, ends every event stream
// (a write in progress fails at once) and returns once the Server's
// goroutine and every stream's handler have returned. Requests after Close
// get 503 on GET /events; the page and the API keep answering with what
// the Server had. A second call returns nil. Close does not close the bus.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.bus.Unsubscribe(s.sub)
		s.mu.Lock()
		s.closed = true
		close(s.done)
		for st := range s.streams {
			st.abort()
		}
		s.mu.Unlock()
		s.pump.Wait()
		s.active.Wait()
	})
	return nil
}

// batchWindow is how long the pump lets events gather after the first
// one wakes it. It bounds how often the pump wakes (and so how often a
// publisher pays for waking it) to once per window, at the cost of up to
// that much latency.
const batchWindow = time.Millisecond

// runPump numbers the events the bus handed over, records them in the
// workflow table and then appends them to the ring, until Close. The table
// is updated first, so a client that reads it and then resumes the stream
// after its Through sees every later event exactly once.
func (s *Server) runPump() {
	prev := make([]eventbus.Event, 0, s.cfg.intake)
	window := time.NewTimer(batchWindow)
	defer window.Stop()
	for {
		select {
		case <-s.in.wake:
		case <-s.done:
			return
		}
		window.Reset(batchWindow)
		select {
		case <-window.C:
		case <-s.done:
			return
		}
		batch, lost := s.in.take(prev)
		through := s.ring.newestSeq() + uint64(len(batch))
		if lost > 0 {
			through++
		}
		s.flows.observe(batch, through)
		s.recorded.Add(uint64(len(batch)))
		s.ring.append(batch, lost)
		prev = batch
	}
}

// serveEvents serves GET /events.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseStreamQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	st := &stream{s: s, w: w, rc: http.NewResponseController(w), names: q.names,
		cur: cursor{backlog: uint64(s.cfg.clientBuffer), filter: q.filter}}
	if code := s.admit(st); code != 0 {
		w.Header().Set("Retry-After", retryAfter)
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer s.release(st)
	if q.resume.set {
		s.stats.resumes.Add(1)
	}
	st.cur.start(s.ring, q.resume, uint64(s.cfg.replay))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return // the headers are the whole answer
	}
	_ = st.run(s.done, r.Context().Done())
}

var retryAfter = strconv.Itoa(retryAfterSeconds)

// admit registers st, or returns 503 when the server is closed or has
// WithMaxClients streams open.
func (s *Server) admit(st *stream) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.streams) >= s.cfg.maxClients {
		s.stats.rejected.Add(1)
		return http.StatusServiceUnavailable
	}
	s.streams[st] = struct{}{}
	s.active.Add(1)
	s.stats.connections.Add(1)
	return 0
}

func (s *Server) release(st *stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.active.Done()
}

// counters are the Server's own, behind Stats.
type counters struct {
	connections     atomic.Uint64
	rejected        atomic.Uint64
	resumes         atomic.Uint64
	gaps            atomic.Uint64
	missed          atomic.Uint64
	slowClients     atomic.Uint64
	slowDisconnects atomic.Uint64
	writeErrors     atomic.Uint64
}
