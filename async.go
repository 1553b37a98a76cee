package eventbus

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

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
	return q.popLocked(b)
}

// popLocked is pop with q.mu held.
func (q *asyncQueue) popLocked(b *Bus) (asyncRun, bool) {
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
		if next, ok := q.popLocked(b); ok {
			q.mu.Unlock()
			r = next
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

func (c *detached) Done() <-chan struct{} { return c.bus.stop.Done() }

func (c *detached) Err() error { return c.bus.stop.Err() }

func (c *detached) String() string { return "eventbus.detached" }

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
