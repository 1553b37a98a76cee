package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// publish is Publish (wait false) and PublishAndWait (wait true).
func (b *Bus) publish(ctx context.Context, e Event, wait bool) error {
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
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	g := b.acquire()
	if g == nil {
		return ErrClosed
	}

	var buf [8]*subscription
	matched, nSync := match(*b.subs.Load(), &e, buf[:0])

	// Nothing to hand over to another goroutine: run the handlers here.
	if nSync == len(matched) && (b.maxWorkers == 0 || len(matched) == 0) {
		b.accepted(matched)
		return b.runInline(ctx, g, matched, &e, wait)
	}

	d := &delivery{e: e, ctx: ctx, gen: g, nSync: nSync}
	d.subs = append(d.buf[:0], matched...)
	d.pending.Store(int32(len(matched)) + 1) // +1: the publisher's own token
	if wait {
		d.done = make(chan struct{})
	}
	// A caller whose ctx can never end loses nothing by running handlers
	// itself while it waits: it takes the first sync run before queueing the
	// rest. A caller whose ctx can end leaves the runs to the workers, so that
	// it can return when ctx ends, and helps only when no worker is free.
	helps := wait && ctx.Done() == nil
	if b.maxWorkers > 0 && nSync > 0 {
		if helps {
			d.next = 1
		}
		if n := nSync - d.next; n > 0 {
			b.startWorkers()
			b.m.queued.Add(int64(n))
			if err := b.queue.push(ctx, d); err != nil {
				b.m.queued.Add(-int64(n))
				if err != ErrClosed {
					b.m.rejected.Add(1)
				}
				for _, s := range matched {
					s.claimed.Store(false) // give a Once subscription back
				}
				g.release()
				return err
			}
		}
	}
	b.accepted(matched)

	// Start the async handlers. A helping caller with no sync handler to run
	// runs the last one itself instead of starting a goroutine for it.
	async := d.subs[nSync:]
	var mine *subscription
	if len(async) > 0 {
		if helps && nSync == 0 {
			async, mine = async[:len(async)-1], async[len(async)-1]
		}
		d.asyncCtx(b, wait)
		for _, s := range async {
			b.async.Go(func() { b.run(d.actx, d, s, &d.e) })
		}
	}

	b.runOwn(ctx, d, helps, mine)
	if !wait {
		return nil
	}
	select {
	case <-d.done:
		return d.errs.join()
	default:
	}
	select {
	case <-d.done:
		return d.errs.join()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runInline runs subs one after the other on the publisher's goroutine and,
// if wait, returns their errors joined. It releases g when done, also when a
// handler calls runtime.Goexit; the runs that did not start then count as
// skipped.
func (b *Bus) runInline(ctx context.Context, g *generation, subs []*subscription, e *Event, wait bool) error {
	next := 0
	defer func() {
		if next < len(subs) {
			b.m.skipped.Add(uint64(len(subs) - next))
		}
		g.release()
	}()
	var errs []error
	for next < len(subs) {
		s := subs[next]
		next++
		if err := b.run(ctx, nil, s, e); err != nil && wait {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runOwn runs the handlers of d that fall to the publisher: the sync ones when
// there are no workers, those a waiting caller claims, and mine. Then it drops
// the publisher's token. If a handler calls runtime.Goexit, the runs that did
// not start count as skipped, so that d still completes.
func (b *Bus) runOwn(ctx context.Context, d *delivery, helps bool, mine *subscription) {
	next := 0 // inline sync runs started
	defer func() {
		if b.maxWorkers == 0 {
			for ; next < d.nSync; next++ {
				b.skip(d)
			}
		}
		if mine != nil {
			b.skip(d)
		}
		d.finish()
	}()
	switch {
	case b.maxWorkers == 0:
		for next < d.nSync {
			s := d.subs[next]
			next++
			b.run(ctx, d, s, &d.e)
		}
	case d.done != nil && d.nSync > 0:
		if helps {
			b.run(ctx, d, d.subs[0], &d.e)
		}
		for ctx.Err() == nil {
			i, ok := b.queue.claim(d, !helps)
			if !ok {
				break
			}
			b.m.queued.Add(-1)
			b.run(ctx, d, d.subs[i], &d.e)
		}
	}
	if s := mine; s != nil {
		mine = nil
		b.run(d.actx, d, s, &d.e)
	}
}

// skip counts a run of d that will never start.
func (b *Bus) skip(d *delivery) {
	b.m.skipped.Add(1)
	d.finish()
}

// match appends to dst the subscriptions of subs that want e, sync handlers
// first, each group in subscription order, and returns how many are sync.
func match(subs []*subscription, e *Event, dst []*subscription) ([]*subscription, int) {
	nSync := 0
	for _, s := range subs {
		if !s.matches(e) {
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

// accepted records an accepted event and retires its Once subscriptions.
func (b *Bus) accepted(matched []*subscription) {
	b.m.published.Add(1)
	for _, s := range matched {
		if s.once {
			b.remove(s)
		}
	}
}

// A delivery is one accepted event on its way to the handlers that are not run
// by the publisher alone: queued sync runs, async runs, or a waiting caller.
type delivery struct {
	e     Event
	ctx   context.Context // the publisher's
	actx  context.Context // for async handlers
	gen   *generation
	subs  []*subscription // matched: subs[:nSync] sync, the rest async
	nSync int
	next  int // next sync run to claim; guarded by queue.mu

	pending atomic.Int32  // runs not finished, +1 until the publisher is done
	done    chan struct{} // PublishAndWait: closed when pending reaches zero
	errs    errList       // PublishAndWait: the failed runs
	cancel  func()        // PublishAndWait: releases actx

	prev, nextInQueue *delivery // queue links; guarded by queue.mu
	detached          detached
	buf               [4]*subscription
}

// asyncCtx sets d.actx: the caller's ctx for PublishAndWait, a ctx with the
// publisher's values but no cancellation for Publish, and either way one that
// Shutdown cancels when it gives up waiting.
func (d *delivery) asyncCtx(b *Bus, wait bool) {
	if !wait {
		d.detached = detached{values: d.ctx, stop: b.stop}
		d.actx = &d.detached
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	stop := context.AfterFunc(b.stop, cancel)
	d.actx = ctx
	d.cancel = func() {
		stop()
		cancel()
	}
}

// finish records that one run (or the publisher) is done with d.
func (d *delivery) finish() {
	if d.pending.Add(-1) != 0 {
		return
	}
	if d.cancel != nil {
		d.cancel()
	}
	if d.done != nil {
		close(d.done)
	}
	d.gen.release()
}

// errList collects the failed runs of a PublishAndWait.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errList) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// join is called once every run has finished.
func (l *errList) join() error { return errors.Join(l.errs...) }

// detached is the ctx of async handlers started by Publish: it keeps the
// values of the publisher's ctx, and its cancellation comes from the bus.
type detached struct {
	values context.Context
	stop   context.Context
}

func (c *detached) Deadline() (time.Time, bool)    { return time.Time{}, false }
func (c *detached) Done() <-chan struct{}          { return c.stop.Done() }
func (c *detached) Err() error                     { return c.stop.Err() }
func (c *detached) Value(key any) any              { return c.values.Value(key) }
func (c *detached) String() string                 { return "eventbus.detached" }
func (c *detached) AfterFunc(f func()) func() bool { return context.AfterFunc(c.stop, f) }

// startWorkers starts the pool. It is called by publishers that hold a
// generation, so Shutdown's workers.Wait cannot run concurrently with it.
func (b *Bus) startWorkers() {
	b.workersOnce.Do(func() {
		b.queue.starting(b.maxWorkers)
		for range b.maxWorkers {
			b.workers.Go(b.worker)
		}
	})
}

// worker runs queued sync handlers until the queue is closed and empty.
func (b *Bus) worker() {
	exited := false
	defer func() {
		if !exited {
			// A handler called runtime.Goexit: keep the pool at full size.
			b.queue.starting(1)
			b.workers.Go(b.worker)
		}
	}()
	b.queue.arrived()
	for {
		d, i, ok := b.queue.take()
		if !ok {
			exited = true
			return
		}
		b.m.queued.Add(-1)
		b.run(d.ctx, d, d.subs[i], &d.e)
	}
}

// run calls one handler. It is the only place the bus calls user code, and the
// only place it recovers: a panic or runtime.Goexit becomes a *HandlerError,
// which is logged and counted once. With d non-nil, the run is one of d's and
// run records the outcome in d.
func (b *Bus) run(ctx context.Context, d *delivery, s *subscription, e *Event) (err error) {
	if s.cancelled.Load() {
		if d != nil {
			b.skip(d)
		} else {
			b.m.skipped.Add(1)
		}
		return nil
	}
	b.m.inFlight.Add(1)
	start := time.Now()
	returned := false
	defer func() {
		if !returned {
			err = b.fault(s, e, recover())
		}
		b.m.inFlight.Add(-1)
		b.observe(ctx, s, e, time.Since(start), err)
		if d != nil {
			if err != nil && d.done != nil {
				d.errs.add(err)
			}
			d.finish()
		}
	}()
	var herr error
	if s.handler != nil {
		herr = s.handler(*e)
	} else {
		herr = s.async(ctx, *e)
	}
	returned = true
	if herr != nil {
		return &HandlerError{SubscriptionID: s.id, EventType: e.Type, Err: herr}
	}
	return nil
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
	if err, ok := v.(error); ok {
		he.Err = fmt.Errorf("panic: %w", err)
	} else {
		he.Err = fmt.Errorf("panic: %v", v)
	}
	return he
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

// observe counts and logs one finished run: Debug on success, Error on
// failure. Nothing is formatted for a disabled level.
func (b *Bus) observe(ctx context.Context, s *subscription, e *Event, took time.Duration, err error) {
	level, msg := slog.LevelDebug, "handler finished"
	if err == nil {
		b.m.delivered.Add(1)
	} else {
		b.m.failed.Add(1)
		level, msg = slog.LevelError, "handler failed"
	}
	if !b.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String(keySubscriptionID, string(s.id)))
	if s.name != "" {
		attrs = append(attrs, slog.String(keySubscriptionName, s.name))
	}
	attrs = append(attrs,
		slog.String(keyEventType, string(e.Type)),
		slog.String(keyEventID, e.ID.String()),
		slog.String(keyADWID, e.ADWID),
		slog.Duration(keyDuration, took),
	)
	if err != nil {
		attrs = append(attrs, slog.Any(keyError, err))
		var he *HandlerError
		if errors.As(err, &he) && he.Stack != nil {
			msg = "handler panicked"
			attrs = append(attrs, slog.String(keyStack, string(he.Stack)))
		}
	}
	b.log.LogAttrs(ctx, level, msg, attrs...)
}

// A generation counts accepted events that have not finished. The current
// generation holds one extra token; Drain and Shutdown seal it (start a new
// one and drop the token) and wait for its count to reach zero.
type generation struct {
	pending atomic.Int64
	done    chan struct{} // closed when pending reaches zero
	final   bool          // installed by Shutdown: accepts nothing
}

func newGeneration() *generation {
	g := &generation{done: make(chan struct{})}
	g.pending.Store(1)
	return g
}

func closedGeneration() *generation {
	g := &generation{done: make(chan struct{}), final: true}
	close(g.done)
	return g
}

// acquire counts one accepted event in the current generation; it returns nil
// once the bus is closed.
func (b *Bus) acquire() *generation {
	for {
		g := b.gen.Load()
		n := g.pending.Load()
		if n == 0 {
			if g.final {
				return nil
			}
			continue // sealed and finished: its successor is already installed
		}
		if g.pending.CompareAndSwap(n, n+1) {
			return g
		}
	}
}

func (g *generation) release() {
	if g.pending.Add(-1) == 0 {
		close(g.done)
	}
}

// sealLocked installs next as the current generation and drops the old one's
// token. b.lifeMu must be held.
func (b *Bus) sealLocked(next *generation) {
	old := b.gen.Swap(next)
	b.sealed = append(b.sealed, old)
	old.release()
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
	idle       int           // workers blocked in take, not yet signalled
	waking     int           // workers signalled, not yet running
	room       chan struct{} // closed when room appears; nil if nobody waits
	closed     bool
}

func (q *queue) init(limit int, p OverflowPolicy) {
	q.ready.L = &q.mu
	q.limit, q.policy = limit, p
}

// push appends d, all of its unclaimed runs or none, waiting for room as the
// policy says.
func (q *queue) push(ctx context.Context, d *delivery) error {
	q.mu.Lock()
	for q.limit > 0 && q.waiting >= q.limit && !q.closed {
		if q.policy == OverflowReject {
			q.mu.Unlock()
			return ErrQueueFull
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
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.tail == nil {
		q.head = d
	} else {
		q.tail.nextInQueue = d
		d.prev = q.tail
	}
	q.tail = d
	q.waiting++
	wake := q.reserveLocked()
	q.mu.Unlock()
	if wake {
		q.ready.Signal()
	}
	return nil
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

// take blocks until a run is queued and claims it; ok is false once the queue
// is closed and empty.
func (q *queue) take() (d *delivery, i int, ok bool) {
	q.mu.Lock()
	for q.head == nil {
		if q.closed {
			q.mu.Unlock()
			return nil, 0, false
		}
		q.idle++
		q.ready.Wait()
		q.waking--
	}
	d = q.head
	i = q.claimLocked(d)
	more := q.head != nil && q.reserveLocked()
	q.mu.Unlock()
	if more {
		q.ready.Signal() // pass the wake-up on: one signal per push suffices
	}
	return d, i, true
}

// claim takes the next unclaimed run of d, if any. If onlyIfStarved, it
// takes one only while no worker is idle or about to run.
func (q *queue) claim(d *delivery, onlyIfStarved bool) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if d.next >= d.nSync || onlyIfStarved && q.idle+q.waking > 0 {
		return 0, false
	}
	return q.claimLocked(d), true
}

func (q *queue) claimLocked(d *delivery) int {
	i := d.next
	d.next++
	if d.next == d.nSync {
		q.unlinkLocked(d)
	}
	return i
}

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
