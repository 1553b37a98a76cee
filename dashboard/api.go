package dashboard

// This file holds the JSON API (GET /api/workflows, GET /api/metrics), the
// Server's Stats, and the routes with the headers every response gets.

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"

	"github.com/adws/eventbus"
)

// Stats is a snapshot of a Server's counters, taken by [Server.Stats].
type Stats struct {
	// Events counts the events recorded in the stream and the workflow
	// table. LastID is the sequence number (SSE id) of the newest position
	// of the stream: an event, or a run of dropped events, which takes one
	// number.
	Events uint64 `json:"events"`
	LastID uint64 `json:"last_id"`
	// IntakeDropped counts events the bus handed over while the intake
	// buffer was full; they reach no client and no workflow.
	IntakeDropped uint64 `json:"intake_dropped"`
	// Clients is the number of event streams open now.
	Clients int `json:"clients"`
	// Connections counts event streams ever opened; Rejected the requests
	// refused with 503 (past WithMaxClients, or after Close).
	Connections uint64 `json:"connections"`
	Rejected    uint64 `json:"rejected"`
	// Resumes counts streams opened with a Last-Event-ID.
	Resumes uint64 `json:"resumes"`
	// Gaps counts gap events sent; Missed the events they reported.
	Gaps   uint64 `json:"gaps"`
	Missed uint64 `json:"missed"`
	// SlowClients counts the times a client fell more than WithClientBuffer
	// events behind; SlowDisconnects those of them ended under
	// DisconnectSlowClients.
	SlowClients     uint64 `json:"slow_clients"`
	SlowDisconnects uint64 `json:"slow_disconnects"`
	// WriteErrors counts writes or flushes to a stream that failed: the
	// client went away, or missed the write deadline.
	WriteErrors uint64 `json:"write_errors"`
	// Workflows is the number of workflows tracked; EvictedWorkflows counts
	// those forgotten to stay within WithMaxWorkflows.
	Workflows        int    `json:"workflows"`
	EvictedWorkflows uint64 `json:"evicted_workflows"`
}

// Stats returns the Server's counters. It is safe to call at any time,
// also after Close.
func (s *Server) Stats() Stats {
	head, _ := s.ring.newest()
	s.mu.Lock()
	clients := len(s.streams)
	s.mu.Unlock()
	flows, evicted := s.flows.counts()
	c := &s.stats
	return Stats{
		Events: s.recorded.Load(), LastID: head, IntakeDropped: s.in.dropped.Load(), Clients: clients,
		Connections: c.connections.Load(), Rejected: c.rejected.Load(), Resumes: c.resumes.Load(),
		Gaps: c.gaps.Load(), Missed: c.missed.Load(),
		SlowClients: c.slowClients.Load(), SlowDisconnects: c.slowDisconnects.Load(),
		WriteErrors: c.writeErrors.Load(), Workflows: flows, EvictedWorkflows: evicted,
	}
}

// metricsView is the JSON of GET /api/metrics. The bus's types have no JSON
// tags, so their fields keep their Go names; durations are nanoseconds.
type metricsView struct {
	Bus           eventbus.Metrics            `json:"bus"`
	Subscriptions []eventbus.SubscriptionInfo `json:"subscriptions"`
	Dashboard     Stats                       `json:"dashboard"`
}

func (s *Server) serveWorkflows(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.flows.snapshot())
}

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, metricsView{Bus: s.bus.Metrics(), Subscriptions: s.bus.Subscriptions(), Dashboard: s.Stats()})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

//go:embed static
var staticFiles embed.FS

// csp is the Content-Security-Policy of every response: the page loads its
// script, style and icon from the server and nothing else, runs no inline
// script or style, and may only connect back to the server.
const csp = "default-src 'self'"

// routes returns the Server's handler: the mux, behind the headers that
// every response gets.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /api/workflows", s.serveWorkflows)
	mux.HandleFunc("GET /api/metrics", s.serveMetrics)
	mux.Handle("GET /static/", http.FileServerFS(staticFiles))
	page, err := fs.ReadFile(staticFiles, "static/index.html")
	if err != nil {
		panic("dashboard: the embedded page is missing: " + err.Error())
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
	return s.secure(mux)
}

// secure sets the security headers, and CORS headers for allowed origins,
// on every response of next.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if origin := r.Header.Get("Origin"); origin != "" && s.allowed(origin) {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD")
				h.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowed reports whether WithAllowedOrigins lets origin read responses.
func (s *Server) allowed(origin string) bool {
	return slices.Contains(s.cfg.origins, origin) || slices.Contains(s.cfg.origins, "*")
}
