package eventbus

import "log/slog"

// A lane serialises the runs of one ordered subscription (Ordered,
// OrderedBy) for one key. It exists while a run of it is in progress: the
// first run of an idle lane is dispatched like any other, and the runs that
// arrive while it is busy are parked in the lane, in the order their events
// were accepted; whoever finishes a run of the lane runs the next parked one
// on the same goroutine. Lanes of different keys run in parallel.
type lane struct {
	s      *subscription
	key    string
	parked []*delivery // deliveries whose run of s waits, oldest first
	head   int
}

// orderKeys sets d.keys[i] to the ordering key of run i, for the ordered
// runs. A key function that panics is logged and puts the event in the lane
// of the empty key.
func (b *Bus) orderKeys(d *delivery, e *Event) {
	d.keys = d.keys[:0]
	for _, s := range d.subs {
		key := ""
		if s.ordered {
			key = b.orderKey(s, e)
		}
		d.keys = append(d.keys, key)
	}
}

func (b *Bus) orderKey(s *subscription, e *Event) (key string) {
	if s.orderBy == nil {
		return e.ADWID
	}
	defer func() {
		if v := recover(); v != nil {
			key = ""
			b.logFilterPanic(s, e, v, "order key panicked")
		}
	}()
	return s.orderBy(*e)
}

// assignLanes gives every ordered run of d its lane, as d is accepted (and
// so, when d is queued, under the queue's lock: it calls no user code). A
// run whose lane is idle holds it and stays in d.subs; a run whose lane is
// busy is parked there and leaves d.subs (it still counts in d.pending).
func (b *Bus) assignLanes(d *delivery) {
	d.lanes = d.lanes[:0]
	if !d.mayOrder {
		return
	}
	for i := 0; i < len(d.subs); {
		s := d.subs[i]
		if !s.ordered {
			d.lanes = append(d.lanes, nil)
			i++
			continue
		}
		key := d.keys[i]
		s.lanesMu.Lock()
		if l := s.lanes[key]; l != nil {
			// Remove the run from d first: once parked it may run at once.
			d.drop(i)
			b.shards[d.sh].queued.Add(1)
			l.parked = append(l.parked, d)
			s.lanesMu.Unlock()
			continue
		}
		var l *lane
		if n := len(s.freeLanes); n > 0 {
			l, s.freeLanes = s.freeLanes[n-1], s.freeLanes[:n-1]
			l.key = key
		} else {
			l = &lane{s: s, key: key}
		}
		if s.lanes == nil {
			s.lanes = make(map[string]*lane)
		}
		s.lanes[key] = l
		s.lanesMu.Unlock()
		d.lanes = append(d.lanes, l)
		i++
	}
}

// laneAt returns the lane that d's run i holds, or nil.
func (d *delivery) laneAt(i int) *lane {
	if i < len(d.lanes) {
		return d.lanes[i]
	}
	return nil
}

// laneNext returns the next parked delivery of l, or, when none is left,
// releases l and returns nil. It compacts the parked list as it goes, so a
// lane that never goes idle does not grow.
func (b *Bus) laneNext(l *lane) *delivery {
	s := l.s
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	if l.head < len(l.parked) {
		d := l.parked[l.head]
		l.parked[l.head] = nil
		l.head++
		if l.head >= 32 && l.head*2 >= len(l.parked) {
			n := copy(l.parked, l.parked[l.head:])
			clear(l.parked[n:])
			l.parked, l.head = l.parked[:n], 0
		}
		return d
	}
	delete(s.lanes, l.key)
	if len(s.freeLanes) < maxFreeLanes { // nobody holds a released lane: reuse it
		clear(l.parked)
		l.parked, l.head, l.key = l.parked[:0], 0, ""
		s.freeLanes = append(s.freeLanes, l)
	}
	return nil
}

// maxFreeLanes bounds the released lanes a subscription keeps for reuse.
const maxFreeLanes = 64

// continueLane runs, one after another on this goroutine, the runs parked in
// lane l behind the run that just ended at start (0: unknown), and releases
// l when none is left. If a handler calls runtime.Goexit, run hands the lane
// over to a new goroutine.
func (b *Bus) continueLane(l *lane, m *shard, start int64) int64 {
	s := l.s
	for d := b.laneNext(l); d != nil; d = b.laneNext(l) {
		b.shards[d.sh].queued.Add(-1)
		if s.cancelled.Load() {
			b.skip(d, s)
			continue
		}
		ctx := d.ctx
		if s.async != nil {
			ctx = d.actx
		}
		if start == 0 {
			start = b.clock.mono()
		}
		start, _ = b.run(ctx, m, d, s, l, &d.e, start, b.log.Enabled(ctx, slog.LevelDebug))
	}
	return start
}

// handOver continues lane l in a new goroutine of the bus, for a goroutine
// that cannot: its handler called runtime.Goexit. Callers hold a run that
// is not yet recorded as done, so its generation keeps Shutdown from waiting
// for the goroutines yet.
func (b *Bus) handOver(l *lane, m *shard) {
	b.async.Go(func() { b.continueLane(l, m, 0) })
}
