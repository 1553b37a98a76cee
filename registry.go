package eventbus

// This file holds the subscriptions and the registry that lists them.
// Publish reads the registry with one atomic load and no lock; Subscribe,
// Unsubscribe and the retiring of Once subscriptions build a new version
// under Bus.subsMu, which also guards Bus.byID and Bus.lastID.

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
)

// A subscription is one registered handler with its options. Its fields are
// set before Subscribe publishes it in the registry and never change after,
// except the atomics, the lanes (guarded by their own lock) and the counters.
type subscription struct {
	// Fixed by Subscribe.
	id      SubscriptionID
	name    string
	kind    handlerKind
	handler Handler                            // kind syncHandler
	withCtx func(context.Context, Event) error // kinds contextHandler and asyncHandler
	filters []Filter
	once    bool
	order   ordering
	ctxRule ctxRule // for handlers that take a ctx: whose cancellation it follows

	// Atomic.
	claimed   atomic.Bool // Once: an accepted event took it
	cancelled atomic.Bool // Unsubscribe ran: runs that have not started are skipped

	lanes laneSet // when ordered: the busy lanes, by key
	stats [statStripes]subStats
}

// A handlerKind says which kind of handler a subscription has, and so where
// its runs happen and whether it takes a ctx.
type handlerKind uint8

const (
	syncHandler    handlerKind = iota // Subscribe: on a worker, or inline
	contextHandler                    // SubscribeContext: like syncHandler, with a ctx
	asyncHandler                      // SubscribeAsync: on an async goroutine, with a ctx
)

// sync reports whether runs of the kind happen where sync handlers run: on a
// worker, or inline.
func (k handlerKind) sync() bool { return k != asyncHandler }

// takesCtx reports whether handlers of the kind take a ctx.
func (k handlerKind) takesCtx() bool { return k != syncHandler }

// invoke calls s's handler. ctx is used only by handlers that take one.
func (s *subscription) invoke(ctx context.Context, e *Event) error {
	if s.kind == syncHandler {
		return s.handler(*e)
	}
	return s.withCtx(ctx, *e)
}

// A registry is one immutable version of the subscription list.
type registry struct {
	subs []*subscription // in subscription order
}

// with returns a copy of r with s added at the end.
func (r *registry) with(s *subscription) *registry {
	return &registry{subs: append(slices.Clip(r.subs), s)}
}

// without returns a copy of r without s, or r if s is not in it.
func (r *registry) without(s *subscription) *registry {
	i := slices.Index(r.subs, s)
	if i < 0 {
		return r
	}
	return &registry{subs: slices.Concat(r.subs[:i], r.subs[i+1:])}
}

// subscribe applies opts to s and adds it to the registry.
func (b *Bus) subscribe(s *subscription, opts []SubscribeOption) (SubscriptionID, error) {
	for _, o := range opts {
		if o != nil {
			o.applySubscription(s)
		}
	}
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	if b.life.closed.Load() {
		return "", ErrClosed
	}
	b.lastID++
	s.id = SubscriptionID("sub-" + strconv.FormatUint(b.lastID, 10))
	b.byID[s.id] = s
	b.reg.Store(b.reg.Load().with(s))
	return s.id, nil
}

// unsubscribe removes the subscription id, and reports whether it existed.
func (b *Bus) unsubscribe(id SubscriptionID) bool {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	s, ok := b.byID[id]
	if !ok {
		return false
	}
	s.cancelled.Store(true)
	delete(b.byID, s.id)
	b.reg.Store(b.reg.Load().without(s))
	return true
}

// retire takes a Once subscription whose one event was accepted out of the
// registry, so that no later event matches it. Unsubscribe still finds it
// until its run is over.
func (b *Bus) retire(s *subscription) {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	b.reg.Store(b.reg.Load().without(s))
}

// forget drops a retired Once subscription whose run is over.
func (b *Bus) forget(s *subscription) {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	if b.byID[s.id] == s {
		delete(b.byID, s.id)
	}
}
