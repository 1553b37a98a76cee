package eventbus

// This file holds the contexts the bus gives the handlers that take one.
// Each carries the bus under handlerKey, so that Drain and Shutdown can
// tell that they were called from one of the bus's own handlers.

import (
	"context"
	"time"
)

// A ctxRule says whose cancellation the ctx of a handler follows.
type ctxRule uint8

const (
	callersCtx  ctxRule = iota // a waiting caller's, when its ctx can end
	detachedCtx                // never the publisher's (Detached)
)

// contextFor returns the ctxs that d's ctx-taking handlers get, and the
// func that ends them when d completes, if they need ending. bound is the
// caller's ctx, for the handlers of a caller that waits with a ctx that can
// end; detached has the publisher's values but not its cancellation, for
// the others. Shutdown cancels both when it gives up waiting.
func (b *Bus) contextFor(d *delivery) (bound, detached context.Context, end func()) {
	if d.nCtx == 0 {
		return nil, nil, nil
	}
	for i := range d.runs {
		s := d.runs[i].s
		switch {
		case !s.kind.takesCtx():
		case s.ctxRule == detachedCtx, d.mode != waitUntilCtx:
			if detached == nil {
				detached = b.detach(d.ctx)
			}
		case bound == nil:
			bound, end = b.bind(d.ctx)
		}
	}
	return bound, detached, end
}

// bind returns ctx, ended also when Shutdown gives up, and the func that
// releases it.
func (b *Bus) bind(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.life.stop, cancel)
	return &boundCtx{Context: ctx, bus: b}, func() {
		stop()
		cancel()
	}
}

// ctxFor returns the ctx of s's run: the one its handler gets, or, for a
// handler that takes none, the publisher's (for logging).
func (d *delivery) ctxFor(s *subscription) context.Context {
	switch {
	case !s.kind.takesCtx():
		return d.ctx
	case s.ctxRule == detachedCtx, d.mode != waitUntilCtx:
		return d.dctx
	}
	return d.hctx
}

// handlerKey is the context key under which a handler's ctx holds the
// handler's bus.
type handlerKey struct{}

// inHandler reports whether ctx is, or derives from, the ctx of one of b's
// handlers.
func (b *Bus) inHandler(ctx context.Context) bool { return ctx.Value(handlerKey{}) == b }

// detach returns ctx's values without its cancellation (context.WithoutCancel,
// which also hides its cause), ended instead by Shutdown giving up. For
// context.Background it allocates nothing.
func (b *Bus) detach(ctx context.Context) context.Context {
	if ctx == context.Background() {
		return &b.life.background
	}
	return &detached{values: context.WithoutCancel(ctx), life: &b.life, bus: b}
}

// detached is the ctx of handlers whose publisher does not wait, or waits
// with a ctx that cannot end.
type detached struct {
	values context.Context
	life   *lifecycle
	bus    *Bus
}

func (c *detached) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *detached) Done() <-chan struct{} { return c.life.stop.Done() }

func (c *detached) Err() error { return c.life.stop.Err() }

func (c *detached) String() string { return "eventbus.detached" }

func (c *detached) Value(key any) any {
	if _, ok := key.(handlerKey); ok {
		return c.bus
	}
	return c.values.Value(key)
}

// AfterFunc lets context.WithCancel and friends, given c as parent, follow
// its cancellation without starting a goroutine.
func (c *detached) AfterFunc(f func()) func() bool { return context.AfterFunc(c.life.stop, f) }

// boundCtx is the ctx of handlers whose caller waits with a ctx that can
// end: the caller's, marked.
type boundCtx struct {
	context.Context
	bus *Bus
}

func (c *boundCtx) Value(key any) any {
	if _, ok := key.(handlerKey); ok {
		return c.bus
	}
	return c.Context.Value(key)
}
