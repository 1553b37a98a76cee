package dashboard

// This file holds the options of New and their defaults.

import (
	"strconv"
	"time"
)

// Defaults of the options below.
const (
	defaultReplay       = 10000
	defaultClientBuffer = 1024
	defaultMaxClients   = 256
	defaultMaxWorkflows = 10000
	defaultIntake       = 16384
	defaultHeartbeat    = 15 * time.Second
	defaultWriteTimeout = 10 * time.Second
	defaultRetry        = 2 * time.Second
	retryAfterSeconds   = 5 // the Retry-After of a 503 past WithMaxClients
)

type config struct {
	replay       int
	clientBuffer int
	maxClients   int
	maxWorkflows int
	intake       int
	heartbeat    time.Duration
	writeTimeout time.Duration
	retry        time.Duration
	slow         SlowClientPolicy
	origins      []string
}

func defaultConfig() config {
	return config{
		replay:       defaultReplay,
		clientBuffer: defaultClientBuffer,
		maxClients:   defaultMaxClients,
		maxWorkflows: defaultMaxWorkflows,
		intake:       defaultIntake,
		heartbeat:    defaultHeartbeat,
		writeTimeout: defaultWriteTimeout,
		retry:        defaultRetry,
	}
}

// An Option configures a Server created by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithReplay sets how many of the newest events the server keeps for
// clients that reconnect with Last-Event-ID (default 10,000). Zero keeps
// none: a client that reconnects gets a gap event for what it missed. It
// panics if n < 0.
func WithReplay(n int) Option {
	if n < 0 {
		panic("dashboard: WithReplay: negative count")
	}
	return optionFunc(func(c *config) { c.replay = n })
}

// WithClientBuffer sets how many events published since a client connected
// it may have waiting, not yet written to it, before it counts as slow
// (default 1,024). A slow client gets a gap event and goes on with live
// events, or is disconnected under DisconnectSlowClients. It bounds a
// distance in the ring that all streams share, not a queue: waiting events
// are not copied per client. It panics if n < 1.
func WithClientBuffer(n int) Option {
	if n < 1 {
		panic("dashboard: WithClientBuffer: buffer must be at least 1")
	}
	return optionFunc(func(c *config) { c.clientBuffer = n })
}

// WithMaxClients caps the number of event streams open at once (default
// 256). Past the cap, GET /events is answered 503 Service Unavailable with
// a Retry-After header. It panics if n < 1.
func WithMaxClients(n int) Option {
	if n < 1 {
		panic("dashboard: WithMaxClients: cap must be at least 1")
	}
	return optionFunc(func(c *config) { c.maxClients = n })
}

// WithMaxWorkflows bounds how many workflows GET /api/workflows tracks
// (default 10,000). When a new workflow arrives at the bound, the workflow
// that finished longest ago is forgotten; if none has finished, the one
// whose last event is oldest. It panics if n < 1.
func WithMaxWorkflows(n int) Option {
	if n < 1 {
		panic("dashboard: WithMaxWorkflows: bound must be at least 1")
	}
	return optionFunc(func(c *config) { c.maxWorkflows = n })
}

// WithIntakeBuffer bounds how many events may wait between the bus's
// handler and the server's own goroutine (default 16,384). The handler
// never waits: when the buffer is full it drops the event, counts it in
// Stats.IntakeDropped, and clients get a gap event in its place. It panics
// if n < 1.
func WithIntakeBuffer(n int) Option {
	if n < 1 {
		panic("dashboard: WithIntakeBuffer: buffer must be at least 1")
	}
	return optionFunc(func(c *config) { c.intake = n })
}

// WithHeartbeat sets how often an idle event stream gets a comment line, so
// that proxies keep it open and a dead connection is noticed (default 15 s).
// It panics if d <= 0.
func WithHeartbeat(d time.Duration) Option {
	if d <= 0 {
		panic("dashboard: WithHeartbeat: interval must be positive")
	}
	return optionFunc(func(c *config) { c.heartbeat = d })
}

// WithWriteTimeout sets the write deadline of each flush to an event stream
// (default 10 s), set through http.ResponseController. A client that has
// not taken a flush by then is disconnected. It panics if d <= 0.
func WithWriteTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("dashboard: WithWriteTimeout: timeout must be positive")
	}
	return optionFunc(func(c *config) { c.writeTimeout = d })
}

// WithRetry sets the reconnection delay the server asks clients for, with
// the SSE retry field at the start of each stream (default 2 s). It panics
// if d <= 0.
func WithRetry(d time.Duration) Option {
	if d <= 0 {
		panic("dashboard: WithRetry: delay must be positive")
	}
	return optionFunc(func(c *config) { c.retry = d })
}

// A SlowClientPolicy says what the server does with a client that falls
// more than WithClientBuffer events behind.
type SlowClientPolicy uint8

const (
	// GapSlowClients skips the client to the newest event and sends it a gap
	// event with the number of events it missed. It is the default.
	GapSlowClients SlowClientPolicy = iota
	// DisconnectSlowClients ends the client's stream instead. A browser's
	// EventSource reconnects with Last-Event-ID, and the replay buffer may
	// still hold what it missed.
	DisconnectSlowClients
)

// String returns "gap" or "disconnect", and "SlowClientPolicy(n)" for an
// undefined value.
func (p SlowClientPolicy) String() string {
	switch p {
	case GapSlowClients:
		return "gap"
	case DisconnectSlowClients:
		return "disconnect"
	}
	return "SlowClientPolicy(" + strconv.Itoa(int(p)) + ")"
}

// WithSlowClients sets what happens to a client that falls behind (default
// GapSlowClients). It panics for an undefined policy.
func WithSlowClients(p SlowClientPolicy) Option {
	if p != GapSlowClients && p != DisconnectSlowClients {
		panic("dashboard: WithSlowClients: unknown policy")
	}
	return optionFunc(func(c *config) { c.slow = p })
}

// WithAllowedOrigins lets pages from these origins (for example
// "https://ops.example.com") read the server's responses: a request whose
// Origin header is in the list gets Access-Control-Allow-Origin with that
// origin. "*" allows any origin. Without this option no CORS header is
// sent, so browsers allow only same-origin pages.
func WithAllowedOrigins(origins ...string) Option {
	return optionFunc(func(c *config) { c.origins = append(c.origins, origins...) })
}
