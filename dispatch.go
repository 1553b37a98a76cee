package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// publish is Publish (wait false) and PublishAndWait (wait true).
//
// An event is accepted at one instant, after which nothing can refuse it:
// the publisher counts it in the current generation (so Drain and Shutdown
// wait for it), claims the Once subscriptions it matched, and, if it has
// sync runs for the workers, links it into the queue, all at once under the
// queue's lock when it has to queue. Until then the publisher holds nothing
// that it would have to give back.
func (b *Bus) publish(ctx context.Context, e Event, wait bool) (err error) {
	if ctx == nil {
		return ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if e.ID == uuid.Nil {
		e.ID = newID()
	}
	runs := 0 // the runs the event is accepted for, for the observer
	if b.obs != nil {
		defer func() { b.notePublished(ctx, &e, wait, runs, err) }()
	}
	// One clock reading stamps the event and starts the first run.
	var start int64
	if e.Timestamp.IsZero() {
		e.Timestamp, start = b.clock.now()
	} else {
		start = b.clock.mono()
	}
	sh := b.pickShard()

	reg := b.reg.Load()
	if b.maxWorkers == 0 && reg.async == 0 && reg.ordered == 0 {
		// Everything runs here: match as we go, with no list to build.
		g := b.acquire(sh)
		if g == nil {
			return ErrClosed
		}
		b.shards[sh].published.Add(1)
		runs, err = b.runInline(ctx, g, sh, reg.subs, true, &e, start, wait)
		return err
	}

	d := b.pool.Get().(*delivery)
	d.mayOrder = reg.ordered > 0
	d.subs, d.nSync = b.match(reg.subs, &e, d.subs[:0])
	nAsync := len(d.subs) - d.nSync
	if d.mayOrder {
		// Ordering keys are user code: compute them before acceptance,
		// outside every lock.
		b.orderKeys(d, &e)
	}

	// A caller whose ctx can never end loses nothing by running handlers
	// itself while it waits. A caller whose ctx can end leaves the runs to the
	// workers, so that it can return when ctx ends, and runs them itself only
	// while no worker is free.
	helps := wait && b.endless(ctx)

	// Nothing to hand over to another goroutine: run it all here.
	if len(d.subs) == 0 || reg.ordered == 0 && (nAsync == 0 && (b.maxWorkers == 0 || helps && d.nSync == 1) ||
		helps && d.nSync == 0 && nAsync == 1) {
		g := b.acquire(sh)
		if g == nil {
			d.recycle()
			return ErrClosed
		}
		d.claimOnce()
		b.accepted(sh, d.subs)
		runs, err = b.runInline(ctx, g, sh, d.subs, false, &e, start, wait)
		d.recycle()
		return err
	}

	d.init(ctx, &e, sh, wait, helps)
	if nAsync > 0 {
		// Before acceptance: a run parked in a lane may start at once.
		d.asyncCtx(b, wait && !helps)
	}
	if b.maxWorkers > 0 && d.nSync > 0 {
		if err := b.enqueue(ctx, d); err != nil {
			if err != ErrClosed {
				b.m.rejected.Add(1)
			}
			d.abandon()
			return err
		}
	} else if !b.accept(d) {
		d.abandon()
		return ErrClosed
	}
	b.accepted(sh, d.subs)
	runs = d.runs

	// Start the async handlers. A helping caller with no sync handler to run
	// runs the last one itself instead of starting a goroutine for it, and a
	// waiting caller runs those for which every async goroutine is busy: it
	// might be the one goroutine that would take them.
	d.own = d.own[:0]
	end := len(d.subs)
	if helps && d.nSync == 0 && end > 0 {
		end--
		d.own = append(d.own, end)
	}
	for i := d.nSync; i < end; i++ {
		if !b.startAsync(d, d.subs[i], d.laneAt(i), wait) {
			d.own = append(d.own, i)
		}
	}

	b.runOwn(ctx, d, helps, start)
	if !wait {
		return nil
	}
	return b.await(ctx, d, helps)
}

// endless reports whether ctx can only end when the bus gives up on its
// handlers: it has no Done channel, or it is (or derives only from) the ctx of
// one of this bus's async handlers. Waiting with such a ctx can only end by
// the work being done, so the bus lets its caller help rather than wait.
func (b *Bus) endless(ctx context.Context) bool {
	done := ctx.Done()
	return done == nil || done == b.stop.Done()
}

// accept counts d in the current generation and claims its Once
// subscriptions; it reports false once the bus is closed. After accept,
// nothing may refuse d.
func (b *Bus) accept(d *delivery) bool {
	g := b.acquire(d.sh)
	if g == nil {
		return false
	}
	d.gen = g
	d.claimOnce()
	// Count every run before assignLanes parks any: a parked run may be
	// run, and finished, by its lane's runner at once.
	d.runs = len(d.subs)
	d.pending.Store(int32(d.runs) + 1) // +1: the publisher's own token
	b.assignLanes(d)
	return true
}

// enqueue accepts d and queues its sync runs for the workers, all or none,
// starting the workers on first use. When the queue is full it follows the
// policy: OverflowReject refuses at once; OverflowBlock waits for room until
// ctx ends, except that a publisher whose ctx can never end, which would wait
// forever if it were itself the worker that has to make the room, makes room
// instead by running queued handlers itself.
func (b *Bus) enqueue(ctx context.Context, d *delivery) error {
	helps := b.endless(ctx)
	q := &b.queue
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if q.limit == 0 || q.waiting < q.limit {
			break
		}
		if q.policy == OverflowReject {
			q.mu.Unlock()
			return ErrQueueFull
		}
		if helps {
			hd, i, ok := q.claimHeadLocked()
			q.mu.Unlock()
			if ok {
				b.runBatch(hd.ctx, &b.shards[d.sh], hd, i, 1, b.clock.mono(), true)
			}
			q.mu.Lock()
			continue
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	if !b.accept(d) {
		q.mu.Unlock()
		return ErrClosed
	}
	if !q.started {
		// Shutdown closes the queue before it waits for the workers, so
		// starting them here, with the queue open, cannot race with that.
		q.started = true
		q.waking += b.maxWorkers
		for i := range b.maxWorkers {
			b.workers.Go(func() { b.worker(i) })
		}
	}
	if d.helps && d.nSync > 0 {
		d.next = 1 // the caller runs the first sync handler itself
	}
	wake := false
	if n := d.nSync - d.next; n > 0 {
		b.shards[d.sh].queued.Add(int64(n))
		q.linkLocked(d)
		if wake = q.reserveLocked(); !wake && q.idle+q.waking == 0 {
			q.wakeWaitersLocked() // no worker is free: waiting callers may help
		}
	}
	q.mu.Unlock()
	if wake {
		q.ready.Signal()
	}
	return nil
}

// match appends to dst the subscriptions of subs that want e, sync handlers
// first, each group in subscription order, and returns how many are sync. It
// claims nothing: Once subscriptions are claimed when the event is accepted.
func (b *Bus) match(subs []*subscription, e *Event, dst []*subscription) ([]*subscription, int) {
	nSync := 0
	for _, s := range subs {
		if !b.wants(s, e) {
			continue
		}
		dst = append(dst, s)
		if s.handler != nil {
			// Keep sync handlers in front: rotate s before the first async one.
			copy(dst[nSync+1:], dst[nSync:len(dst)-1])
			dst[nSync] = s
			nSync++
		}
	}
	return dst, nSync
}

// wants reports whether e passes all of s's filters, and, for a Once
// subscription, whether it is still unclaimed.
func (b *Bus) wants(s *subscription, e *Event) bool {
	if s.once && s.claimed.Load() {
		return false
	}
	for i := range s.filters {
		f := &s.filters[i]
		if !f.fieldsMatch(e) || f.Match != nil && !b.callMatch(s, f.Match, e) {
			return false
		}
	}
	return true
}

// callMatch calls a Filter.Match predicate. A panic in it is logged and makes
// the filter reject the event; it never reaches the publisher.
func (b *Bus) callMatch(s *subscription, match func(Event) bool, e *Event) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			b.logFilterPanic(s, e, v, "filter panicked")
		}
	}()
	return match(*e)
}

