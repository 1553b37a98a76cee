package eventbus

// This file holds the lanes of ordered subscriptions (Ordered, OrderedBy).
// A subscription's laneSet.mu guards its busy map, its free list and every
// lane's parked list.

import "sync"

// An ordering keys the lanes of an ordered subscription. The zero ordering
// is unordered.
type ordering struct {
	ordered bool
	key     func(Event) string // OrderedBy's key; nil: the ADWID
}

var orderByADWID = ordering{ordered: true}

func orderBy(key func(Event) string) ordering { return ordering{ordered: true, key: key} }

// A lane serialises the runs of one ordered subscription for one key. It
// exists while a run of it is in progress: the first run of an idle lane is
// handed out like any other and holds the lane, and the runs that arrive
// while it is busy are parked in the lane, in the order their events were
// accepted. When the holder's run ends, the lane passes to the next parked
// run: a worker or async goroutine runs it next itself; a publisher, which
// must return to its caller, queues it for the bus's goroutines. Lanes of
// different keys run in parallel.
type lane struct {
	s      *subscription
	key    string
	parked []runRef // runs waiting behind the holder, oldest first from head
	head   int
	next   job // the next run, when it is queued: at most one at a time
}

// A laneSet holds the busy lanes of one ordered subscription.
type laneSet struct {
	mu   sync.Mutex
	busy map[string]*lane
	free []*lane // released lanes, for reuse
}

// maxFreeLanes bounds the released lanes a subscription keeps for reuse.
const maxFreeLanes = 64

// assignLanes gives every ordered run of d its lane, as d is accepted.
func (b *Bus) assignLanes(d *delivery) {
	if d.nOrdered == 0 {
		return
	}
	for i := range d.runs {
		s := d.runs[i].s
		if !s.order.ordered {
			continue
		}
		if s.lanes.take(runRef{d, i}, d.keys[i]) {
			b.shards[d.shard].queued.Add(1)
		}
	}
}

// take gives run r the lane of key: the run holds it if it is idle and
// is parked in it if it is busy, and take reports whether it parked. It
// writes the run's lane and parked under the lock, before the holder can
// see the run.
func (ls *laneSet) take(r runRef, key string) (parked bool) {
	slot := r.slot()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.busy[key]; l != nil {
		slot.lane, slot.parked = l, true
		l.parked = append(l.parked, r)
		return true
	}
	l := ls.newLane(slot.s, key)
	if ls.busy == nil {
		ls.busy = make(map[string]*lane)
	}
	ls.busy[key] = l
	slot.lane = l
	return false
}

func (ls *laneSet) newLane(s *subscription, key string) *lane {
	n := len(ls.free)
	if n == 0 {
		return &lane{s: s, key: key}
	}
	l := ls.free[n-1]
	ls.free[n-1] = nil
	ls.free = ls.free[:n-1]
	l.key = key
	return l
}

// advance passes l on from the run that held it: it returns the next
// parked run, which now holds l, or, when none is left, releases l and
// reports false. It compacts the parked list as it goes, so a lane that
// never goes idle does not grow.
func (l *lane) advance() (runRef, bool) {
	ls := &l.s.lanes
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l.head < len(l.parked) {
		r := l.parked[l.head]
		l.parked[l.head] = runRef{}
		l.head++
		if l.head >= 32 && l.head*2 >= len(l.parked) {
			n := copy(l.parked, l.parked[l.head:])
			clear(l.parked[n:])
			l.parked, l.head = l.parked[:n], 0
		}
		return r, true
	}
	delete(ls.busy, l.key)
	if len(ls.free) < maxFreeLanes {
		l.parked, l.head, l.key = l.parked[:0], 0, ""
		ls.free = append(ls.free, l)
	}
	return runRef{}, false
}

// queueLaneRun queues r, a parked run that now holds its lane l, for the
// goroutines that run its kind of handler. The run still counts in
// Metrics.Queued until it starts.
func (b *Bus) queueLaneRun(l *lane, r runRef) {
	l.next.set(r.d, r.i, r.i+1, laneRun)
	l.next.prepare()
	b.queueFor(r).push(&l.next)
}

// queueFor returns the queue whose goroutines run r: the workers for a sync
// run, when there are workers, and the async goroutines otherwise.
func (b *Bus) queueFor(r runRef) *queue {
	if r.i < r.d.nSync && b.maxWorkers > 0 {
		return &b.workers
	}
	return &b.async
}
