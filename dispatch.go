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
	d.b, d.mayOrder = b, reg.ordered > 0
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

	d.init(b, ctx, &e, sh, wait, helps)
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

// startAsync runs s's handler for d in a goroutine of the bus: an idle one
// if there is one, a new one while fewer than maxAsync exist, and otherwise
// the first one that finishes its current run; except that for a waiter (a
// PublishAndWait caller) it reports false instead of queueing the run, and
// the caller runs it itself.
func (b *Bus) startAsync(d *delivery, s *subscription, l *lane, waiter bool) bool {
	q := &b.asyncQ
	q.mu.Lock()
	if n := len(q.idle); n > 0 {
		w := q.idle[n-1]
		q.idle[n-1] = nil
		q.idle = q.idle[:n-1]
		q.mu.Unlock()
		w <- asyncRun{d: d, s: s, l: l} // buffered: never blocks
		return true
	}
	if q.running < q.max {
		q.running++
		q.mu.Unlock()
		b.async.Go(func() { b.asyncLoop(asyncRun{d: d, s: s, l: l}) })
		return true
	}
	if waiter {
		q.mu.Unlock()
		return false
	}
	r := &asyncRun{d: d, s: s, l: l}
	if q.tail == nil {
		q.head = r
	} else {
		q.tail.next = r
	}
	q.tail = r
	b.shards[d.sh].queued.Add(1)
	q.mu.Unlock()
	b.queue.wakeWaiters() // a waiting caller may be the goroutine it waits for
	return true
}

// pop takes the first async run waiting for a goroutine, if any.
func (q *asyncQueue) pop(b *Bus) (asyncRun, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.head
	if r == nil {
		return asyncRun{}, false
	}
	q.head = r.next
	if q.head == nil {
		q.tail = nil
	}
	b.shards[r.d.sh].queued.Add(-1)
	return *r, true
}

// asyncLoop runs async handler runs, r first, one after another: the queued
// ones, then those handed to it while it waits idle. It exits when there is
// nothing to do and enough goroutines already wait idle, or when the bus
// shuts down. Reusing goroutines spares a goroutine start, and the growth of
// its stack, per run. If a handler calls runtime.Goexit, a new goroutine
// takes over.
func (b *Bus) asyncLoop(r asyncRun) {
	exited := false
	defer func() {
		if !exited {
			b.async.Go(func() { b.asyncLoop(asyncRun{}) })
		}
	}()
	q := &b.asyncQ
	var inbox chan asyncRun
	for {
		if r.d != nil {
			b.runAsyncRun(r)
		}
		q.mu.Lock()
		if next := q.head; next != nil {
			q.head = next.next
			if q.head == nil {
				q.tail = nil
			}
			b.shards[next.d.sh].queued.Add(-1)
			q.mu.Unlock()
			r = *next
			continue
		}
		if q.closed || len(q.idle) >= q.maxIdle {
			q.running--
			q.mu.Unlock()
			exited = true
			return
		}
		if inbox == nil {
			inbox = make(chan asyncRun, 1)
		}
		q.idle = append(q.idle, inbox)
		q.mu.Unlock()
		if r = <-inbox; r.d == nil { // closeIdle
			q.mu.Lock()
			q.running--
			q.mu.Unlock()
			exited = true
			return
		}
	}
}

// asyncQueue holds the goroutines running async handlers (at most max of
// them, WithMaxAsync), the idle ones among them (at most maxIdle), and the
// runs waiting for one when all max are busy.
type asyncQueue struct {
	mu         sync.Mutex
	max        int
	maxIdle    int
	running    int             // goroutines in asyncLoop, busy or idle
	idle       []chan asyncRun // inboxes of the idle goroutines, last parked last
	head, tail *asyncRun
	closed     bool // set by Shutdown: goroutines exit instead of idling
}