// claimOnce claims d's Once subscriptions for d's event and drops from d.subs
// (and d.keys) those that another event claimed first.
func (d *delivery) claimOnce() {
	for i := 0; i < len(d.subs); {
		s := d.subs[i]
		if !s.once || s.claimed.CompareAndSwap(false, true) {
			i++
			continue
		}
		d.drop(i)
	}
}

// drop removes run i from d.subs, and its key from d.keys.
func (d *delivery) drop(i int) {
	d.subs = slices.Delete(d.subs, i, i+1)
	if i < len(d.keys) {
		d.keys = slices.Delete(d.keys, i, i+1)
	}
	if i < d.nSync {
		d.nSync--
	}
}

// accepted counts an accepted event and retires its Once subscriptions from
// the registry.
func (b *Bus) accepted(sh int, subs []*subscription) {
	b.shards[sh].published.Add(1)
	for _, s := range subs {
		if s.once {
			b.retire(s)
		}
	}
}

// runInline runs subs one after the other on the publisher's goroutine and,
// if wait, returns their errors joined; subs holds at most one async
// subscription. If filter, subs is the whole registry and runInline runs
// only those that want e, claiming and retiring a Once subscription just
// before it runs. It releases g when done, also when a handler calls
// runtime.Goexit; the listed runs that did not start then count as skipped.
func (b *Bus) runInline(ctx context.Context, g *generation, sh int, subs []*subscription, filter bool, e *Event, start int64, wait bool) (runs int, _ error) {
	if len(subs) == 0 {
		g.release(sh)
		return 0, nil
	}
	m := &b.shards[sh]
	debug := b.log.Enabled(ctx, slog.LevelDebug)
	next, delivered := 0, 0
	m.inFlight.Add(1) // one run at a time
	defer func() {
		m.inFlight.Add(-1)
		if delivered > 0 {
			m.delivered.Add(uint64(delivered))
		}
		if !filter && next < len(subs) { // after runtime.Goexit only
			b.m.skipped.Add(uint64(len(subs) - next))
			for _, s := range subs[next:] {
				b.runEnded(s)
			}
		}
		g.release(sh)
	}()
	var errs []error
	for next < len(subs) {
		s := subs[next]
		next++
		if filter {
			if !b.wants(s, e) || s.once && !s.claimed.CompareAndSwap(false, true) {
				continue
			}
			if s.once {
				b.retire(s)
			}
		}
		runs++
		if s.cancelled.Load() {
			b.m.skipped.Add(1)
			continue
		}
		hctx := ctx
		if s.async != nil {
			hctx = b.detach(ctx)
		}
		end, err := b.run(hctx, m, nil, s, nil, e, start, debug)
		start = end
		if err == nil {
			delivered++
		} else if wait {
			errs = append(errs, err)
		}
	}
	return runs, errors.Join(errs...)
}

