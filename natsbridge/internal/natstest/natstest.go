// Package natstest runs NATS servers for the tests and benchmarks of
// natsbridge: the server embedded in the test process (nats-server v2 as a
// Go module, the version pinned in natsbridge's go.mod) or a standalone
// nats-server binary, such as Debian's 2.9 package, in a child process.
// Either listens on 127.0.0.1 only, on a port of its own, with JetStream
// storage in a temporary directory, and is stopped when the test ends.
package natstest

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Wait bounds every wait of this package: a server's start, its shutdown,
// a client's reconnect. A passing test never waits for it.
const Wait = 30 * time.Second

// A Kind is a way to run the server.
type Kind int

const (
	// Embedded runs nats-server in the test process.
	Embedded Kind = iota
	// Standalone runs a nats-server binary in a child process: the one
	// named by $NATS_SERVER_BIN, or else nats-server on $PATH or in
	// /usr/sbin (where Debian's package puts it).
	Standalone
)

// Kinds lists every Kind, embedded first.
var Kinds = []Kind{Embedded, Standalone}

func (k Kind) String() string {
	if k == Standalone {
		return "standalone"
	}
	return "embedded"
}

// A Server is one NATS server with JetStream for one test. It is safe for
// concurrent use.
type Server struct {
	tb   testing.TB
	kind Kind
	dir  string // JetStream storage, kept across restarts

	mu      sync.Mutex
	port    int          // chosen by the first start, reused by restarts
	run     running      // nil while stopped
	conns   []*nats.Conn // made by Connect
	pending []reconnect  // set by Stop, awaited by Restart
}

// running is a started server, of either kind.
type running interface {
	port() int
	stop() error
}

// A reconnect is a connection that Restart waits for.
type reconnect struct {
	nc *nats.Conn
	ch chan nats.Status // CONNECTED or CLOSED
}

// Start starts a server of the given kind, which the test stops when it
// ends. A Standalone server whose binary cannot be found skips the test,
// saying how to get one.
func Start(tb testing.TB, kind Kind) *Server {
	tb.Helper()
	s := &Server{tb: tb, kind: kind, dir: tb.TempDir()}
	if kind == Standalone {
		if _, err := Binary(); err != nil {
			Unavailable(tb, "no standalone nats-server: %v (apt-get install nats-server, or set NATS_SERVER_BIN)", err)
		}
	}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// Kind returns how the server runs.
func (s *Server) Kind() Kind { return s.kind }

// URL returns the address clients connect to.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

func (s *Server) start() {
	s.tb.Helper()
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	var r running
	var err error
	if s.kind == Standalone {
		r, err = startProcess(s.tb, port, s.dir)
	} else {
		r, err = startEmbedded(port, s.dir)
	}
	if err != nil {
		s.tb.Fatalf("start %s nats-server: %v", s.kind, err)
	}
	s.mu.Lock()
	s.run, s.port = r, r.port()
	s.mu.Unlock()
}

// Stop shuts the server down and waits until it is gone. The connections
// made by Connect notice on their own time and start reconnecting; Restart
// waits until they have. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	r := s.run
	s.run = nil
	if r != nil {
		for _, nc := range s.conns {
			if !nc.IsClosed() {
				s.pending = append(s.pending, reconnect{nc, nc.StatusChanged(nats.CONNECTED, nats.CLOSED)})
			}
		}
	}
	s.mu.Unlock()
	if r == nil {
		return
	}
	if err := r.stop(); err != nil {
		s.tb.Errorf("stop %s nats-server: %v", s.kind, err)
	}
}

// Restart starts the server again, on the same port with the same storage,
// and returns once every connection that Connect made and that was open at
// Stop has reconnected (or was closed): not merely once IsConnected is
// true, which a client that has not yet noticed the old server is gone also
// reports.
func (s *Server) Restart() {
	s.tb.Helper()
	s.start()
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, p := range pending {
		select {
		case <-p.ch:
		case <-time.After(Wait):
			s.tb.Fatalf("connection %q did not reconnect within %v", p.nc.Opts.Name, Wait)
		}
		p.nc.RemoveStatusListener(p.ch)
	}
}

// Connect opens a client connection, closed when the test ends, with
// reconnect settings for a server that restarts on a loaded machine: it
// never gives up, tries again every 50ms, and gives each attempt 10s to
// complete the handshake. Write errors while a test stops the server are
// expected and not reported.
func (s *Server) Connect(name string) *nats.Conn {
	s.tb.Helper()
	nc, err := nats.Connect(s.URL(),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectJitter(10*time.Millisecond, 0),
		nats.Timeout(10*time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	)
	if err != nil {
		s.tb.Fatalf("connect to %s nats-server: %v", s.kind, err)
	}
	s.tb.Cleanup(nc.Close)
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
	return nc
}

// Unavailable skips the test because something it needs is missing, saying
// what and how to get it; with $NATSBRIDGE_NO_SKIP set, as CI sets it, it
// fails the test instead, so that nothing is skipped unnoticed.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("NATSBRIDGE_NO_SKIP") != "" {
		tb.Fatalf(format+" ($NATSBRIDGE_NO_SKIP is set)", args...)
	}
	tb.Skipf(format, args...)
}
