package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// One clock reading stamps the event and starts the first run.
	var start int64
	if e.Timestamp.IsZero() {
		e.Timestamp, start = now()
	} else {
		start = mono()
	}
	sh := b.pickShard()
	g := b.acquire(sh)
	if g == nil {
		return ErrClosed
	}

	reg := b.reg.Load()
	if b.maxWorkers == 0 && reg.async == 0 {
		// Everything runs here: match as we go, with no list to build.
		b.shards[sh].published.Add(1)
		return b.runInline(ctx, g, sh, reg.subs, true, &e, start, wait)
	}

	d := deliveries.Get().(*delivery)
	matched, nSync := match(reg.subs, &e, d.subs[:0])
	d.subs = matched // keep the grown slice for the next user of d
	nAsync := len(matched) - nSync

	// A caller whose ctx can never end loses nothing by running handlers
	// itself while it waits. A caller whose ctx can end leaves the runs to the
	// workers, so that it can return when ctx ends, and runs them itself only
	// while no worker is free.
	helps := wait && ctx.Done() == nil

	// Nothing to hand over to another goroutine: run it all here.
	if len(matched) == 0 || nAsync == 0 && (b.maxWorkers == 0 || helps && nSync == 1) ||
		helps && nSync == 0 && nAsync == 1 {
		b.accepted(sh, matched)
		err := b.runInline(ctx, g, sh, matched, false, &e, start, wait)
		d.recycle()
		return err
	}

	d.init(b, ctx, &e, g, sh, nSync, wait)
	if b.maxWorkers > 0 && nSync > 0 {
		if helps {
			d.next = 1 // the caller runs the first sync handler itself
		}
		if n := nSync - d.next; n > 0 {
			b.startWorkers()
			m := &b.shards[sh]
			m.queued.Add(int64(n))
			if err := b.queue.push(ctx, d); err != nil {
				m.queued.Add(-int64(n))
				if err != ErrClosed {
					b.m.rejected.Add(1)
				}
				for _, s := range matched {
					s.claimed.Store(false) // give a Once subscription back
				}
				d.abandon()
				g.release(sh)
				return err
			}
		}
	}
	b.accepted(sh, matched)

	// Start the async handlers. A helping caller with no sync handler to run
	// runs the last one itself instead of starting a goroutine for it.
	async := d.subs[nSync:]
	var mine *subscription
	if len(async) > 0 {
		if helps && nSync == 0 {
			async, mine = async[:len(async)-1], async[len(async)-1]
		}
		d.asyncCtx(b, wait && !helps)
		for _, s := range async {
			b.async.Go(func() { b.runAsync(d, s) })
		}
	}

	b.runOwn(ctx, d, helps, mine, start)
	if !wait {
		return nil
	}
	select {
	case <-d.done:
		return d.result()
	default:
	}
	select {
	case <-d.done:
		return d.result()
	case <-ctx.Done():
		return ctx.Err()
	}
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
func (b *Bus) accepted(sh int, matched []*subscription) {
	b.shards[sh].published.Add(1)
	for _, s := range matched {
		if s.once {
			b.remove(s)
		}
	}
}

