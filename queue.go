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
//     the rest, and as many goroutines are woken or started as it has runs,
//     up to the bound;
//   - take: runs are taken in that order, one at a time;
//   - the bound: at most max goroutines run, plus one for every caller
//     waiting for the bus (lend); an idle goroutine beyond keepIdle exits.

import "sync"

// A queue holds jobs for one kind of goroutine of the bus.
type queue struct {
	b     *Bus
	mu    sync.Mutex
	ready sync.Cond // signalled when a job is pushed, the bound grows, or the queue closes

	// The jobs, oldest first. An urgent job's publisher waits for it.
	urgent, normal jobList

	// The goroutines.
	max      int  // the bound: WithMaxWorkers or WithMaxAsync...
	lent     int  // ...plus one for every caller waiting for the bus
	keepIdle int  // an idle goroutine beyond this many exits
	running  int  // started and not exited
	idle     int  // blocked in take, not yet signalled
	started  int  // ever started: gives each its counter shard
	closed   bool // Shutdown: goroutines exit once nothing is left
	group    sync.WaitGroup

	// Admission, in the workers' queue.
	limit  int // how many events may wait; 0: no limit
	policy OverflowPolicy
	events int           // events whose runs are in the queue
	room   chan struct{} // closed when events drops; nil while nobody waits
}

// A job is a piece of queued work: runs next..end-1 of d. A job of the
// event's own runs skips the parked ones, which their lanes hand out.
type job struct {
	d         *delivery
	next, end int
	kind      jobKind
	link      *job // the next job in the list
}

// A jobKind says what a job's runs are.
type jobKind uint8

const (
	eventRuns jobKind = iota // an accepted event's runs; counts against the workers' limit
	restRuns                 // runs a publisher handed back, unstarted
	laneRun                  // the parked run that now holds its lane
)

// claim takes the next run of j that is not parked.
func (j *job) claim() (int, bool) {
	j.skipParked()
	if j.next >= j.end {
		return 0, false
	}
	i := j.next
	j.next++
	j.skipParked()
	return i, true
}

// skipParked moves j past the parked runs at its front.
func (j *job) skipParked() {
	for j.next < j.end && j.kind != laneRun && j.d.runs[j.next].parked {
		j.next++
	}
}

// left counts the runs of j not yet claimed.
func (j *job) left() int {
	n := 0
	for i := j.next; i < j.end; i++ {
		if j.kind == laneRun || !j.d.runs[i].parked {
			n++
		}
	}
	return n
}

// A jobList is a FIFO list of jobs.
type jobList struct{ head, tail *job }

func (l *jobList) push(j *job) {
	j.link = nil
	if l.tail == nil {
		l.head = j
	} else {
		l.tail.link = j
	}
	l.tail = j
}

func (l *jobList) pop() {
	l.head = l.head.link
	if l.head == nil {
		l.tail = nil
	}
}

func (q *queue) init(b *Bus, max, keepIdle int) {
	q.b, q.max, q.keepIdle = b, max, keepIdle
	q.ready.L = &q.mu
}

func (q *queue) limitAdmission(limit int, p OverflowPolicy) { q.limit, q.policy = limit, p }

// admit accepts d's event and queues its runs for the workers, all or
// none, when there is room: OverflowReject refuses at once; OverflowBlock
// waits for room until d's ctx ends. A publisher whose ctx can never end
// lends the bus a worker while it waits, for it may itself be a worker
// whose handler publishes, and only one more worker can make the room.
func (q *queue) admit(d *delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.limit > 0 && q.events >= q.limit {
		if q.closed {
			return ErrClosed
		}
		if err := q.waitForRoomLocked(d); err != nil {
			q.b.m.rejected.Add(1)
			return err
		}
	}
	if err := d.accept(); err != nil {
		return err
	}
	if d.toWorkers.left() > 0 {
		q.pushLocked(&d.toWorkers)
	}
	return nil
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
		q.lendLocked(1)
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
		q.lendLocked(-1)
	}
	d.start = 0 // the wait breaks the chain of clock readings
	return err
}

// push queues j.
func (q *queue) push(j *job) {
	q.mu.Lock()
	q.pushLocked(j)
	q.mu.Unlock()
}

// pushLocked queues j, counts its runs as queued (a lane run already
// counts, since it parked), and wakes or starts a goroutine for each run.
func (q *queue) pushLocked(j *job) {
	n := j.left()
	if j.kind != laneRun {
		q.b.shards[j.d.shard].queued.Add(int64(n))
	}
	if j.kind == eventRuns && q.limit > 0 {
		q.events++
	}
	if j.d.mode.waits() {
		q.urgent.push(j)
	} else {
		q.normal.push(j)
	}
	q.wakeLocked(n)
}

// wakeLocked wakes an idle goroutine, or starts one within the bound, for
// each of n runs.
func (q *queue) wakeLocked(n int) {
	for ; n > 0; n-- {
		switch {
		case q.idle > 0:
			q.idle--
			q.ready.Signal()
		case q.running < q.max+q.lent:
			q.running++
			q.started++
			shard := q.started & q.b.shardMask
			q.group.Go(func() { q.b.serve(q, shard) })
		default:
			return
		}
	}
}

// take blocks until it can claim a run, and returns it; ok is false when
// the calling goroutine is to exit. It zeroes r.last if it had to wait.
func (q *queue) take(r *runner) (runRef, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.running > q.max+q.lent {
			q.running-- // one too many, now that a waiting caller left
			return runRef{}, false
		}
		if ref, ok := q.claimLocked(); ok {
			return ref, true
		}
		if q.closed || q.idle >= q.keepIdle {
			q.running--
			return runRef{}, false
		}
		q.idle++
		q.ready.Wait()
		r.last = 0
	}
}

// claimLocked takes the first run of the first job, urgent ones first.
func (q *queue) claimLocked() (runRef, bool) {
	for _, l := range [...]*jobList{&q.urgent, &q.normal} {
		for j := l.head; j != nil; j = l.head {
			i, ok := j.claim()
			d := j.d
			if j.next >= j.end {
				l.pop()
				q.removedLocked(j)
			}
			if ok {
				q.b.shards[d.shard].queued.Add(-1)
				return runRef{d, i}, true
			}
		}
	}
	return runRef{}, false
}

// removedLocked makes room when an event's job leaves the workers' queue.
func (q *queue) removedLocked(j *job) {
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
func (q *queue) lend()   { q.mu.Lock(); q.lendLocked(1); q.mu.Unlock() }
func (q *queue) unlend() { q.mu.Lock(); q.lendLocked(-1); q.mu.Unlock() }

func (q *queue) lendLocked(delta int) {
	q.lent += delta
	if delta > 0 && q.idle == 0 && (q.urgent.head != nil || q.normal.head != nil) {
		q.wakeLocked(1)
	}
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
	q.group.Go(func() { q.b.serve(q, shard) })
}