// runOwn runs the handlers of d that fall to the publisher: the sync ones when
// there are no workers, those a waiting caller claims, and the async ones in
// d.own. Then it drops the publisher's token. If a handler calls
// runtime.Goexit, the runs that did not start count as skipped, so that d
// still completes.
func (b *Bus) runOwn(ctx context.Context, d *delivery, helps bool, start int64) {
	m := &b.shards[d.sh]
	next := 0 // of d.own
	defer func() {
		for ; next < len(d.own); next++ { // after runtime.Goexit only
			b.abandon(d, d.own[next], m)
		}
		d.finish()
	}()
	switch {
	case b.maxWorkers == 0 && d.nSync > 0:
		start = b.runBatch(ctx, m, d, 0, d.nSync, start, false)
	case d.wait && d.nSync > 0:
		if helps {
			start = b.runBatch(ctx, m, d, 0, 1, start, false)
		} else {
			start = 0
		}
		b.helpOwn(ctx, d, !helps, start)
	}
	for next < len(d.own) {
		i := d.own[next]
		next++
		b.runAsyncHere(d, d.subs[i], d.laneAt(i))
	}
}

// abandon counts run i of d, which will never start because a handler
// called runtime.Goexit on this goroutine, as skipped, and hands the lane it
// holds, if any, to a new goroutine first, while d still counts the run.
func (b *Bus) abandon(d *delivery, i int, m *shard) {
	s, l := d.subs[i], d.laneAt(i)
	if l != nil {
		b.handOver(l, m)
	}
	b.skip(d, s)
}