// runInline runs subs one after the other on the publisher's goroutine and,
// if wait, returns their errors joined; subs holds at most one async
// subscription. If filter, subs is the whole registry and runInline runs
// only the matching ones (and retires those that are Once). It releases g
// when done, also when a handler calls runtime.Goexit; the runs that did not
// start then count as skipped.
func (b *Bus) runInline(ctx context.Context, g *generation, sh int, subs []*subscription, filter bool, e *Event, start int64, wait bool) error {
	if len(subs) == 0 {
		g.release(sh)
		return nil
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
		if next < len(subs) { // after runtime.Goexit only
			skipped := len(subs) - next
			if filter { // count only those that would have run
				skipped = 0
				for _, s := range subs[next:] {
					if s.wants(e) && !(s.once && s.claimed.Load()) {
						skipped++
					}
				}
			}
			b.m.skipped.Add(uint64(skipped))
		}
		g.release(sh)
	}()
	var errs []error
	for next < len(subs) {
		s := subs[next]
		next++
		if filter {
			if !s.matches(e) {
				continue
			}
			if s.once {
				b.remove(s)
			}
		}
		if s.cancelled.Load() {
			b.m.skipped.Add(1)
			continue
		}
		hctx := ctx
		if s.async != nil {
			hctx = &detached{values: ctx, stop: b.stop}
		}
		end, err := b.run(hctx, m, nil, s, e, start, debug)
		start = end
		if err == nil {
			delivered++
		} else if wait {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runOwn runs the handlers of d that fall to the publisher: the sync ones when
// there are no workers, those a waiting caller claims, and mine. Then it drops
// the publisher's token. If a handler calls runtime.Goexit, the runs that did
// not start count as skipped, so that d still completes.
func (b *Bus) runOwn(ctx context.Context, d *delivery, helps bool, mine *subscription, start int64) {
	m := &b.shards[d.sh]
	defer func() {
		if mine != nil {
			b.skip(d)
		}
		d.finish()
	}()
	switch {
	case b.maxWorkers == 0 && d.nSync > 0:
		start = b.runBatch(ctx, m, d, 0, d.nSync, start)
	case d.wait && d.nSync > 0:
		if helps {
			start = b.runBatch(ctx, m, d, 0, 1, start)
		}
		for ctx.Err() == nil {
			i, ok := b.queue.claim(d, !helps)
			if !ok {
				break
			}
			m.queued.Add(-1)
			start = b.runBatch(ctx, m, d, i, 1, mono())
		}
	}
	if s := mine; s != nil {
		mine = nil
		b.runAsyncHere(d, s)
	}
}

// runBatch runs d's sync runs i..i+n-1 one after another on this goroutine,
// the first starting at start, and returns when the last ended. Each run
// ends where the next starts, so a batch reads the clock once per run. If a
// handler calls runtime.Goexit, the runs of the batch that did not start
// count as skipped.
func (b *Bus) runBatch(ctx context.Context, m *shard, d *delivery, i, n int, start int64) int64 {
	debug := b.log.Enabled(ctx, slog.LevelDebug)
	j := i
	defer func() {
		for ; j < i+n; j++ { // after runtime.Goexit only
			b.skip(d)
		}
	}()
	for j < i+n {
		s := d.subs[j]
		j++
		if s.cancelled.Load() {
			b.skip(d)
			continue
		}
		start, _ = b.run(ctx, m, d, s, &d.e, start, debug)
	}
	return start
}

// runAsync runs one async handler of d in the goroutine the bus started
// for it.
func (b *Bus) runAsync(d *delivery, s *subscription) {
	if s.cancelled.Load() {
		b.skip(d)
		return
	}
	b.runAsyncHere(d, s)
}

// runAsyncHere runs an async handler of d on the calling goroutine.
func (b *Bus) runAsyncHere(d *delivery, s *subscription) {
	b.run(d.actx, &b.shards[d.sh], d, s, &d.e, mono(), b.log.Enabled(d.actx, slog.LevelDebug))
}

// skip counts a run of d that will never start.
func (b *Bus) skip(d *delivery) {
	b.m.skipped.Add(1)
	d.finish()
}

// run calls one handler, which started at start (a mono reading), and returns
// when it ended. It is the only place the bus calls user code, and the only
// place it recovers: a panic or runtime.Goexit becomes a *HandlerError. It
// logs the run once (at Debug only if debug) and counts a failure. With d
// non-nil, the run is one of d's: run also counts it in m as in flight and,
// if it succeeded, delivered, and then records it in d, also when the handler
// calls runtime.Goexit; so Drain never sees d's runs done before they are
// counted. With d nil the caller counts in m.
func (b *Bus) run(ctx context.Context, m *shard, d *delivery, s *subscription, e *Event, start int64, debug bool) (end int64, err error) {
	if d != nil {
		m.inFlight.Add(1)
	}
	returned := false
	defer func() {
		if !returned {
			err = b.fault(s, e, recover())
			end = mono()
		}
		if err != nil {
			b.failed(ctx, s, e, time.Duration(end-start), err)
		} else if debug {
			b.logRun(ctx, slog.LevelDebug, "handler finished", s, e, time.Duration(end-start), nil)
		}
		if d != nil {
			m.inFlight.Add(-1)
			if err == nil {
				m.delivered.Add(1)
			}
			d.record(err)
		}
	}()
	if s.handler != nil {
		err = s.handler(*e)
	} else {
		err = s.async(ctx, *e)
	}
	end = mono()
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
	if err, ok := v.(error); ok {
		he.Err = fmt.Errorf("panic: %w", err)
	} else {
		he.Err = fmt.Errorf("panic: %v", v)
	}
	return he
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

// logRun logs one run. Nothing is formatted for a disabled level.
func (b *Bus) logRun(ctx context.Context, level slog.Level, msg string, s *subscription, e *Event, took time.Duration, err error) {
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
			attrs = append(attrs, slog.String(keyStack, string(he.Stack)))
		}
	}
	b.log.LogAttrs(ctx, level, msg, attrs...)
}

// A delivery is one accepted event on its way to handlers that the publisher
// does not run alone: queued sync runs, async runs, or a waiting caller.
// Deliveries without async runs are recycled through deliveries once the
// last run is done with them (or, for PublishAndWait, once the caller has
// read the result), so the pool path allocates nothing in the steady state.
type delivery struct {
	b     *Bus
	e     Event
	ctx   context.Context // the publisher's
	actx  context.Context // for async handlers
	gen   *generation
	sh    int             // the shard the publisher picked
	subs  []*subscription // matched: subs[:nSync] sync, the rest async
	nSync int
	next  int  // next sync run to claim; guarded by queue.mu
	wait  bool // PublishAndWait

	pending atomic.Int32  // runs not finished, +1 until the publisher is done
	done    chan struct{} // wait: receives one value when pending reaches zero
	errMu   sync.Mutex
	errs    []error // wait: the failed runs
	cancel  func()  // releases actx, when it needs releasing

	prev, nextInQueue *delivery // queue links; guarded by queue.mu
	buf               [4]*subscription
}

var deliveries = sync.Pool{New: newPooledDelivery}

func newPooledDelivery() any {
	d := new(delivery)
	d.subs = d.buf[:0]
	return d
}

// init prepares d, whose subs are already matched, for the event e.
func (d *delivery) init(b *Bus, ctx context.Context, e *Event, g *generation, sh, nSync int, wait bool) {
	d.b, d.e, d.ctx, d.gen, d.sh, d.nSync, d.wait = b, *e, ctx, g, sh, nSync, wait
	d.pending.Store(int32(len(d.subs)) + 1) // +1: the publisher's own token
	if wait && d.done == nil {
		d.done = make(chan struct{}, 1)
	}
}

// recycle returns d to the pool. Nobody may hold d any more: deliveries with
// async runs are never recycled, because a handler may keep its ctx.
func (d *delivery) recycle() {
	if d.actx != nil {
		return
	}
	clear(d.subs)
	clear(d.errs)
	done, subs, errs := d.done, d.subs[:0], d.errs[:0]
	*d = delivery{done: done, subs: subs, errs: errs} // subs may point into d.buf: still d's
	deliveries.Put(d)
}

// abandon recycles a delivery that was never queued.
func (d *delivery) abandon() { d.recycle() }

// asyncCtx sets d.actx: for a caller whose ctx can end, the caller's ctx;
// otherwise one with the publisher's values but no cancellation; either way
// one that Shutdown cancels when it gives up waiting.
func (d *delivery) asyncCtx(b *Bus, callers bool) {
	if !callers {
		d.actx = &detached{values: d.ctx, stop: b.stop}
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

// detached is the ctx of async handlers whose publisher does not wait, or
// waits with a ctx that cannot end: it keeps the values of the publisher's
// ctx, and its cancellation comes from the bus.
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
		for i := range b.maxWorkers {
			b.workers.Go(func() { b.worker(i) })
		}
	})
}

// worker runs queued sync handlers until the queue is closed and empty. It
// claims runs in batches when every other worker is busy too, and chains the
// timing of consecutive runs so that each costs one clock reading.
func (b *Bus) worker(id int) {
	exited := false
	defer func() {
		if !exited {
			// A handler called runtime.Goexit: keep the pool at full size.
			b.queue.starting(1)
			b.workers.Go(func() { b.worker(id) })
		}
	}()
	m := &b.shards[id&b.shardMask]
	b.queue.arrived()
	var last int64 // when the previous batch ended; 0 after waiting
	for {
		d, i, n, waited, ok := b.queue.take()
		if !ok {
			exited = true
			return
		}
		m.queued.Add(-int64(n))
		start := last
		if waited || start == 0 {
			start = mono()
		}
		last = b.runBatch(d.ctx, m, d, i, n, start)
	}
}

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

// epoch anchors the bus's monotonic clock readings.
var epoch = time.Now()

// mono reads the monotonic clock: nanoseconds since epoch.
func mono() int64 { return int64(time.Since(epoch)) }

// A wallReading pairs a wall-clock reading with the mono reading taken with it.
type wallReading struct {
	wall time.Time
	mono int64
}

var lastWall atomic.Pointer[wallReading]

// wallResync is how often now reads the wall clock itself.
const wallResync = time.Millisecond

// now returns the current time and its mono reading with a single clock read:
// it advances the last wall-clock reading by the monotonic clock, and reads
// the wall clock again when that reading is older than wallResync. Both clocks
// advance at the same rate, so the result differs from time.Now only for up to
// wallResync after the wall clock is stepped.
func now() (time.Time, int64) {
	m := mono()
	if w := lastWall.Load(); w != nil {
		if d := m - w.mono; d > -int64(wallResync) && d < int64(wallResync) {
			return w.wall.Add(time.Duration(d)), m
		}
	}
	t := time.Now()
	m = int64(t.Sub(epoch))
	lastWall.Store(&wallReading{wall: t, mono: m})
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
	idle       int           // workers blocked in take, not yet signalled
	waking     int           // workers signalled or starting, not yet running
	room       chan struct{} // closed when room appears; nil if nobody waits
	closed     bool
}

func (q *queue) init(workers, limit int, p OverflowPolicy) {
	q.ready.L = &q.mu
	q.workers, q.limit, q.policy = workers, limit, p
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

// take blocks until a run is queued and claims runs i..i+n-1 of d, and
// reports whether it had to wait; ok is false once the queue is closed and
// empty. It claims one run while other workers are free to take the next,
// and a fair share of the head delivery's runs when all of them are busy.
func (q *queue) take() (d *delivery, i, n int, waited, ok bool) {
	q.mu.Lock()
	for q.head == nil {
		if q.closed {
			q.mu.Unlock()
			return nil, 0, 0, waited, false
		}
		q.idle++
		q.ready.Wait()
		q.waking--
		waited = true
	}
	d = q.head
	n = 1
	if left := d.nSync - d.next; left > 1 && q.idle+q.waking == 0 {
		n = (left + q.workers - 1) / q.workers
	}
	i = q.claimLocked(d, n)
	more := q.head != nil && q.reserveLocked()
	q.mu.Unlock()
	if more {
		q.ready.Signal() // pass the wake-up on: one signal per push suffices
	}
	return d, i, n, waited, true
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

func (q *queue) claimLocked(d *delivery, n int) int {
	i := d.next
	d.next += n
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
