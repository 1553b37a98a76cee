package eventbus

// This file holds a delivery: one event on its way to the handlers that
// match it, from matching to the moment its last run has finished. Each
// field group below says who may touch it and when.

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
)

// A delivery is one published event with its matched runs. Deliveries are
// recycled per bus (a bus made inside a testing/synctest bubble only ever
// uses channels made in that bubble), so the publish path allocates nothing
// in the steady state.
type delivery struct {
	// Set by the publisher before the event is accepted; read-only after.
	b     *Bus
	e     Event
	ctx   context.Context // the publisher's
	hctx  context.Context // for the handlers that take the caller's ctx; see contextFor
	dctx  context.Context // for the handlers that take a detached one
	mode  waitMode
	plan  plan
	shard int   // the counters the publisher adds to: the delivery's own (see newDelivery)
	start int64 // the clock reading the publisher's first run starts from; 0: read anew
	gen   *generation
	runs  []runSlot // runs[:nSync] are sync, runs[nSync:] async, each in subscription order
	nSync int
	// How many of runs are of Once and of ordered subscriptions, and
	// take a ctx: most events have none, and skip the work for them.
	nOnce, nOrdered, nCtx int
	keys                  []string // when ordered runs matched: keys[i] is the ordering key of runs[i]

	// When the publisher waits: outcomes[i] is what run i returned,
	// written once by the goroutine that ran it before it counts as
	// finished.
	outcomes []runOutcome

	// The jobs that hand the runs out, set as the event is accepted. own
	// is the publisher's alone until it hands it back; the others are
	// guarded by the lock of the queue they are in.
	own, toWorkers, toAsync job

	// Atomic: shared by every goroutine that runs one of the runs.
	pending atomic.Int32 // runs not finished, plus one while the publisher holds d
	waiter  atomic.Int32 // a waiterState, when mode waits

	done   chan struct{} // when mode waits: receives once, when pending reaches zero
	cancel func()        // ends hctx, when it needs ending
	buf    [4]runSlot
}

// A runSlot is one matched run: a subscription that wants the event. It is
// set before the event is accepted, or, for lane and parked, under the
// lane's lock as it is accepted; it is read-only after.
type runSlot struct {
	s      *subscription
	lane   *lane // the lane the run holds, or is parked in, when s is ordered
	parked bool  // the run waits in lane behind an earlier one
}

// A runOutcome is what one run returned, for a waiting publisher.
type runOutcome struct {
	err  error  // nil, or the run's *HandlerError
	done uint32 // atomic: 1 once err is written and the run has finished
}

// A runRef names run i of d.
type runRef struct {
	d *delivery
	i int
}

func (r runRef) slot() *runSlot     { return &r.d.runs[r.i] }
func (r runRef) sub() *subscription { return r.d.runs[r.i].s }

// A waiterState says whether a waiting publisher is still there to take
// d's result, and so who recycles d.
type waiterState = int32

const (
	waiting   waiterState = iota // the publisher will read the result, then recycle d
	delivered                    // d's runs are all done; the publisher recycles d
	gaveUp                       // the publisher left; whoever completes d recycles it
)

// newDelivery makes a delivery for b's pool, with a counter shard of its
// own for good. The pool keeps deliveries per P (the runtime's per-CPU
// scheduler state), so publishers on different CPUs mostly use deliveries,
// and so shards and subscription stripes, that no other CPU writes.
func newDelivery(b *Bus) *delivery {
	d := &delivery{b: b, shard: int(b.deliveriesMade.Add(1)) & b.shardMask}
	d.runs = d.buf[:0]
	return d
}

// newDelivery returns a recycled delivery for e, published on ctx.
func (b *Bus) newDelivery(ctx context.Context, e *Event, mode waitMode, start int64) *delivery {
	d := b.deliveries.Get().(*delivery)
	d.e, d.ctx, d.mode, d.start = *e, ctx, mode, start
	if mode.waits() {
		if d.done == nil {
			d.done = make(chan struct{}, 1)
		}
		d.waiter.Store(waiting)
	}
	return d
}