// helpOwn runs d's unclaimed sync runs on the calling goroutine, all of them,
// or, if onlyIfStarved, only while no worker is free to take them. last is
// when the caller's previous run ended, or 0.
func (b *Bus) helpOwn(ctx context.Context, d *delivery, onlyIfStarved bool, last int64) {
	m := &b.shards[d.sh]
	for ctx.Err() == nil {
		i, ok := b.queue.claim(d, onlyIfStarved)
		if !ok {
			return
		}
		if last == 0 {
			last = b.clock.mono()
		}
		last = b.runBatch(ctx, m, d, i, 1, last, true)
	}
}

// await waits for a PublishAndWait caller's delivery to complete. While it
// waits and every worker is busy (the queue wakes it then), the caller helps:
// with its own queued runs, and, if its ctx can never end, with any queued
// run, since one of them may be what its event waits for (a run that holds
// the lane its ordered run is parked in, say) and the caller may be the
// worker that would run it.
func (b *Bus) await(ctx context.Context, d *delivery, helps bool) error {
	m := &b.shards[d.sh]
	for {
		select {
		case <-d.done:
			b.queue.unwait(d)
			return d.result()
		default:
		}
		if helps {
			// The async goroutines are all busy and runs wait for one: this
			// caller may be the goroutine that would take them.
			if r, ok := b.asyncQ.pop(b); ok {
				b.runAsyncRun(r)
				continue
			}
		}
		if c, ok := b.queue.waitFor(d, helps, b.maxWorkers > 0); ok {
			b.runBatch(c.d.ctx, m, c.d, c.i, c.n, b.clock.mono(), true)
			if err := ctx.Err(); err != nil {
				b.queue.unwait(d)
				return err
			}
			continue
		}
		select {
		case <-d.done:
			b.queue.unwait(d)
			return d.result()
		case <-ctx.Done():
			b.queue.unwait(d)
			return ctx.Err()
		case <-d.help:
		}
	}
}

// runBatch runs d's sync runs i..i+n-1 one after another on this goroutine,
// the first starting at start, and returns when the last ended. Each run
// ends where the next starts, so a batch reads the clock once per run. If
// queued, the runs were counted in Metrics.Queued, until each starts. If a
// handler calls runtime.Goexit, the runs of the batch that did not start
// count as skipped.
func (b *Bus) runBatch(ctx context.Context, m *shard, d *delivery, i, n int, start int64, queued bool) int64 {
	debug := b.log.Enabled(ctx, slog.LevelDebug)
	j := i
	defer func() {
		if j < i+n { // after runtime.Goexit only
			if queued {
				m.queued.Add(-int64(i + n - j))
			}
			for ; j < i+n; j++ {
				b.abandon(d, j, m)
			}
		}
	}()
	for j < i+n {
		s, l := d.subs[j], d.laneAt(j) // read before the run: d may be recycled after it
		j++
		if queued {
			m.queued.Add(-1)
		}
		if s.cancelled.Load() {
			b.skip(d, s)
		} else {
			start, _ = b.run(ctx, m, d, s, l, &d.e, start, debug)
		}
		if l != nil {
			start = b.continueLane(l, m, start)
		}
	}
	return start
}

