package eventbus

import (
	"slices"
	"sync"
	"sync/atomic"
)

// worker runs queued sync handlers until the queue is closed and empty. It
// chains the timing of consecutive runs so that each costs one clock
// reading, and, while its runs are quick, takes several at once when every
// other worker is busy too. What it has taken and not started sits in its
// stash, where idle workers and waiting callers can take it: a batch never
// holds runs up behind a slow or blocked handler.
func (b *Bus) worker(id int) {
	st := b.queue.stash(id)
	exited := false
	m := &b.shards[id&b.shardMask]
	defer func() {
		if exited {
			return
		}
		// A handler called runtime.Goexit: the claims left in the stash
		// never run, and a new worker keeps the pool at full size.
		for c, ok := st.next(); ok; c, ok = st.next() {
			m.queued.Add(-int64(c.n))
			for j := c.i; j < c.i+c.n; j++ {
				b.abandon(c.d, j, m)
			}
		}
		b.queue.starting(1)
		b.workers.Go(func() { b.worker(id) })
	}()
	b.queue.arrived()
	var last int64 // when the previous run ended; 0 after waiting
	quick := false // the last batch's runs took less than quickRun each
	for {
		waited, ok := b.queue.take(st, quick)
		if !ok {
			exited = true
			return
		}
		start := last
		if waited || start == 0 {
			start = b.clock.mono()
		}
		first, runs := start, 0
		for c, ok := st.next(); ok; c, ok = st.next() {
			runs += c.n
			start = b.runBatch(c.d.ctx, m, c.d, c.i, c.n, start, true)
		}
		last = start
		quick = int64(runs)*quickRun > last-first
	}
}

// quickRun is how short, in nanoseconds, a worker's runs must be on average
// for it to take several at once: long enough for the lock it saves to
// matter. A batch holds at most maxBatch deliveries.
const quickRun = 20_000

// A stash holds the claims a worker took and has not started. Its worker
// fills it under the queue's lock, when it is empty; anyone takes from it,
// in order, with next.
type stash struct {
	claims []claim
	taken  atomic.Int32 // how many claims were taken
}

// next takes the next claim, if one is left.
func (st *stash) next() (claim, bool) {
	if k := int(st.taken.Add(1)) - 1; k < len(st.claims) {
		return st.claims[k], true
	}
	return claim{}, false
}

// left reports whether claims are left; q.mu must be held.
func (st *stash) left() bool { return int(st.taken.Load()) < len(st.claims) }

// A claim is what a worker takes from the queue in one piece: runs
// i..i+n-1 of d.
type claim struct {
	d    *delivery
	i, n int
}

// maxBatch bounds how many deliveries a worker takes at once.
const maxBatch = 32

// A queue holds deliveries with sync runs no one has claimed yet, in the order
// they were accepted. Workers take runs from the head; a PublishAndWait caller
// claims runs of its own delivery wherever it is.
type queue struct {
	mu         sync.Mutex
	ready      sync.Cond // a run was pushed, or the queue closed
	head, tail *delivery
	waiting    int // deliveries in the list
	limit      int // 0: none
	policy     OverflowPolicy
	workers    int
	started    bool          // the workers were started
	idle       int           // workers blocked in take, not yet signalled
	waking     int           // workers signalled or starting, not yet running
	room       chan struct{} // closed when room appears; nil if nobody waits
	waiters    []*delivery   // PublishAndWait callers to wake when no worker is free
	stashes    []*stash      // per worker: what it took and has not started
	closed     bool
}

func (q *queue) init(workers, limit int, p OverflowPolicy) {
	q.ready.L = &q.mu
	q.workers, q.limit, q.policy = workers, limit, p
}

// linkLocked appends d to the list.
func (q *queue) linkLocked(d *delivery) {
	if q.tail == nil {
		q.head = d
	} else {
		q.tail.nextInQueue = d
		d.prev = q.tail
	}
	q.tail = d
	q.waiting++
}

// reserveLocked picks an idle worker to wake, if there is one. Counting the
// signalled worker at once keeps two pushes from waking the same worker.
func (q *queue) reserveLocked() bool {
	if q.idle == 0 {
		return false
	}
	q.idle--
	q.waking++
	return true
}

// starting counts n workers about to start as waking, so that a PublishAndWait
// caller does not think itself starved while they start.
func (q *queue) starting(n int) {
	q.mu.Lock()
	q.waking += n
	q.mu.Unlock()
}

// arrived is called by a new worker before its first take.
func (q *queue) arrived() {
	q.mu.Lock()
	q.waking--
	q.mu.Unlock()
}