// An asyncRun is an async handler run on its way to a goroutine.
type asyncRun struct {
	d    *delivery
	s    *subscription
	l    *lane // when s is ordered: the lane this run holds
	next *asyncRun
}

// closeIdle makes the idle async goroutines exit, and those that finish
// their runs exit instead of idling.
func (q *asyncQueue) closeIdle() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for i, w := range q.idle {
		w <- asyncRun{}
		q.idle[i] = nil
	}
	q.idle = q.idle[:0]
}

// runAsyncRun runs, or, if its subscription is gone, skips, an async run
// taken from the wait list, and then the runs parked behind it in its lane.
func (b *Bus) runAsyncRun(r asyncRun) {
	if r.s.cancelled.Load() {
		m := &b.shards[r.d.sh] // before skip: r.d may be recycled after it
		b.skip(r.d, r.s)
		if r.l != nil {
			b.continueLane(r.l, m, 0)
		}
		return
	}
	b.runAsyncHere(r.d, r.s, r.l)
}

// runAsyncHere runs an async handler of d on the calling goroutine, and then
// the runs parked behind it in its lane l, if s is ordered.
func (b *Bus) runAsyncHere(d *delivery, s *subscription, l *lane) {
	m := &b.shards[d.sh]
	end, _ := b.run(d.actx, m, d, s, l, &d.e, b.clock.mono(), b.log.Enabled(d.actx, slog.LevelDebug))
	if l != nil {
		b.continueLane(l, m, end)
	}
}

