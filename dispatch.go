package eventbus

// This file holds how an event's matched runs are dispatched: the plan of
// where they happen, the acceptance that commits the bus to them, and the
// paths that hand them out. Acceptance is one step after which nothing can
// refuse the event: it is counted for Drain and Shutdown, takes its Once
// subscriptions and its lanes, and, if it has runs for the workers, enters
// their queue (under the queue's lock, all or none, when the queue has a
// limit).

// A plan says where the runs of one event happen.
type plan uint8

const (
	// planNone: no subscription matched; the event is only counted.
	planNone plan = iota
	// planInline: the publisher runs every run itself, one after another,
	// before it returns; nothing else ever sees the delivery. That is the
	// case when every run is sync and unordered and sync runs fall to the
	// publisher (WithMaxWorkers(0), or a PublishAndWait whose ctx can never
	// end).
	planInline
	// planSpread: runs go to the workers, the async goroutines, lanes and
	// the publisher; each goroutine that finishes one of them tells the
	// delivery, and the last one completes it.
	planSpread
)

// plan returns the plan for d, whose runs are matched.
func (b *Bus) plan(d *delivery) plan {
	switch {
	case len(d.runs) == 0:
		return planNone
	case d.nSync < len(d.runs), d.nOrdered > 0:
		return planSpread
	case b.publisherRunsSync(d.mode) && d.mode != waitUntilCtx:
		return planInline
	}
	return planSpread
}

// publisherRunsSync reports whether a publisher in mode runs its event's
// sync runs itself: without workers every publisher does, and a caller
// that waits with a ctx that can never end does rather than wait idle.
func (b *Bus) publisherRunsSync(mode waitMode) bool {
	return b.maxWorkers == 0 || mode == waitAndRun
}

// dispatch accepts d's event and hands its runs out according to its plan.
// It returns how many runs the event was accepted for, and, for a waiting
// publisher, what the runs returned.
func (b *Bus) dispatch(d *delivery) (int, error) {
	d.plan = b.plan(d)
	if d.plan == planNone {
		return 0, b.acceptEmpty(d)
	}
	d.hctx, d.dctx, d.cancel = b.contextFor(d)
	if d.plan == planInline {
		return b.runInline(d)
	}
	return b.spread(d)
}

// acceptEmpty counts an event that no subscription matched.
func (b *Bus) acceptEmpty(d *delivery) error {
	sh := d.shard
	d.recycle()
	if b.life.closed.Load() {
		return ErrClosed
	}
	b.shards[sh].published.Add(1)
	return nil
}

// runInline is planInline's path: accept, run every run here, release.
func (b *Bus) runInline(d *delivery) (int, error) {
	if err := d.accept(); err != nil {
		d.endCtx()
		d.recycle()
		return 0, err
	}
	b.accepted(d)
	runs := len(d.runs)
	r := b.publisherRunner(d)
	r.runOwn(d)
	var err error
	if d.mode.waits() {
		err = d.errs()
	}
	d.endCtx()
	g, sh := d.gen, d.shard
	d.recycle()
	g.release(sh)
	return runs, err
}

// spread is planSpread's path: accept (queueing the workers' runs), start
// the async runs, run the publisher's own runs, and wait if the publisher
// waits.
func (b *Bus) spread(d *delivery) (int, error) {
	if err := b.accept(d); err != nil {
		if d.cancel != nil {
			d.cancel()
		}
		d.recycle()
		return 0, err
	}
	b.accepted(d)
	runs := len(d.runs)
	if d.toAsync.prepare() > 0 {
		b.async.push(&d.toAsync)
	}
	waits := d.mode.waits()
	r := b.publisherRunner(d)
	r.runOwn(d) // d may be done with, and recycled, after this, unless waits
	if !waits {
		return runs, nil
	}
	return runs, b.await(d)
}

// accept accepts d's event, through the workers' queue when it has runs
// for them.
func (b *Bus) accept(d *delivery) error {
	if b.maxWorkers > 0 && !b.publisherRunsSync(d.mode) && d.nSync > 0 {
		return b.workers.admit(d)
	}
	return d.accept()
}

// accept commits the bus to d's event. It counts the event in the current
// generation (or returns ErrClosed), claims its Once subscriptions (dropping
// the runs of those another event claimed first), gives its ordered runs
// their lanes and sets its jobs. It calls no user code.
func (d *delivery) accept() error {
	g := d.b.life.acquire(d.shard)
	if g == nil {
		return ErrClosed
	}
	d.gen = g
	d.claimOnce()
	d.expectOutcomes()
	// Count every run before a lane may take one: a parked run can be run,
	// and finished, by its lane's holder at once.
	if d.plan != planInline { // the publisher alone runs an inline event's runs
		d.pending.Store(int32(len(d.runs)) + 1)
	}
	d.b.assignLanes(d)
	d.route()
	return nil
}

// claimOnce claims d's Once subscriptions for d's event and drops the runs
// of those that another event claimed first.
func (d *delivery) claimOnce() {
	if d.nOnce == 0 {
		return
	}
	for i := 0; i < len(d.runs); {
		s := d.runs[i].s
		if !s.once || s.claimed.CompareAndSwap(false, true) {
			i++
			continue
		}
		d.drop(i)
	}
}

// route sets d's jobs. The publisher runs the sync runs itself when it
// runs sync runs, and otherwise the workers do; async runs go to the async
// goroutines, except that a waiting publisher that runs sync runs but has
// none runs the last async run itself, since it would only wait for it.
func (d *delivery) route() {
	n := len(d.runs)
	ownLo, ownHi, workers, asyncEnd := 0, 0, 0, n
	switch {
	case !d.b.publisherRunsSync(d.mode):
		workers = d.nSync
	case d.nSync > 0:
		ownHi = d.nSync
	case d.mode == waitAndRun && !d.runs[n-1].parked:
		ownLo, ownHi, asyncEnd = n-1, n, n-1
	}
	d.own.set(d, ownLo, ownHi, eventRuns)
	d.toWorkers.set(d, 0, workers, eventRuns)
	d.toAsync.set(d, d.nSync, asyncEnd, eventRuns)
}

// accepted counts an accepted event and retires its Once subscriptions
// from the registry.
func (b *Bus) accepted(d *delivery) {
	b.shards[d.shard].published.Add(1)
	if d.nOnce == 0 {
		return
	}
	for i := range d.runs {
		if s := d.runs[i].s; s.once {
			b.retire(s)
		}
	}
}