// skip counts s's run for d, which will never start.
func (b *Bus) skip(d *delivery, s *subscription) {
	b.m.skipped.Add(1)
	b.runEnded(s)
	d.finish()
}

// runEnded forgets a Once subscription once its one run is over, so that
// Unsubscribe can find it, and skip its run, until then.
func (b *Bus) runEnded(s *subscription) {
	if s.once {
		b.forget(s)
	}
}

// run calls one handler, which started at start (a mono reading), and returns
// when it ended. It is the only place the bus calls handlers, and recovers
// there: a panic or runtime.Goexit becomes a *HandlerError. It logs the run
// once (at Debug only if debug), counts it per subscription and a failure on
// the bus, and tells the observer. With d non-nil, the run is one of d's:
// run also counts it in m as in flight and, if it succeeded, delivered, and
// then records it in d, also when the handler (or the observer) calls
// runtime.Goexit, so Drain never sees d's runs done before they are counted.
// With d nil the caller counts in m. If the run holds lane l and its
// goroutine ends with runtime.Goexit, run hands l over first.
func (b *Bus) run(ctx context.Context, m *shard, d *delivery, s *subscription, l *lane, e *Event, start int64, debug bool) (end int64, err error) {
	if d != nil {
		m.inFlight.Add(1)
	}
	st := s.stripe(m)
	st.started.Add(1)
	var rec *runRecord
	if b.watch.after > 0 {
		rec = b.watchStart(s, e, start, m.idx)
	}
	// returned: the handler returned; goexit: it called runtime.Goexit
	// instead (a panic is recovered below and the goroutine goes on);
	// reported: the run was logged and observed, which the observer can cut
	// short with runtime.Goexit too.
	returned, goexit, reported := false, false, false
	// Deferred first, so it runs last: also if the goroutine is ending.
	defer func() {
		if l != nil && (goexit || !reported) {
			b.handOver(l, m) // this goroutine is ending; d still counts the run
		}
		b.runEnded(s)
		if d != nil {
			m.inFlight.Add(-1)
			if err == nil {
				m.delivered.Add(1)
			}
			d.record(err)
		} else if !reported && err == nil {
			m.delivered.Add(1) // the observer ended the goroutine: the caller cannot count it
		}
	}()
	defer func() {
		if !returned {
			v := recover()
			err = b.fault(s, e, v)
			end = b.clock.mono()
			if v != nil {
				st.panics.Add(1)
			} else {
				goexit = true // since Go 1.21, panic(nil) recovers a non-nil value
			}
		}
		if rec != nil {
			b.watchEnd(rec)
		}
		st.ended(end-start, err)
		if err != nil {
			b.failed(ctx, s, e, time.Duration(end-start), err.(*HandlerError))
		} else if debug {
			b.logRun(ctx, slog.LevelDebug, "handler finished", s, e, time.Duration(end-start), nil)
		}
		if b.obs != nil {
			b.noteRun(ctx, s, e, start, end, err)
		}
		reported = true
	}()
	if s.handler != nil {
		err = s.handler(*e)
	} else {
		err = s.async(ctx, *e)
	}
	end = b.clock.mono()
	returned = true
	if err != nil {
		err = &HandlerError{SubscriptionID: s.id, EventType: e.Type, Err: err}
	}
	return end, err
}