// add appends a run of s, keeping the sync runs in front.
func (d *delivery) add(s *subscription) {
	if s.once {
		d.nOnce++
	}
	if s.order.ordered {
		d.nOrdered++
	}
	if s.kind.takesCtx() {
		d.nCtx++
	}
	d.runs = append(d.runs, runSlot{s: s})
	if !s.kind.sync() {
		return
	}
	if d.nSync < len(d.runs)-1 {
		// Rotate the new sync run in front of the async ones.
		copy(d.runs[d.nSync+1:], d.runs[d.nSync:len(d.runs)-1])
		d.runs[d.nSync] = runSlot{s: s}
	}
	d.nSync++
}

// drop removes run i before the event is accepted.
func (d *delivery) drop(i int) {
	s := d.runs[i].s
	if s.order.ordered {
		d.nOrdered--
	}
	if s.kind.takesCtx() {
		d.nCtx--
	}
	d.runs = slices.Delete(d.runs, i, i+1)
	if i < len(d.keys) {
		d.keys = slices.Delete(d.keys, i, i+1)
	}
	if i < d.nSync {
		d.nSync--
	}
}

// expectOutcomes makes room for the outcome of every run, when the
// publisher waits for them.
func (d *delivery) expectOutcomes() {
	if d.mode.waits() {
		d.outcomes = slices.Grow(d.outcomes[:0], len(d.runs))[:len(d.runs)]
	}
}

// record records that run i has finished with err (nil, or a
// *HandlerError), for a waiting publisher. Its count in pending is dropped
// apart, by finishRuns.
func (d *delivery) record(i int, err error) {
	if d.mode.waits() {
		o := &d.outcomes[i]
		o.err = err
		atomic.StoreUint32(&o.done, 1)
	}
}

// finishRuns drops n finished runs from pending; the last count to go
// completes d, after which the caller must not touch d.
func (d *delivery) finishRuns(n int32) {
	if d.pending.Add(-n) == 0 {
		d.complete()
	}
}

// finish drops one count of pending: a run's, or the publisher's hold. The
// last one completes d, after which d may be recycled.
func (d *delivery) finish() {
	if d.pending.Add(-1) == 0 {
		d.complete()
	}
}

// complete ends d: the generation that counts it lets Drain and Shutdown
// go on, and d goes to its waiting publisher, or back to the pool.
func (d *delivery) complete() {
	g, sh := d.gen, d.shard
	d.endCtx()
	if d.mode.waits() && d.waiter.CompareAndSwap(waiting, delivered) {
		d.done <- struct{}{} // buffered: the publisher takes it and recycles d
	} else {
		d.recycle()
	}
	g.release(sh)
}

// endCtx ends the ctx that d's handlers got, when it needs ending.
func (d *delivery) endCtx() {
	if d.cancel != nil {
		d.cancel()
	}
}

// errs joins the errors of d's failed runs, in run order. Every run must
// have finished.
func (d *delivery) errs() error {
	var errs []error
	for i := range d.outcomes {
		if err := d.outcomes[i].err; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// result returns a completed d's errors, for its waiting publisher, and
// recycles d.
func (d *delivery) result() error {
	err := d.errs()
	d.recycle()
	return err
}

// recycle returns d to its bus's pool. Nobody may hold d any more. (A
// handler may keep its ctx, but that is allocated apart from d.)
//
// It resets what the next use does not set before it reads it: the event
// and the rest are overwritten by newDelivery, match and accept (route
// sets all three jobs).
func (d *delivery) recycle() {
	clear(d.runs)
	clear(d.keys)
	clear(d.outcomes)
	d.runs, d.keys, d.outcomes = d.runs[:0], d.keys[:0], d.outcomes[:0]
	d.nSync, d.nOnce, d.nOrdered, d.nCtx = 0, 0, 0, 0
	d.ctx, d.hctx, d.dctx, d.cancel, d.gen = nil, nil, nil, nil, nil
	d.b.deliveries.Put(d)
}