// take blocks until there is a run to take, fills the worker's empty stash
// st with what it claims, and reports whether it had to wait; ok is false
// once the queue is closed and empty. It claims a single run, in acceptance
// order, unless mayBatch (the worker's runs are quick) and every other
// worker is busy too, so that whatever it leaves waits anyway: then it takes
// a fair share of the queue in one go, whole deliveries, or, for a lone
// delivery, a fair share of its runs; but only one run of a delivery whose
// PublishAndWait caller could help. With the queue empty, it takes over a
// claim another worker has not started before it sleeps. When no worker is
// left free and runs still wait, it wakes the waiting PublishAndWait
// callers, so that they help.
func (q *queue) take(st *stash, mayBatch bool) (waited, ok bool) {
	q.mu.Lock()
	clear(st.claims)
	st.claims = st.claims[:0]
	for q.head == nil {
		if c, ok := q.stealLocked(st); ok {
			st.claims = append(st.claims, c)
			st.taken.Store(0) // under the lock: thieves see the new claims only with it
			q.mu.Unlock()
			return waited, true
		}
		if q.closed {
			q.mu.Unlock()
			return waited, false
		}
		q.idle++
		q.ready.Wait()
		q.waking--
		waited = true
	}
	starved := q.idle+q.waking == 0
	if !starved || !mayBatch {
		d := q.head
		st.claims = append(st.claims, claim{d: d, i: q.claimLocked(d, 1), n: 1})
	} else {
		quota := min((q.waiting+q.workers-1)/q.workers, maxBatch)
		for k := 0; k < quota && q.head != nil; k++ {
			d := q.head
			n := d.nSync - d.next
			switch {
			case d.wait:
				n = 1
			case quota == 1:
				n = (n + q.workers - 1) / q.workers
			}
			st.claims = append(st.claims, claim{d: d, i: q.claimLocked(d, n), n: n})
			if d.wait {
				break
			}
		}
	}
	st.taken.Store(0) // under the lock: thieves see the new claims only with it
	if starved && q.head != nil {
		q.wakeWaitersLocked()
	}
	more := q.head != nil && q.reserveLocked()
	q.mu.Unlock()
	if more {
		q.ready.Signal() // pass the wake-up on: one signal per push suffices
	}
	return waited, true
}

// stash returns worker id's stash.
func (q *queue) stash(id int) *stash {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.stashes) <= id {
		q.stashes = append(q.stashes, nil)
	}
	if q.stashes[id] == nil {
		q.stashes[id] = new(stash)
	}
	return q.stashes[id]
}

// stealLocked takes the next claim another worker has not started, if any.
func (q *queue) stealLocked(except *stash) (claim, bool) {
	for _, st := range q.stashes {
		if st != nil && st != except && st.left() {
			if c, ok := st.next(); ok {
				return c, true
			}
		}
	}
	return claim{}, false
}

// wakeWaiters wakes every waiting PublishAndWait caller.
func (q *queue) wakeWaiters() {
	q.mu.Lock()
	q.wakeWaitersLocked()
	q.mu.Unlock()
}

// wakeWaitersLocked wakes every waiting PublishAndWait caller: no worker is
// free and runs still wait.
func (q *queue) wakeWaitersLocked() {
	for _, w := range q.waiters {
		w.waiting = false
		select {
		case w.help <- struct{}{}:
		default:
		}
	}
	clear(q.waiters)
	q.waiters = q.waiters[:0]
}

// claim takes the next unclaimed run of d, if any. If onlyIfStarved, it
// takes one only while no worker is idle or about to run.
func (q *queue) claim(d *delivery, onlyIfStarved bool) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if d.next >= d.nSync || onlyIfStarved && q.idle+q.waking > 0 {
		return 0, false
	}
	return q.claimLocked(d, 1), true
}

// claimHeadLocked takes the next run of the delivery at the head, if any.
func (q *queue) claimHeadLocked() (*delivery, int, bool) {
	if q.head == nil {
		return nil, 0, false
	}
	d := q.head
	return d, q.claimLocked(d, 1), true
}

// waitFor is called by a PublishAndWait caller about to wait for d. While
// every worker is busy it claims a run for the caller to run instead: one of
// d's own, or, if any (the caller's ctx can never end), the run at the head,
// or one a busy worker took and has not started. Otherwise it lists the
// caller among the waiters to wake when no worker is free (or, any, when an
// async run waits for a goroutine), and reports false. Without a pool, d's
// sync runs are not the queue's, and only the listing applies. A claim of
// d's own or of the head is a single run; a stolen one is whatever the worker
// had taken.
func (q *queue) waitFor(d *delivery, anyRun, pool bool) (claim, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if pool && q.idle+q.waking == 0 {
		if d.next < d.nSync {
			return claim{d: d, i: q.claimLocked(d, 1), n: 1}, true
		}
		if anyRun {
			if hd := q.head; hd != nil {
				return claim{d: hd, i: q.claimLocked(hd, 1), n: 1}, true
			}
			if c, ok := q.stealLocked(nil); ok {
				return c, true
			}
		}
	}
	if !d.waiting && (anyRun || pool && d.next < d.nSync) {
		d.waiting = true
		q.waiters = append(q.waiters, d)
	}
	return claim{}, false
}

// unwait takes d off the waiters.
func (q *queue) unwait(d *delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unwaitLocked(d)
}

func (q *queue) unwaitLocked(d *delivery) {
	if !d.waiting {
		return
	}
	d.waiting = false
	if i := slices.Index(q.waiters, d); i >= 0 {
		q.waiters = slices.Delete(q.waiters, i, i+1)
	}
}

func (q *queue) claimLocked(d *delivery, n int) int {
	i := d.next
	d.next += n
	if d.next == d.nSync {
		q.unlinkLocked(d)
	}
	return i
}

// unlinkLocked removes d, whose runs are all claimed, from the list (and from
// the waiters, unless its caller helps with any run), and makes room.
func (q *queue) unlinkLocked(d *delivery) {
	if d.prev == nil {
		q.head = d.nextInQueue
	} else {
		d.prev.nextInQueue = d.nextInQueue
	}
	if d.nextInQueue == nil {
		q.tail = d.prev
	} else {
		d.nextInQueue.prev = d.prev
	}
	d.prev, d.nextInQueue = nil, nil
	q.waiting--
	if !d.helps {
		q.unwaitLocked(d) // nothing of its own is left to help with
	}
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// close refuses further pushes and lets the workers exit once the queue is
// empty.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.waking += q.idle
	q.idle = 0
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	q.ready.Broadcast()
}