// fault turns what a handler left behind instead of returning, a recovered
// panic value or nothing at all (runtime.Goexit), into a *HandlerError.
func (b *Bus) fault(s *subscription, e *Event, v any) *HandlerError {
	he := &HandlerError{SubscriptionID: s.id, EventType: e.Type, Err: errGoexit}
	if v == nil {
		return he
	}
	b.m.panics.Add(1)
	he.Panic = v
	he.Stack = debug.Stack()
	he.Err = panicError(v)
	return he
}

func panicError(v any) error {
	if err, ok := v.(error); ok {
		return fmt.Errorf("panic: %w", err)
	}
	return fmt.Errorf("panic: %v", v)
}

// failed counts and logs a failed run.
func (b *Bus) failed(ctx context.Context, s *subscription, e *Event, took time.Duration, he *HandlerError) {
	b.m.failed.Add(1)
	msg := "handler failed"
	if he.Stack != nil {
		msg = "handler panicked"
	}
	b.logRun(ctx, slog.LevelError, msg, s, e, took, he)
}

// Log keys, spelled like the JSON tags of Event.
const (
	keySubscriptionID   = "subscription_id"
	keySubscriptionName = "subscription_name"
	keyEventID          = "event_id"
	keyEventType        = "event_type"
	keyADWID            = "adw_id"
	keyDuration         = "duration"
	keyError            = "error"
	keyStack            = "stack"
)

// logRun logs one run. Nothing is formatted for a disabled level. A panic
// in the logger's handler loses the line but nothing else.
func (b *Bus) logRun(ctx context.Context, level slog.Level, msg string, s *subscription, e *Event, took time.Duration, he *HandlerError) {
	if !b.log.Enabled(ctx, level) {
		return
	}
	defer func() { _ = recover() }() // the logger's own failure: nowhere left to report it
	var buf [9]slog.Attr
	attrs := append(runAttrs(buf[:0], s, e.Type, e.ID, e.ADWID), slog.Duration(keyDuration, took))
	if he != nil {
		attrs = append(attrs, slog.Any(keyError, he))
		if he.Stack != nil {
			attrs = append(attrs, slog.String(keyStack, string(he.Stack)))
		}
	}
	b.log.LogAttrs(ctx, level, msg, attrs...)
}

// runAttrs appends the attributes that name a run of s for an event.
func runAttrs(attrs []slog.Attr, s *subscription, typ EventType, id uuid.UUID, adwID string) []slog.Attr {
	attrs = append(attrs, slog.String(keySubscriptionID, string(s.id)))
	if s.name != "" {
		attrs = append(attrs, slog.String(keySubscriptionName, s.name))
	}
	return append(attrs,
		slog.String(keyEventType, string(typ)),
		slog.Any(keyEventID, id),
		slog.String(keyADWID, adwID),
	)
}

// logFilterPanic logs a Filter.Match predicate or an OrderedBy key function
// that panicked.
func (b *Bus) logFilterPanic(s *subscription, e *Event, v any, msg string) {
	ctx := context.Background()
	if !b.log.Enabled(ctx, slog.LevelError) {
		return
	}
	defer func() { _ = recover() }()
	b.log.LogAttrs(ctx, slog.LevelError, msg,
		slog.String(keySubscriptionID, string(s.id)),
		slog.String(keyEventType, string(e.Type)),
		slog.Any(keyEventID, e.ID),
		slog.Any(keyError, panicError(v)),
		slog.String(keyStack, string(debug.Stack())),
	)
}

