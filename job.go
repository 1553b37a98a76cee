package eventbus

// This file holds a job: a piece of queued work, the runs of one delivery
// that wait for the goroutines of one queue, and the lists a queue keeps
// them in. A job's runs are claimed one at a time with an atomic add, by a
// goroutine holding its queue's lock or by one that still holds an
// unfinished run of the same delivery (which keeps the delivery alive); its
// links are guarded by its queue's lock.

import "sync/atomic"

// A job is runs next..end-1 of d. A job of the event's own runs skips the
// parked ones, which their lanes hand out.
type job struct {
	d    *delivery
	next int32 // the next run to claim: atomic once the job is queued
	end  int32
	kind jobKind

	// Guarded by q.mu, the lock of the queue the job is in.
	q          *queue // nil while not queued
	prev, link *job
	urgent     bool // in q.urgent: its publisher waits
}

// A jobKind says what a job's runs are.
type jobKind uint8

const (
	eventRuns jobKind = iota // an accepted event's runs; counts against the workers' limit
	restRuns                 // runs a publisher handed back, unstarted
	laneRun                  // the parked run that now holds its lane
)

// set makes j the job of d's runs lo..hi-1, not queued. It writes the
// fields in place: building a job apart and copying it in stalls the CPU on
// every publish, since the copy reads back the fields just written.
func (j *job) set(d *delivery, lo, hi int, kind jobKind) {
	j.d, j.next, j.end, j.kind = d, int32(lo), int32(hi), kind
	j.q, j.prev, j.link, j.urgent = nil, nil, nil, false
}

// claim takes the next run of j that is not parked, for a goroutine that
// holds j's queue lock or an unfinished run of j's delivery. It returns
// the run's index, or -1 when none is left, and last reports whether this
// claim took j's last index: the caller then removes j from its queue,
// before it finishes any run of j's delivery.
func (j *job) claim() (i int, last bool) {
	for {
		k := int(atomic.AddInt32(&j.next, 1)) - 1
		if k >= int(j.end) {
			return -1, false
		}
		last = k == int(j.end)-1
		if j.runs(k) {
			return k, last
		}
		if last {
			return -1, true
		}
	}
}

// prepare readies j to be queued, and returns how many runs it has; j is
// queued only if it has some. It counts them as queued (a lane run already
// counts, since it parked), marks j urgent if its publisher waits, and
// drops the parked runs at its end, so that whoever claims j's last index
// holds a run of j's delivery, and the delivery stays alive until j has
// left its queue.
func (j *job) prepare() int {
	for j.end > j.next && !j.runs(int(j.end)-1) {
		j.end--
	}
	n := j.left()
	if n == 0 {
		return 0
	}
	if j.kind != laneRun {
		j.d.b.shards[j.d.shard].queued.Add(int64(n))
	}
	j.urgent = j.d.mode.waits()
	return n
}

// claimOwn is claim for a job that no other goroutine can see yet: the
// publisher's own runs.
func (j *job) claimOwn() (int, bool) {
	for j.next < j.end {
		k := int(j.next)
		j.next++
		if j.runs(k) {
			return k, true
		}
	}
	return 0, false
}

// runs reports whether run k is j's to hand out: not parked in a lane.
func (j *job) runs(k int) bool { return j.kind == laneRun || !j.d.runs[k].parked }

// left counts the runs of j not yet claimed, for a job no other goroutine
// claims from.
func (j *job) left() int {
	n := 0
	for k := int(j.next); k < int(j.end); k++ {
		if j.runs(k) {
			n++
		}
	}
	return n
}

// A jobList is a FIFO list of jobs that any of them can leave.
type jobList struct{ head, tail *job }

func (l *jobList) push(j *job) {
	j.prev, j.link = l.tail, nil
	if l.tail == nil {
		l.head = j
	} else {
		l.tail.link = j
	}
	l.tail = j
}

func (l *jobList) remove(j *job) {
	if j.prev == nil {
		l.head = j.link
	} else {
		j.prev.link = j.link
	}
	if j.link == nil {
		l.tail = j.prev
	} else {
		j.link.prev = j.prev
	}
	j.prev, j.link = nil, nil
}
