package dashboard

// This file holds the replay ring: the newest events, numbered, shared by
// every stream. The pump appends; streams read under ring.mu's read lock
// and never copy an event, only pointers to its entry. An entry is
// immutable once appended, except for its JSON, which the first stream
// that needs it encodes, once.

import (
	"encoding/json"
	"sync"

	"github.com/adws/eventbus"
)

// An entryKind says what an entry of the ring stands for.
type entryKind uint8

const (
	// anEvent is one event of the bus.
	anEvent entryKind = iota
	// aLoss stands for events the intake dropped (entry.lost of them), so
	// that every stream learns of them in the right place.
	aLoss
)

// An entry is one position of the stream: an event, or a loss.
type entry struct {
	seq  uint64 // position in the stream, from 1; the SSE id
	kind entryKind
	lost uint64         // aLoss: how many events the intake dropped
	ev   eventbus.Event // anEvent

	once sync.Once
	data []byte // ev as JSON, encoded by the first stream that writes it
}

// json returns the event's JSON, encoding it on first use.
func (en *entry) json() []byte {
	en.once.Do(func() { en.data = encodeEvent(en.ev) })
	return en.data
}

// encodeEvent returns e as JSON. An event whose Data cannot be encoded
// (a channel or a func in it, say) goes out without Data, with the reason
// under data._error, rather than not at all.
func encodeEvent(e eventbus.Event) []byte {
	b, err := json.Marshal(e)
	if err == nil {
		return b
	}
	e.Data = map[string]any{"_error": "dashboard: event data not encodable as JSON: " + err.Error()}
	if b, err = json.Marshal(e); err == nil {
		return b
	}
	return []byte(`{}`)
}

// matches reports whether a stream with filter f writes en. A loss is
// written by every stream, as a gap.
func (en *entry) matches(f *eventbus.Filter) bool {
	return en.kind == aLoss || f.Matches(en.ev)
}

// weight is how many events en counts for in a gap when a stream skips it:
// the events the intake dropped, or 1 for an event the stream's filter
// selects.
func (en *entry) weight(f *eventbus.Filter) uint64 {
	if en.kind == aLoss {
		return en.lost
	}
	if f.Matches(en.ev) {
		return 1
	}
	return 0
}

// A ring holds the newest entries, by sequence number. Guarded by mu:
// buf, head and changed.
type ring struct {
	mu      sync.RWMutex
	buf     []*entry // entry seq lives at buf[seq%len(buf)]
	head    uint64   // seq of the newest entry; 0 before the first
	changed chan struct{}
}

func newRing(size int) *ring {
	return &ring{buf: make([]*entry, size), changed: make(chan struct{})}
}

// append stores es, numbered head+1, head+2, ... by the pump, and wakes
// every stream waiting for more. Only the pump calls it.
func (r *ring) append(es []*entry) {
	if len(es) == 0 {
		return
	}
	r.mu.Lock()
	for _, en := range es {
		r.head = en.seq
		r.buf[en.seq%uint64(len(r.buf))] = en
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// oldestLocked returns the seq of the oldest entry still held.
func (r *ring) oldestLocked() uint64 {
	if r.head < uint64(len(r.buf)) {
		return 1
	}
	return r.head - uint64(len(r.buf)) + 1
}

// at returns the entry seq; the caller holds mu and knows it is held.
func (r *ring) at(seq uint64) *entry { return r.buf[seq%uint64(len(r.buf))] }

// newest returns the seq of the newest entry and a channel closed when a
// later one arrives.
func (r *ring) newest() (uint64, <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.head, r.changed
}