// A delivery is one accepted event on its way to handlers that the publisher
// does not run alone: queued sync runs, async runs, or a waiting caller.
// Deliveries without async runs go back to their bus's pool once the last
// run is done with them (or, for PublishAndWait, once the caller has read the
// result), so the pool path allocates nothing in the steady state. The pool
// is per bus, so a bus made inside a testing/synctest bubble only ever uses
// channels made in that bubble.
type delivery struct {
	b     *Bus
	e     Event
	ctx   context.Context // the publisher's
	actx  context.Context // for async handlers
	gen   *generation
	sh    int             // the shard the publisher picked
	subs  []*subscription // matched: subs[:nSync] sync, the rest async
	nSync int
	runs  int  // the runs d was accepted for
	next  int  // next sync run to claim; guarded by queue.mu
	wait  bool // PublishAndWait
	helps bool // PublishAndWait with a ctx that can never end

	pending atomic.Int32  // runs not finished, +1 until the publisher is done
	done    chan struct{} // wait: receives one value when pending reaches zero
	help    chan struct{} // wait: receives a value when the caller should help
	waiting bool          // listed in queue.waiters; guarded by queue.mu
	errMu   sync.Mutex
	errs    []error // wait: the failed runs
	cancel  func()  // releases actx, when it needs releasing

	lanes    []*lane  // when ordered runs matched: lanes[i] is the lane subs[i] holds
	keys     []string // when ordered runs matched: keys[i] is the ordering key of subs[i]
	mayOrder bool     // the registry it matched against had ordered subscriptions
	own      []int    // async runs (indexes into subs) the publisher runs itself

	prev, nextInQueue *delivery // queue links; guarded by queue.mu
	buf               [4]*subscription
}

// newDelivery makes a delivery for b's pool; it stays b's when recycled.
func newDelivery(b *Bus) *delivery {
	d := &delivery{b: b}
	d.subs = d.buf[:0]
	return d
}

// init prepares d, whose subs and nSync are already matched, for the event e.
func (d *delivery) init(ctx context.Context, e *Event, sh int, wait, helps bool) {
	d.e, d.ctx, d.sh, d.wait, d.helps = *e, ctx, sh, wait, helps
	if wait && d.done == nil {
		d.done = make(chan struct{}, 1)
		d.help = make(chan struct{}, 1)
	}
}

// recycle returns d to its bus's pool. Nobody may hold d any more. (An async
// handler may keep its ctx, but that is allocated apart from d.)
func (d *delivery) recycle() {
	pool := &d.b.pool
	if d.help != nil {
		select {
		case <-d.help: // a wake-up that came too late
		default:
		}
	}
	clear(d.subs)
	clear(d.errs)
	clear(d.lanes)
	clear(d.keys)
	b, done, help, subs, errs, lanes, keys, own := d.b, d.done, d.help, d.subs[:0], d.errs[:0], d.lanes[:0], d.keys[:0], d.own[:0]
	*d = delivery{b: b, done: done, help: help, subs: subs, errs: errs, lanes: lanes, keys: keys, own: own} // subs may point into d.buf: still d's
	pool.Put(d)
}

// abandon recycles a delivery that was refused before anyone saw it.
func (d *delivery) abandon() {
	if d.cancel != nil {
		d.cancel()
	}
	d.recycle()
}

// record records the outcome of one run of d.
func (d *delivery) record(err error) {
	if err != nil && d.wait {
		d.errMu.Lock()
		d.errs = append(d.errs, err)
		d.errMu.Unlock()
	}
	d.finish()
}

// finish records that one run (or the publisher) is done with d. The last
// one completes d; after that d may be recycled, so callers must not touch
// d after their last finish.
func (d *delivery) finish() {
	if d.pending.Add(-1) != 0 {
		return
	}
	g, sh := d.gen, d.sh
	if d.cancel != nil {
		d.cancel()
	}
	if d.wait {
		d.done <- struct{}{} // the caller recycles d after reading the result
	} else {
		d.recycle()
	}
	g.release(sh)
}

// result is called by the PublishAndWait caller once d is done: it returns
// the joined errors and recycles d.
func (d *delivery) result() error {
	err := errors.Join(d.errs...)
	d.recycle()
	return err
}

// pickShard spreads publishers over the shards at random: the runtime's
// per-thread generator makes this cheap, and unlike a shared round-robin
// counter it needs no shared write.
func (b *Bus) pickShard() int { return int(rand.Uint32()) & b.shardMask }
