package eventbus

// This file holds the queue: the runs waiting for one kind of goroutine of
// the bus, and the accounting of those goroutines, which the queue starts
// and stops itself. A bus has two queues: the workers' (sync handlers) and
// the async goroutines' (async handlers, and sync lane runs WithMaxWorkers(0)).
// queue.mu guards every field of a queue and every job in it.
//
// The queue keeps these invariants, each in one method:
//   - admit: an event enters the workers' queue with all its runs or not at
//     all, and only while fewer than limit events are in it;
//   - push: a job is queued in order, urgent (its publisher waits) before
//     the rest, and one goroutine is called for it: the spinning one, or
//     an idle one woken, or a new one started, up to the bound;
//   - take: runs are taken in that order, one at a time, and a goroutine
//     that takes one while more wait calls another, so that goroutines
//     come one after another as long as runs wait;
//   - the bound: at most max goroutines run, plus one for every caller
//     waiting for the bus (lend); an idle goroutine beyond keepIdle exits.

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A queue holds jobs for one kind of goroutine of the bus.
type queue struct {
	b     *Bus
	mu    sync.Mutex
	ready sync.Cond // signalled when a job is pushed, the bound grows, or the queue closes

	// The jobs, oldest first. An urgent job's publisher waits for it.
	urgent, normal jobList

	// The goroutines.
	max      int          // the bound: WithMaxWorkers or WithMaxAsync...
	lent     int          // ...plus one for every caller waiting for the bus
	keepIdle int          // an idle goroutine beyond this many exits
	running  int          // started and not exited
	idle     int          // blocked in take, not yet signalled
	spinner  bool         // a goroutine looks for work for a moment before it blocks
	coming   int          // goroutines called for work that have not looked yet, and no push counted on it yet
	jobs     atomic.Int32 // how many jobs the lists hold, for the spinner to read without q.mu
	started  int          // ever started: gives each its counter shard
	closed   bool         // Shutdown: goroutines exit once nothing is left
	group    sync.WaitGroup

	// Admission, in the workers' queue.
	limit  int // how many events may wait; 0: no limit
	policy OverflowPolicy
	events int           // events whose runs are in the queue
	room   chan struct{} // closed when events drops; nil while nobody waits
}

func (q *queue) init(b *Bus, max, keepIdle int) {
	q.b, q.max, q.keepIdle = b, max, keepIdle
	q.ready.L = &q.mu
}

func (q *queue) limitAdmission(limit int, p OverflowPolicy) { q.limit, q.policy = limit, p }

// A wakeup is what a change to the queue calls for, done after q.mu is
// released so that a woken goroutine does not block on it at once: signal
// that many idle goroutines, and start that many new ones, the first with
// counter shard shard.
type wakeup struct{ signal, start, shard int }

// admit accepts d's event and queues its runs for the workers, all or
// none, when there is room: OverflowReject refuses at once; OverflowBlock
// waits for room until d's ctx ends. A publisher whose ctx can never end
// lends the bus a worker while it waits, for it may itself be a worker
// whose handler publishes, and only one more worker can make the room.
func (q *queue) admit(d *delivery) error {
	if q.limit == 0 { // no room to wait for: accept, and queue like any job
		if err := d.accept(); err != nil {
			return err
		}
		if d.toWorkers.prepare() > 0 {
			q.push(&d.toWorkers)
		}
		return nil
	}
	q.mu.Lock()
	w, err := q.admitLocked(d)
	q.mu.Unlock()
	q.wake(w)
	return err
}

func (q *queue) admitLocked(d *delivery) (wakeup, error) {
	for q.limit > 0 && q.events >= q.limit {
		if q.closed {
			return wakeup{}, ErrClosed
		}
		if err := q.waitForRoomLocked(d); err != nil {
			q.b.m.rejected.Add(1)
			return wakeup{}, err
		}
	}
	if err := d.accept(); err != nil {
		return wakeup{}, err
	}
	if d.toWorkers.prepare() == 0 {
		return wakeup{}, nil
	}
	return q.pushLocked(&d.toWorkers), nil
}

// waitForRoomLocked waits, with q.mu held on entry and on return, until
// an event leaves the queue or d's ctx ends.
func (q *queue) waitForRoomLocked(d *delivery) error {
	if q.policy == OverflowReject {
		return ErrQueueFull
	}
	if q.room == nil {
		q.room = make(chan struct{})
	}
	room := q.room
	lends := q.b.endless(d.ctx)
	if lends {
		q.lent++
		q.wake(q.callLocked()) // q.mu is held: the new goroutine blocks on it until we wait
	}
	q.mu.Unlock()
	var err error
	select {
	case <-room:
	case <-d.ctx.Done():
		err = d.ctx.Err()
	}
	q.mu.Lock()
	if lends {
		q.lent--
	}
	d.start = 0 // the wait breaks the chain of clock readings
	return err
}

// push queues j, which prepare found runs in.
func (q *queue) push(j *job) {
	q.mu.Lock()
	w := q.pushLocked(j)
	q.mu.Unlock()
	q.wake(w)
}

// pushLocked queues j, which prepare found runs in, and returns the wakeup
// it calls for.
func (q *queue) pushLocked(j *job) wakeup {
	if j.kind == eventRuns && q.limit > 0 {
		q.events++
	}
	j.q = q
	if j.urgent {
		q.urgent.push(j)
	} else {
		q.normal.push(j)
	}
	q.jobs.Add(1)
	return q.callLocked()
}