// skip counts s's run for d, which will never start.
func (b *Bus) skip(d *delivery, s *subscription) {
	b.m.skipped.Add(1)
	b.runEnded(s)
	d.finish()
}

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
		l := &lane{s: s, key: key}
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
	return nil
}

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
	returned, reported := false, false
	// Deferred first, so it runs last: also if the handler, or the observer
	// while the run is reported, calls runtime.Goexit.
	defer func() {
		if l != nil && (!returned || !reported) {
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
			}
		}
		if rec != nil {
			b.watchEnd(rec)
		}
		st.ended(end-start, err)
		if err != nil {
			b.failed(ctx, s, e, time.Duration(end-start), err)
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
func (b *Bus) failed(ctx context.Context, s *subscription, e *Event, took time.Duration, err error) {
	b.m.failed.Add(1)
	msg := "handler failed"
	var he *HandlerError
	if errors.As(err, &he) && he.Stack != nil {
		msg = "handler panicked"
	}
	b.logRun(ctx, slog.LevelError, msg, s, e, took, err)
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
func (b *Bus) logRun(ctx context.Context, level slog.Level, msg string, s *subscription, e *Event, took time.Duration, err error) {
	if !b.log.Enabled(ctx, level) {
		return
	}
	defer func() { _ = recover() }() // the logger's own failure: nowhere left to report it
	var buf [9]slog.Attr
	attrs := append(buf[:0], slog.String(keySubscriptionID, string(s.id)))
	if s.name != "" {
		attrs = append(attrs, slog.String(keySubscriptionName, s.name))
	}
	attrs = append(attrs,
		slog.String(keyEventType, string(e.Type)),
		slog.Any(keyEventID, e.ID),
		slog.String(keyADWID, e.ADWID),
		slog.Duration(keyDuration, took),
	)
	if err != nil {
		attrs = append(attrs, slog.Any(keyError, err))
		var he *HandlerError
		if errors.As(err, &he) && he.Stack != nil {
			attrs = append(attrs, slog.String(keyStack, string(he.Stack)))
		}
	}
	b.log.LogAttrs(ctx, level, msg, attrs...)
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

func newPooledDelivery() any {
	d := new(delivery)
	d.subs = d.buf[:0]
	return d
}

// init prepares d, whose subs and nSync are already matched, for the event e.
func (d *delivery) init(b *Bus, ctx context.Context, e *Event, sh int, wait, helps bool) {
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

// asyncCtx sets d.actx: for a caller whose ctx can end, the caller's ctx;
// otherwise one with the publisher's values but no cancellation; either way
// one that Shutdown cancels when it gives up waiting.
func (d *delivery) asyncCtx(b *Bus, callers bool) {
	if !callers {
		d.actx = b.detach(d.ctx)
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	stop := context.AfterFunc(b.stop, cancel)
	d.actx = &handlerCtx{Context: ctx, bus: b}
	d.cancel = func() {
		stop()
		cancel()
	}
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

// handlerKey is the context key under which an async handler's ctx holds the
// handler's bus, so that Drain and Shutdown can refuse to wait for their own
// caller.
type handlerKey struct{}

// inHandler reports whether ctx is, or derives from, the ctx of one of b's
// async handlers.
func (b *Bus) inHandler(ctx context.Context) bool { return ctx.Value(handlerKey{}) == b }

// detach returns the ctx for async handlers whose publisher does not wait, or
// waits with a ctx that cannot end: the publisher's values without its
// cancellation (context.WithoutCancel, which also hides its cause), ended
// instead by Shutdown giving up.
func (b *Bus) detach(ctx context.Context) context.Context {
	return &detached{values: context.WithoutCancel(ctx), bus: b}
}

type detached struct {
	values context.Context
	bus    *Bus
}

func (c *detached) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *detached) Done() <-chan struct{}       { return c.bus.stop.Done() }
func (c *detached) Err() error                  { return c.bus.stop.Err() }
func (c *detached) String() string              { return "eventbus.detached" }

func (c *detached) Value(key any) any {
	if _, ok := key.(handlerKey); ok {
		return c.bus
	}
	return c.values.Value(key)
}

// AfterFunc lets context.WithCancel and friends, given c as parent, follow
// its cancellation without starting a goroutine.
func (c *detached) AfterFunc(f func()) func() bool { return context.AfterFunc(c.bus.stop, f) }

// handlerCtx marks the ctx of async handlers whose caller waits with a ctx
// that can end.
type handlerCtx struct {
	context.Context
	bus *Bus
}

func (c *handlerCtx) Value(key any) any {
	if _, ok := key.(handlerKey); ok {
		return c.bus
	}
	return c.Context.Value(key)
}

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

// A generation counts accepted events that have not finished, in one counter
// per shard so that publishers on different cores do not contend. The
// current generation holds one token per shard; Drain and Shutdown seal it
// (install a new one and drop the tokens) and wait until every shard of it
// reaches zero.
type generation struct {
	shards []genShard
	left   atomic.Int32  // shards not yet at zero
	done   chan struct{} // closed when left reaches zero
	final  bool          // installed by Shutdown: accepts nothing
}

type genShard struct {
	n atomic.Int64
	_ [120]byte // a cache line (and its prefetched pair) per shard
}

func newGeneration(shards int) *generation {
	g := &generation{shards: make([]genShard, shards), done: make(chan struct{})}
	for i := range g.shards {
		g.shards[i].n.Store(1)
	}
	g.left.Store(int32(shards))
	return g
}

func closedGeneration(shards int) *generation {
	g := &generation{shards: make([]genShard, shards), done: make(chan struct{}), final: true}
	close(g.done)
	return g
}

// busy reports whether g counts any event: a scan that sees only the tokens
// proves that every event accepted before it began has finished.
func (g *generation) busy() bool {
	var n int64
	for i := range g.shards {
		n += g.shards[i].n.Load()
	}
	return n > int64(len(g.shards))
}

// acquire counts one accepted event in shard sh of the current generation;
// it returns nil once the bus is closed.
func (b *Bus) acquire(sh int) *generation {
	for {
		g := b.gen.Load()
		c := &g.shards[sh].n
		n := c.Load()
		if n == 0 {
			if g.final {
				return nil
			}
			continue // sealed and finished: its successor is already installed
		}
		if c.CompareAndSwap(n, n+1) {
			return g
		}
	}
}

// release ends one count (or the token) of shard sh. A shard's count reaches
// zero only once, after its token is dropped, and acquire never counts in a
// shard at zero.
func (g *generation) release(sh int) {
	if g.shards[sh].n.Add(-1) == 0 && g.left.Add(-1) == 0 {
		close(g.done)
	}
}

// sealLocked installs next as the current generation and drops the old one's
// tokens. b.lifeMu must be held.
func (b *Bus) sealLocked(next *generation) {
	old := b.gen.Swap(next)
	b.sealed = append(b.sealed, old)
	for sh := range old.shards {
		old.release(sh)
	}
}

// unfinishedLocked forgets the sealed generations that have finished and
// returns the others, oldest first. b.lifeMu must be held.
func (b *Bus) unfinishedLocked() []*generation {
	live := b.sealed[:0]
	for _, g := range b.sealed {
		select {
		case <-g.done:
		default:
			live = append(live, g)
		}
	}
	clear(b.sealed[len(live):])
	b.sealed = live
	return append([]*generation(nil), live...)
}

func waitAll(ctx context.Context, gens []*generation) error {
	for _, g := range gens {
		select {
		case <-g.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pickShard spreads publishers over the shards at random: the runtime's
// per-thread generator makes this cheap, and unlike a shared round-robin
// counter it needs no shared write.
func (b *Bus) pickShard() int { return int(rand.Uint32()) & b.shardMask }

// A clock reads time for one bus. Its readings are relative to the bus's own
// start, so that a bus made inside a testing/synctest bubble sees only the
// bubble's fake time.
type clock struct {
	epoch time.Time
	last  atomic.Pointer[wallReading]
}

// A wallReading pairs a wall-clock reading with the mono reading taken with it.
type wallReading struct {
	wall time.Time
	mono int64
}

// wallResync is how often now reads the wall clock itself.
const wallResync = time.Millisecond

// at returns the wall time of the mono reading m.
func (c *clock) at(m int64) time.Time {
	if w := c.last.Load(); w != nil {
		return w.wall.Add(time.Duration(m - w.mono))
	}
	return c.epoch.Add(time.Duration(m))
}

// mono reads the monotonic clock: nanoseconds since the bus was created.
func (c *clock) mono() int64 { return int64(time.Since(c.epoch)) }

// now returns the current time and its mono reading with a single clock read:
// it advances the last wall-clock reading by the monotonic clock, and reads
// the wall clock again when that reading is older than wallResync. Both clocks
// advance at the same rate, so the result differs from time.Now only for up to
// wallResync after the wall clock is stepped.
func (c *clock) now() (time.Time, int64) {
	m := c.mono()
	if w := c.last.Load(); w != nil {
		if d := m - w.mono; d > -int64(wallResync) && d < int64(wallResync) {
			return w.wall.Add(time.Duration(d)), m
		}
	}
	t := time.Now()
	m = int64(t.Sub(c.epoch))
	c.last.Store(&wallReading{wall: t, mono: m})
	return t, m
}

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
// sync runs are not the queue's, and only the listing applies. A claim it
// returns is always a single run.
func (q *queue) waitFor(d *delivery, any, pool bool) (claim, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if pool && q.idle+q.waking == 0 {
		if d.next < d.nSync {
			return claim{d: d, i: q.claimLocked(d, 1), n: 1}, true
		}
		if any {
			if hd := q.head; hd != nil {
				return claim{d: hd, i: q.claimLocked(hd, 1), n: 1}, true
			}
			if c, ok := q.stealLocked(nil); ok {
				return c, true
			}
		}
	}
	if !d.waiting && (any || pool && d.next < d.nSync) {
		d.waiting = true
		q.waiters = append(q.waiters, d)
	}
	return claim{}, false
} // unwait takes d off the waiters.
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
