package eventbus

// This file holds the publish path up to dispatch: validate the event,
// stamp it, and match it against the registry. Matching calls user code
// (Filter.Match, OrderedBy keys) and so runs before the event is accepted,
// outside every lock; nothing here can be refused later.

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/google/uuid"
)

// A waitMode says whether a publisher waits for its event's runs, and
// whether it runs the sync ones itself.
type waitMode uint8

const (
	noWait       waitMode = iota // Publish: hand the runs out and return
	waitUntilCtx                 // PublishAndWait whose ctx can end: leave the runs to the bus's goroutines and wait
	waitAndRun                   // PublishAndWait whose ctx can never end: run the sync runs here, then wait
)

// waits reports whether the publisher waits for the runs to finish.
func (m waitMode) waits() bool { return m != noWait }

// waitModeFor returns PublishAndWait's mode for ctx.
func (b *Bus) waitModeFor(ctx context.Context) waitMode {
	if ctx != nil && b.endless(ctx) {
		return waitAndRun
	}
	return waitUntilCtx
}

// endless reports whether ctx can only end when the bus gives up on its
// handlers: it has no Done channel, or it is (or derives only from) the
// detached ctx of one of this bus's handlers. A caller waiting with such a
// ctx can only stop waiting by the work being done.
func (b *Bus) endless(ctx context.Context) bool {
	done := ctx.Done()
	return done == nil || done == b.life.stop.Done()
}

// publish is Publish and PublishAndWait: validate, stamp, match, dispatch.
func (b *Bus) publish(ctx context.Context, e Event, mode waitMode) (err error) {
	if ctx == nil {
		return ErrNilContext
	}
	if err := e.Validate(); err != nil {
		return err
	}
	start := b.stamp(&e)
	runs := 0 // the runs the event was accepted for, for the observer
	if b.obs != nil {
		defer func() { b.notePublished(ctx, &e, mode, runs, err) }()
	}
	if err := ctx.Err(); err != nil {
		b.m.rejected.Add(1)
		return err
	}
	d := b.newDelivery(ctx, &e, mode, start)
	b.match(d)
	runs, err = b.dispatch(d)
	return err
}

// stamp fills in a zero ID and Timestamp. One clock reading stamps the
// event and starts its first run; stamp returns it.
func (b *Bus) stamp(e *Event) int64 {
	if e.ID == uuid.Nil {
		e.ID = newID()
	}
	if !e.Timestamp.IsZero() {
		return b.clock.mono()
	}
	t, m := b.clock.now()
	e.Timestamp = t
	return m
}

// match fills d.runs with the subscriptions that want d's event, with the
// ordering key of each ordered one. It claims nothing: Once subscriptions
// are claimed when the event is accepted.
func (b *Bus) match(d *delivery) {
	reg := b.reg.Load()
	for _, s := range reg.subs {
		if b.wants(s, &d.e) {
			d.add(s)
		}
	}
	if d.nOrdered == 0 {
		return
	}
	for i := range d.runs {
		key := ""
		if s := d.runs[i].s; s.order.ordered {
			key = b.orderKey(s, &d.e)
		}
		d.keys = append(d.keys, key)
	}
}

// wants reports whether e passes all of s's filters, and, for a Once
// subscription, whether it is still unclaimed.
func (b *Bus) wants(s *subscription, e *Event) bool {
	if s.once && s.claimed.Load() {
		return false
	}
	for i := range s.filters {
		f := &s.filters[i]
		if !f.fieldsMatch(e) {
			return false
		}
		if f.Match != nil && !b.callMatch(s, f.Match, e) {
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
			b.logUserPanic(s, e, v, "filter panicked")
		}
	}()
	return match(*e)
}

// orderKey returns the ordering key of e for s. A key function that panics
// is logged and puts the event in the lane of the empty key.
func (b *Bus) orderKey(s *subscription, e *Event) (key string) {
	if s.order.key == nil {
		return e.ADWID
	}
	defer func() {
		if v := recover(); v != nil {
			key = ""
			b.logUserPanic(s, e, v, "order key panicked")
		}
	}()
	return s.order.key(*e)
}

// logUserPanic logs a Filter.Match predicate or an OrderedBy key function
// that panicked.
func (b *Bus) logUserPanic(s *subscription, e *Event, v any, msg string) {
	ctx := context.Background()
	if !b.enabled(ctx, slog.LevelError) {
		return
	}
	defer func() { _ = recover() }() // the logger's own failure: nowhere left to report it
	b.log.LogAttrs(ctx, slog.LevelError, msg,
		slog.String(keySubscriptionID, string(s.id)),
		slog.String(keyEventType, string(e.Type)),
		slog.Any(keyEventID, e.ID),
		slog.Any(keyError, panicError(v)),
		slog.String(keyStack, string(debug.Stack())),
	)
}