// callLocked calls one goroutine for work that waits, unless one is
// already coming: the spinning one, or an idle one woken, or a new one
// while fewer than the bound run. One goroutine comes at a time, and each
// that finds more work than it takes calls the next (see take): that keeps
// a burst from waking or starting more goroutines than get to run.
func (q *queue) callLocked() wakeup {
	w := wakeup{shard: q.started}
	if q.coming > 0 {
		return w
	}
	switch {
	case q.spinner:
		q.spinner = false // it takes this run
	case q.idle > 0:
		q.idle--
		w.signal++
	case q.running < q.max+q.lent:
		q.running++
		q.started++
		w.start++
	default:
		return w
	}
	q.coming++
	return w
}

// wake carries out w.
func (q *queue) wake(w wakeup) {
	for range w.signal {
		q.ready.Signal()
	}
	for i := range w.start {
		shard := (w.shard + i + 1) & q.b.shardMask
		q.group.Go(func() { q.b.serve(q, shard) })
	}
}

// take blocks until it can claim a run, and returns it with the job it
// came from; ok is false when the calling goroutine is to exit. It zeroes
// r.last if it had to wait.
func (q *queue) take(r *runner) (ref runRef, j *job, ok bool) {
	var w wakeup
	q.mu.Lock()
	defer func() {
		q.mu.Unlock()
		q.wake(w)
	}()
	spun := false // a goroutine spins once, then blocks
	for {
		if r.coming {
			q.coming = max(0, q.coming-1) // it came
			r.coming = false
		}
		if q.running > q.max+q.lent {
			q.running-- // one too many, now that a waiting caller left
			if q.jobs.Load() > 0 {
				w = q.callLocked()
			}
			return runRef{}, nil, false
		}
		if ref, j, ok := q.claimLocked(); ok {
			if q.jobs.Load() > 0 {
				w = q.callLocked() // more runs wait: call the next goroutine
			}
			return ref, j, true
		}
		if q.closed || q.idle >= q.keepIdle {
			q.running--
			return runRef{}, nil, false
		}
		r.last = 0
		if !spun && !q.spinner {
			spun = true
			r.coming = q.spin()
			continue
		}
		q.idle++
		q.ready.Wait()
		r.coming = true // woken to come
	}
}

// spinRounds bounds how long a goroutine with nothing to do looks for work
// before it blocks: a few microseconds, so that a stream of events that
// the goroutines keep up with does not put one to sleep and wake it again,
// through the kernel, for every event.
const spinRounds = 32

// spin looks for work without q.mu for a moment, with q.mu held on entry
// and on return. The next push leaves it a run instead of waking another
// goroutine; after that another goroutine may spin.
//
// It reports whether a push called it, which counts it as coming.
func (q *queue) spin() (called bool) {
	q.spinner = true
	q.mu.Unlock()
	for i := 0; i < spinRounds && q.jobs.Load() == 0; i++ {
		runtime.Gosched()
	}
	q.mu.Lock()
	called = !q.spinner
	q.spinner = false
	return called
}

// claimLocked claims the first run of the first job, urgent ones first.
func (q *queue) claimLocked() (runRef, *job, bool) {
	for _, l := range [...]*jobList{&q.urgent, &q.normal} {
		for j := l.head; j != nil; {
			next := j.link
			i, last := j.claim()
			if last {
				q.removeLocked(j)
			}
			if i >= 0 {
				return runRef{j.d, i}, j, true
			}
			j = next
		}
	}
	return runRef{}, nil, false
}

// claimFrom claims the next run of j for a goroutine that holds an
// unfinished run of j's delivery, without q.mu unless the claim empties j.
func (q *queue) claimFrom(j *job) (runRef, bool) {
	i, last := j.claim()
	if last {
		q.mu.Lock()
		q.removeLocked(j)
		q.mu.Unlock()
	}
	if i < 0 {
		return runRef{}, false
	}
	return runRef{j.d, i}, true
}

// removeLocked takes j, whose last index was claimed, out of the queue,
// and makes room when it was an event's.
func (q *queue) removeLocked(j *job) {
	if j.urgent {
		q.urgent.remove(j)
	} else {
		q.normal.remove(j)
	}
	q.jobs.Add(-1)
	j.q = nil
	if j.kind != eventRuns || q.limit == 0 {
		return
	}
	q.events--
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// lend raises the bound by one while a caller waits for the bus, and
// starts a goroutine if runs wait and none is idle; unlend lowers it
// again, and the goroutine that is one too many exits when it next looks
// for work.
func (q *queue) lend() {
	q.mu.Lock()
	q.lent++
	var w wakeup
	if q.idle == 0 && (q.urgent.head != nil || q.normal.head != nil) {
		w = q.callLocked()
	}
	q.mu.Unlock()
	q.wake(w)
}

func (q *queue) unlend() {
	q.mu.Lock()
	q.lent--
	q.mu.Unlock()
}

// close makes the goroutines exit once nothing is left to run. Runs that
// accepted events still queue later start goroutines again.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.idle = 0
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	q.ready.Broadcast()
}

// replace starts a goroutine in place of one that a handler ended with
// runtime.Goexit, so that the queue keeps its size.
func (q *queue) replace(shard int) {
	q.mu.Lock()
	q.coming++ // it comes to look for work, as a started one does
	q.mu.Unlock()
	q.group.Go(func() { q.b.serve(q, shard) })
}
