package dashboard

// This file holds GET /events: one stream per client, written by the
// request's own goroutine, which waits on the ring, the heartbeat ticker,
// the request's context and the server's Close. stream.mu guards aborted
// and every change of the stream's write deadline.

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adws/eventbus"
)

// maxBatch is how many entries a stream takes from the ring, writes and
// flushes at a time.
const maxBatch = 256

// errStreamEnded ends a stream that Close aborted or that fell behind under
// DisconnectSlowClients.
var errStreamEnded = errors.New("dashboard: stream ended")

// eventNames says what a stream puts in each event's "event:" field.
type eventNames uint8

const (
	// namedByType sends the event type (the default, names=type).
	namedByType eventNames = iota
	// unnamed leaves the field out, so a browser dispatches every bus
	// event as "message" (names=message); gap events keep their name.
	unnamed
)

// A stream is one client's GET /events.
type stream struct {
	s     *Server
	w     http.ResponseWriter
	rc    *http.ResponseController
	names eventNames
	cur   cursor
	buf   []byte // the frames of one flush, reused

	mu      sync.Mutex // guards aborted, writing and the write deadline
	aborted bool       // Close was called: write no more
	writing bool       // a write or flush is in progress
}

// run writes the stream until the client goes away, a write fails, Close
// is called or, under DisconnectSlowClients, the client falls behind.
func (st *stream) run(done <-chan struct{}, ctxDone <-chan struct{}) error {
	if err := st.write([]byte("retry: " + strconv.FormatInt(st.s.cfg.retry.Milliseconds(), 10) + "\n\n")); err != nil {
		return err
	}
	heartbeat := time.NewTicker(st.s.cfg.heartbeat)
	defer heartbeat.Stop()
	dst := make([]entry, 0, maxBatch)
	for {
		got := st.cur.read(st.s.ring, dst[:0])
		if got.slow {
			st.s.stats.slowClients.Add(1)
			if st.s.cfg.slow == DisconnectSlowClients {
				st.s.stats.slowDisconnects.Add(1)
				return errStreamEnded
			}
		}
		if len(got.entries) > 0 || st.cur.missed > 0 {
			err := st.writeEntries(got.entries)
			clear(got.entries)
			if err != nil {
				return err
			}
			continue
		}
		select {
		case <-got.wait:
		case <-heartbeat.C:
			if err := st.write([]byte(": heartbeat\n\n")); err != nil {
				return err
			}
		case <-ctxDone:
			return nil
		case <-done:
			return errStreamEnded
		}
	}
}

// writeEntries writes the events of es that the stream's filter selects,
// each after a gap event for what was skipped before it, and a gap event at
// the end for what is still unreported.
func (st *stream) writeEntries(es []entry) error {
	b := st.buf[:0]
	for i := range es {
		en := &es[i]
		if en.kind == aLoss {
			st.cur.missed += en.lost
			continue
		}
		if !st.cur.filter.Matches(en.ev) {
			continue
		}
		b = st.appendGap(b)
		b = appendEvent(b, en, st.s.ring.json(en), st.names)
	}
	b = st.appendGap(b)
	st.buf = b[:0]
	if len(b) == 0 {
		return nil
	}
	return st.write(b)
}

// appendGap appends a gap event for the events skipped so far, if any.
func (st *stream) appendGap(b []byte) []byte {
	if st.cur.missed == 0 {
		return b
	}
	st.s.stats.gaps.Add(1)
	st.s.stats.missed.Add(st.cur.missed)
	b = append(b, "event: gap\ndata: {\"missed\":"...)
	b = strconv.AppendUint(b, st.cur.missed, 10)
	st.cur.missed = 0
	return append(b, "}\n\n"...)
}

// appendEvent appends en as an SSE event: its seq as id, its type as
// event name (unless names is unnamed), its JSON as data.
func appendEvent(b []byte, en *entry, data []byte, names eventNames) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, en.seq, 10)
	if names == namedByType {
		b = append(b, "\nevent: "...)
		b = append(b, eventName(en.ev.Type)...)
	}
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// eventName returns t for the event field, with CR and LF, which would end
// the field, written as %0D and %0A. An empty type cannot reach the bus.
func eventName(t eventbus.EventType) string {
	if !strings.ContainsRune(string(t), '\r') && !strings.ContainsRune(string(t), '\n') {
		return string(t)
	}
	return strings.NewReplacer("\r", "%0D", "\n", "%0A").Replace(string(t))
}

// write writes b and flushes it, within the write deadline.
func (st *stream) write(b []byte) error {
	st.mu.Lock()
	if st.aborted {
		st.mu.Unlock()
		return errStreamEnded
	}
	st.writing = true
	err := st.rc.SetWriteDeadline(time.Now().Add(st.s.cfg.writeTimeout))
	st.mu.Unlock()
	defer st.wrote()
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err = st.w.Write(b); err == nil {
		err = st.rc.Flush()
	}
	if err != nil {
		st.s.stats.writeErrors.Add(1)
	}
	return err
}

// wrote ends a write. If Close moved the deadline to stop it, and the
// write made it anyway, the deadline moves back, so that the response can
// still end cleanly.
func (st *stream) wrote() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.writing = false
	if st.aborted {
		_ = st.rc.SetWriteDeadline(time.Now().Add(st.s.cfg.writeTimeout))
	}
}

// abort stops the stream's writes. A write in progress fails at once: Close
// calls abort, and a client that stopped reading must not hold it up for
// the write timeout. An idle stream instead ends cleanly, when it sees the
// server's done channel closed.
func (st *stream) abort() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.aborted = true
	if st.writing {
		_ = st.rc.SetWriteDeadline(time.Now())
	}
}
