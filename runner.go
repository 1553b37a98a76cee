package eventbus

// This file holds the runner: the one place where the bus calls a handler.
// A runner belongs to the goroutine that runs handlers, a publisher or a
// goroutine of a queue, and is touched by nothing else. run recovers there
// what the handler leaves behind (a panic, runtime.Goexit), times the run
// with one clock reading, counts, logs and reports it, passes its lane on,
// and tells the delivery, in that order.

import (
	"context"
	"log/slog"
	"runtime/debug"
)

// A runner runs handlers on one goroutine.
type runner struct {
	b     *Bus
	m     *shard // the counters this goroutine adds to
	q     *queue // the queue this goroutine serves; nil for a publisher
	debug bool   // whether Debug logging was on when its current run began
	last  int64  // the clock reading at which its last run ended; 0: read anew
	// A queue goroutine's current run came from job (nil for a lane run),
	// and next is the run it goes on with: the next parked run of a lane
	// it held, or the next run of job, claimed before the current run
	// counts as finished.
	job  *job
	next runRef
	// coming is set while a queue goroutine was called for work and has
	// not looked for it yet (see queue.callLocked).
	coming bool
	busy   bool // a queue goroutine took runs and has not come back for more
	// series is how a goroutine counts the runs it makes back to back: as
	// one run in flight; and it holds what they delivered, and their
	// counts in their delivery's pending, until the series ends or moves
	// on to another delivery, so that those counters move once per
	// delivery and goroutine rather than once per run.
	series struct {
		on        bool
		delivered uint64
		held      *delivery
		heldRuns  int32
	}
	// ending is set when a handler or the observer ended the goroutine
	// with runtime.Goexit: whoever owns the runner must then hand on what
	// the goroutine holds.
	ending bool
}

// A call is one handler run as the runner sees it.
type call struct {
	ref        runRef
	ctx        context.Context // the handler's, or the publisher's for a handler that takes none
	slot       *runSlot        // ref's
	st         *subStats       // the stripe of its subscription's counters this goroutine adds to
	start, end int64           // clock readings
	err        error           // nil, or the run's *HandlerError
	state      callState
	watch      *runRecord // the watchdog's record of it, when the watchdog is on
}

// A callState is how far a call got.
type callState uint8

const (
	callStarting callState = iota // not begun
	callSkipped                   // its subscription was removed first: never began
	callRunning                   // in the handler
	callReturned                  // the handler returned
	callPanicked                  // the handler panicked; recovered
	callExited                    // the handler called runtime.Goexit: the goroutine is ending
	callDone                      // returned or panicked, and reported
)

// publisherRunner returns the runner for d's publisher.
func (b *Bus) publisherRunner(d *delivery) runner {
	return runner{b: b, m: &b.shards[d.shard], last: d.start}
}

// runOwn runs the runs that fall to the publisher, d.own, one after
// another, and then lets go of d (see leave).
func (r *runner) runOwn(d *delivery) {
	defer r.leave(d)
	if d.own.end == d.own.next {
		return
	}
	r.debug = r.b.enabled(d.ctx, slog.LevelDebug)
	r.beginSeries()
	for {
		if d.mode == waitUntilCtx && d.ctx.Err() != nil {
			return // a caller whose ctx ended starts no handler
		}
		i, ok := d.own.claimOwn()
		if !ok {
			return
		}
		r.run(runRef{d, i})
	}
}

// leave hands the publisher's runs that did not start (after runtime.Goexit,
// or when its ctx ended) to the bus's goroutines, and drops its hold on d.
func (r *runner) leave(d *delivery) {
	r.endSeries()
	if r.ending && d.plan == planInline {
		d.share()
	}
	if d.own.kind = restRuns; d.own.prepare() > 0 {
		r.b.queueFor(runRef{d, int(d.own.next)}).push(&d.own)
	}
	if d.plan == planSpread {
		d.finish()
	}
}

// share turns d, which its publisher ran alone, into a delivery like any
// other, because the publisher's goroutine is ending: what it did not run
// goes to the bus's goroutines, and whoever finishes last completes d.
func (d *delivery) share() {
	d.plan = planSpread
	d.mode = noWait
	d.pending.Store(int32(d.own.left()) + 1)
}

// runChain runs ref, which a queue goroutine took from job j, and then the
// runs that follow it on this goroutine (see runner.next).
func (r *runner) runChain(ref runRef, j *job) {
	r.job = j
	if j.kind == laneRun {
		// A lane's job (lane.next) holds one run, taken now. Forget it here,
		// while the run still holds the lane: once the run ends the lane may
		// be reused and its job rewritten, so continueJob must not claim
		// from it.
		r.job = nil
	}
	r.beginSeries()
	defer r.endSeries()
	for {
		r.m.queued.Add(-1) // it waited in a queue or a lane
		r.debug = r.b.enabled(ref.d.ctx, slog.LevelDebug)
		r.run(ref)
		if r.next.d == nil {
			return
		}
		if r.next.d != ref.d {
			r.release() // the next run is another delivery's: let this one complete
		}
		ref, r.next = r.next, runRef{}
	}
}

// beginSeries counts the runs to come on this goroutine as one in flight.
func (r *runner) beginSeries() {
	r.series.on = true
	r.m.inFlight.Add(1)
}

// endSeries adds up the series: it is no longer in flight, what it
// delivered counts, and the delivery it holds may complete.
func (r *runner) endSeries() {
	if r.series.on {
		r.m.inFlight.Add(-1)
		r.series.on = false
	}
	r.release()
}

