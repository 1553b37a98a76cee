package dashboard

// This file holds the replay ring: the newest events, numbered, shared by
// every stream. The ring's slots are allocated once and overwritten in
// place, so recording an event allocates nothing. The pump writes slots
// under ring.mu's write lock; streams copy the entries they need out under
// its read lock. A slot's JSON is encoded by the first stream that needs
// it, outside the lock, and stored back (atomically, under the read lock)
// only if the slot still holds the same event.

import (
	"encoding/json"
	"sync"
	"sync/atomic"

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

// An entry is one position of the stream, an event or a loss, as a stream
// copies it out of the ring.
type entry struct {
	seq  uint64 // position in the stream, from 1; the SSE id
	kind entryKind
	lost uint64         // aLoss: how many events the intake dropped
	ev   eventbus.Event // anEvent
	data []byte         // ev as JSON, if a stream has encoded it already
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

// A slot is one place of the ring.
type slot struct {
	entry                        // written by the pump under the write lock
	json  atomic.Pointer[[]byte] // entry.ev's JSON once a stream encoded it
}

// A ring holds the newest entries, by sequence number. Guarded by mu:
// slots (except their json, which is atomic), head and changed.
type ring struct {
	mu      sync.RWMutex
	slots   []slot // entry seq lives at slots[seq%len(slots)]
	head    uint64 // seq of the newest entry; 0 before the first
	changed chan struct{}
}

func newRing(size int) *ring {
	return &ring{slots: make([]slot, size), changed: make(chan struct{})}
}

// append stores the events of batch as entries head+1, head+2, ..., then,
// if lost > 0, one entry for the events the intake dropped after them, and
// wakes every stream waiting for more. Only the pump calls it. It returns
// the new head.
func (r *ring) append(batch []eventbus.Event, lost uint64) uint64 {
	if len(batch) == 0 && lost == 0 {
		return r.newestSeq()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range batch {
		r.head++
		sl := r.at(r.head)
		sl.entry = entry{seq: r.head, kind: anEvent, ev: batch[i]}
		sl.json.Store(nil)
	}
	if lost > 0 {
		r.head++
		sl := r.at(r.head)
		sl.entry = entry{seq: r.head, kind: aLoss, lost: lost}
		sl.json.Store(nil)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return r.head
}

// oldestLocked returns the seq of the oldest entry still held.
func (r *ring) oldestLocked() uint64 {
	if r.head < uint64(len(r.slots)) {
		return 1
	}
	return r.head - uint64(len(r.slots)) + 1
}

// at returns the slot of seq; the caller holds mu.
func (r *ring) at(seq uint64) *slot { return &r.slots[seq%uint64(len(r.slots))] }

// copyLocked returns the entry seq with its JSON, if encoded already; the
// caller holds mu and knows the ring holds seq.
func (r *ring) copyLocked(seq uint64) entry {
	sl := r.at(seq)
	en := sl.entry
	if b := sl.json.Load(); b != nil {
		en.data = *b
	}
	return en
}

// json returns en's JSON, encoding it if no stream has yet and storing it
// for the others while the ring still holds en.
func (r *ring) json(en *entry) []byte {
	if en.data != nil {
		return en.data
	}
	b := encodeEvent(en.ev)
	r.mu.RLock()
	if sl := r.at(en.seq); sl.seq == en.seq {
		sl.json.CompareAndSwap(nil, &b)
	}
	r.mu.RUnlock()
	en.data = b
	return b
}

// newest returns the seq of the newest entry and a channel closed when a
// later one arrives.
func (r *ring) newest() (uint64, <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.head, r.changed
}

func (r *ring) newestSeq() uint64 {
	head, _ := r.newest()
	return head
}
