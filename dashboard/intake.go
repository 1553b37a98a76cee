package dashboard

// This file holds the intake: the bus handler, which only appends the event
// to a bounded buffer and wakes the server's goroutine, and that goroutine
// (the pump), which numbers the events, records them in the workflow table
// and the replay ring, and wakes the streams. intake.mu guards buf, spare
// and lost; the pump alone touches what it takes out. The pump hands its
// previous batch back as the next buffer, so the two swap without allocating.

import (
	"sync"
	"sync/atomic"

	"github.com/adws/eventbus"
)

// An intake is the bounded hand-off between the bus and the pump.
type intake struct {
	mu    sync.Mutex
	buf   []eventbus.Event // waiting for the pump; never grows past limit
	lost  uint64           // events dropped since the pump last took buf
	limit int

	wake    chan struct{} // capacity 1: the pump has something to take
	dropped atomic.Uint64 // all events ever dropped, for Stats
}

func newIntake(limit int) *intake {
	return &intake{
		buf:   make([]eventbus.Event, 0, limit),
		limit: limit,
		wake:  make(chan struct{}, 1),
	}
}

// handle is the server's bus handler. It never blocks on the pump or on a
// client: it holds intake.mu for one append and, when the buffer was
// empty, makes one non-blocking channel send. When the buffer is full it
// counts the event as lost instead.
func (in *intake) handle(e eventbus.Event) error {
	in.mu.Lock()
	if len(in.buf) == in.limit {
		in.lost++
		in.mu.Unlock()
		in.dropped.Add(1)
		return nil
	}
	first := len(in.buf) == 0 && in.lost == 0
	in.buf = append(in.buf, e)
	in.mu.Unlock()
	if first {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// take swaps out everything waiting and hands the intake prev, the pump's
// previous batch, to fill next. It also returns how many events were dropped
// since the last take: the buffer was full then, so they all came after the
// events of the batch.
func (in *intake) take(prev []eventbus.Event) (batch []eventbus.Event, lost uint64) {
	clear(prev) // let go of the events' Data maps
	in.mu.Lock()
	batch, in.buf = in.buf, prev[:0]
	lost, in.lost = in.lost, 0
	in.mu.Unlock()
	return batch, lost
}