// hold counts a finished run of d, which drops out of d's pending when the
// runner releases d.
func (r *runner) hold(d *delivery) {
	if r.series.held != d {
		r.release()
		r.series.held = d
	}
	r.series.heldRuns++
}

// release adds what the series delivered so far to the bus's counters and
// drops the held runs from their delivery's pending; the last may complete
// it, after which the runner must not touch it.
func (r *runner) release() {
	if r.series.delivered > 0 {
		r.m.delivered.Add(r.series.delivered)
		r.series.delivered = 0
	}
	if d := r.series.held; d != nil {
		n := r.series.heldRuns
		r.series.held, r.series.heldRuns = nil, 0
		d.finishRuns(n)
	}
}

// run runs ref, or skips it if its subscription is gone.
func (r *runner) run(ref runRef) {
	c := call{ref: ref, slot: ref.slot()}
	defer r.end(&c)
	s := c.slot.s
	if s.cancelled.Load() {
		c.state = callSkipped
		return
	}
	r.begin(&c)
	if err := s.invoke(c.ctx, &ref.d.e); err != nil {
		c.err = newHandlerError(ref, err)
	}
	c.state = callReturned
}

// begin starts the clock and the counters of c.
func (r *runner) begin(c *call) {
	if r.last == 0 {
		r.last = r.b.clock.mono()
	}
	c.start = r.last
	c.st = c.slot.s.stripe(r.m)
	c.st.started.Add(1)
	if r.b.watch.on() {
		c.watch = r.b.watchStart(c, r.m.idx)
	}
	c.state = callRunning
	c.ctx = c.ref.d.ctxFor(c.slot.s)
	if r.b.starter != nil {
		c.ctx = r.b.noteStart(c)
	}
}

// end is deferred by run. It recovers what the handler left behind, reads
// the clock and reports the run; its own deferred settle then finishes the
// run, also if the reporting (a logger, the observer) ends the goroutine.
func (r *runner) end(c *call) {
	if c.state == callRunning {
		r.fault(c, recover())
	}
	defer r.settle(c)
	if c.state == callSkipped {
		return
	}
	c.end = r.b.clock.mono()
	r.last = c.end
	r.report(c)
	if c.state != callExited {
		c.state = callDone
	}
}

// fault turns what a handler left behind instead of returning, a recovered
// panic value or nothing at all (runtime.Goexit), into c's *HandlerError.
func (r *runner) fault(c *call, v any) {
	he := newHandlerError(c.ref, errGoexit)
	c.err = he
	if v == nil {
		c.state = callExited // since Go 1.21, panic(nil) recovers a non-nil value
		return
	}
	r.b.m.panics.Add(1)
	c.st.panics.Add(1)
	he.Panic, he.Stack, he.Err = v, debug.Stack(), panicError(v)
	c.state = callPanicked
}

// report counts, logs and observes a run that began.
func (r *runner) report(c *call) {
	c.st.ended(c.end-c.start, c.err)
	if c.watch != nil {
		r.b.watchEnd(c.watch)
	}
	if c.err != nil {
		r.b.m.failed.Add(1)
		r.b.logFailure(c)
	} else if r.debug {
		r.b.logRun(slog.LevelDebug, "handler finished", c)
	}
	if r.b.obs != nil {
		r.b.noteRun(c)
	}
}

// settle finishes a run: it passes on the lane the run held, updates the
// bus's counters and tells the delivery, which may complete with it. A
// goroutine that is ending cannot go on with the lane, so it queues it.
func (r *runner) settle(c *call) {
	if c.state != callDone && c.state != callSkipped {
		r.ending = true
	}
	ref := c.ref
	s, l := c.slot.s, c.slot.lane
	if l != nil {
		r.passLane(l)
	}
	r.continueJob()
	if s.once {
		r.b.forget(s)
	}
	r.count(c)
	ref.d.record(ref.i, c.err)
	if ref.d.plan != planInline {
		r.hold(ref.d)
	}
}

// count counts c in the series: skipped, or delivered.
func (r *runner) count(c *call) {
	switch {
	case c.state == callSkipped:
		r.b.m.skipped.Add(1)
	case c.err == nil:
		r.series.delivered++
	}
}

// passLane passes lane l on from the run that just ended on this goroutine:
// a queue goroutine goes on with its next run itself; a publisher, or a
// goroutine that is ending, queues it.
func (r *runner) passLane(l *lane) {
	next, ok := l.advance()
	if !ok {
		return
	}
	if r.q != nil && !r.ending {
		r.next, r.job = next, nil
		return
	}
	r.b.queueLaneRun(l, next)
}

// continueJob claims the next run of the job the current run came from,
// for a queue goroutine that has no lane run to go on with: it runs a
// delivery's runs back to back while no other goroutine takes them, with
// one lock per delivery rather than one per run. It must claim before the
// current run counts as finished, which keeps the delivery alive.
func (r *runner) continueJob() {
	if r.job == nil || r.next.d != nil || r.ending {
		return
	}
	if next, ok := r.q.claimFrom(r.job); ok {
		r.next = next
	}
}

// newHandlerError reports err, what run ref's handler returned.
func newHandlerError(ref runRef, err error) *HandlerError {
	s, e := ref.sub(), &ref.d.e
	return &HandlerError{SubscriptionID: s.id, Name: s.name, EventType: e.Type, EventID: e.ID, ADWID: e.ADWID, Err: err}
}
