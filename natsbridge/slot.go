package natsbridge

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ackBatch is how many acknowledgements an import goroutine collects
// before it sends them together.
const ackBatch = 64

// A slot holds what one JetStream import goroutine has fetched and not yet
// settled, guarded by mu: the messages to import, oldest first, which the
// keeper tells the server are in progress, and the messages imported
// whose acknowledgement the goroutine has not yet sent. It belongs to the
// goroutine's index: a goroutine that replaces one ended by runtime.Goexit
// goes on with what it held.
//
// Acknowledgements go out in batches: when ackBatch have gathered, when
// the goroutine has nothing left to import (before it fetches, which may
// wait), at the keeper's next tick (within AckWait/3, so before the server
// would deliver the message again), and when the import stops. Sending one
// only after the bus's handlers succeeded is what at-least-once needs;
// sending it a little later costs at most a duplicate, if the process dies
// in between.
type slot struct {
	mu   sync.Mutex
	msgs []jetstream.Msg // fetched, not yet settled
	acks []jetstream.Msg // imported, acknowledgement not yet sent

	sizer fetchSizer // the goroutine's own, no lock
}

// A fetchSizer sizes an import goroutine's fetches by how fast it imported
// its last batch: as many messages as it would import in about batchWork,
// at least 1 and at most fetchBatch, starting at firstFetch. Fast
// handlers get large batches, and few round trips to the server; with
// slow ones, a goroutine holds little more than it is working on, so the
// members of a queue group share the messages rather than one holding a
// long backlog (kept in progress, but waiting). The zero fetchSizer is
// ready to use.
type fetchSizer struct {
	size  int       // the next fetch's; 0 before the first
	start time.Time // when the goroutine took the last batch
	n     int       // its size; 0 once sized from
}

// fetched notes a batch of n messages, which the goroutine imports next.
func (f *fetchSizer) fetched(n int) {
	f.n, f.start = n, time.Now()
}

// next returns how many messages to fetch, once the last batch is imported.
func (f *fetchSizer) next() int {
	switch {
	case f.size == 0:
		f.size = firstFetch
	case f.n > 0:
		f.size = batchFor(f.n, time.Since(f.start))
		f.n = 0
	}
	return f.size
}

// batchFor returns the size of the next fetch when the last one, of n
// messages, took d to import.
func batchFor(n int, d time.Duration) int {
	each := d / time.Duration(n)
	if each <= 0 {
		return fetchBatch
	}
	return int(min(max(batchWork/each, 1), fetchBatch))
}

func (s *slot) add(ms []jetstream.Msg) {
	s.mu.Lock()
	s.msgs = append(s.msgs, ms...)
	s.mu.Unlock()
}

// first returns the oldest message, or nil.
func (s *slot) first() jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		return nil
	}
	return s.msgs[0]
}

// settled drops the oldest message, which the goroutine has settled or
// queued for acknowledgement.
func (s *slot) settled() {
	s.mu.Lock()
	s.msgs[0] = nil
	s.msgs = s.msgs[1:]
	s.mu.Unlock()
}

// queueAck keeps m, imported, for the next batch of acknowledgements.
func (s *slot) queueAck(m jetstream.Msg) {
	s.mu.Lock()
	s.acks = append(s.acks, m)
	s.mu.Unlock()
}

// acksDue reports whether the acknowledgements gathered should go now: a
// batch is full, or nothing is left to import.
func (s *slot) acksDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks) >= ackBatch || len(s.acks) > 0 && len(s.msgs) == 0
}

// takeAcks empties the acknowledgements gathered and returns them.
func (s *slot) takeAcks() []jetstream.Msg { return s.take(&s.acks) }

// takeAll empties the messages to import and returns them.
func (s *slot) takeAll() []jetstream.Msg { return s.take(&s.msgs) }

func (s *slot) take(list *[]jetstream.Msg) []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := *list
	*list = nil
	return ms
}

// touch resets the server's AckWait timer of every message to import.
func (s *slot) touch() {
	s.mu.Lock()
	for _, m := range s.msgs {
		_ = m.InProgress() // a lost one is covered by the next
	}
	s.mu.Unlock()
}
