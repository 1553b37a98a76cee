package dashboard

// This file holds a stream's cursor: where the stream is in the ring, how
// far it may fall behind, and what it has skipped but not yet reported in a
// gap event. Only the stream's own goroutine touches its cursor; the ring's
// read lock is held while it reads the ring.

import "github.com/adws/eventbus"

// A cursor is one stream's place in the ring.
type cursor struct {
	next    uint64 // the seq to look at next
	joined  uint64 // the newest seq when the stream started
	missed  uint64 // events skipped and not yet reported in a gap
	backlog uint64 // WithClientBuffer
	filter  eventbus.Filter
}

// A read is what one look at the ring gives a stream.
type read struct {
	entries []entry         // the entries from cursor.next on, in order
	wait    <-chan struct{} // closed when the ring has more
	slow    bool            // the stream fell behind and was moved to the live edge
}

// start places c at the live edge of r or, when the client sent a
// Last-Event-ID, right after that event. Events the client missed that
// the ring no longer holds, or that are older than the replay window,
// count as missed. An id past the newest event (from before a restart of
// the process, since sequence numbers start at 1) counts as 0.
func (c *cursor) start(r *ring, resume lastEventID, replay uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c.joined = r.head
	c.next = r.head + 1
	if !resume.set {
		return
	}
	last := resume.seq
	if last > r.head {
		last = 0
	}
	lowest := r.oldestLocked()
	if r.head >= replay {
		lowest = max(lowest, r.head-replay+1)
	}
	c.next = max(last+1, lowest)
	c.missed = c.next - (last + 1)
}

// read copies into dst (up to its capacity) the entries from c.next on, and
// moves c past them. If the client has more than c.backlog events that were
// published since it connected still waiting, it moves c to the live edge
// instead, counts what it skipped, and reports the stream as slow.
func (c *cursor) read(r *ring, dst []entry) read {
	r.mu.RLock()
	defer r.mu.RUnlock()
	got := read{wait: r.changed}
	if c.next > r.head {
		return got
	}
	if r.head-max(c.next-1, c.joined) > c.backlog {
		c.skipToLive(r)
		got.slow = true
		return got
	}
	if oldest := r.oldestLocked(); c.next < oldest {
		c.missed += oldest - c.next
		c.next = oldest
	}
	end := min(r.head, c.next+uint64(cap(dst))-1)
	for seq := c.next; seq <= end; seq++ {
		dst = append(dst, r.copyLocked(seq))
	}
	c.next = end + 1
	got.entries = dst
	return got
}

// skipToLive moves c past the newest entry of r, counting as missed every
// skipped event its filter selects and every event the intake dropped, and,
// for entries r no longer holds, one per entry.
func (c *cursor) skipToLive(r *ring) {
	oldest := r.oldestLocked()
	for seq := c.next; seq <= r.head; seq++ {
		if seq < oldest {
			c.missed++
			continue
		}
		c.missed += r.at(seq).weight(&c.filter)
	}
	c.next = r.head + 1
}

// A lastEventID is the Last-Event-ID a client sent, if it sent one.
type lastEventID struct {
	seq uint64
	set bool
}
