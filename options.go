package eventbus

// This file holds the options: those of a Bus (Option, given to New) and
// those of one subscription (SubscribeOption, given to Subscribe and
// SubscribeAsync). Invalid values are programming errors and panic in the
// With* function, with an "eventbus: " message.

import (
	"log/slog"
	"strconv"
	"time"
)

// An Option configures a Bus created by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

const (
	defaultMaxWorkers = 10
	defaultMaxAsync   = 10000
)

// config is what the options of New set.
type config struct {
	maxWorkers int
	maxAsync   int
	queueLimit int // 0: no limit
	policy     OverflowPolicy
	logger     *slog.Logger
	slowAfter  time.Duration
	observer   Observer
}

// WithMaxWorkers sets how many worker goroutines run sync handlers (default
// 10). Zero runs every sync handler inline, in the publishing goroutine, in
// subscription order, before Publish returns. It panics if n < 0.
func WithMaxWorkers(n int) Option {
	if n < 0 {
		panic("eventbus: WithMaxWorkers: negative worker count")
	}
	return optionFunc(func(c *config) { c.maxWorkers = n })
}

// WithMaxAsync bounds how many goroutines run async handlers at once
// (default 10,000). Beyond that, async runs wait in a list, without bound,
// and a goroutine that finishes an async run takes the next one instead of
// exiting, so a burst of events cannot start a goroutine per run. It panics
// if n < 1.
func WithMaxAsync(n int) Option {
	if n < 1 {
		panic("eventbus: WithMaxAsync: limit must be at least 1")
	}
	return optionFunc(func(c *config) { c.maxAsync = n })
}

// WithQueueLimit bounds how many published events may wait for a worker at
// once (default: no bound, so Publish never blocks). An event waits while any
// of its sync handler runs has not been taken by a worker. When n events
// wait, Publish blocks for room with OverflowBlock and returns ErrQueueFull
// with OverflowReject. The limit has no effect WithMaxWorkers(0); async
// handlers, and the sync handlers that a PublishAndWait caller runs itself,
// never count against it. It panics if n < 1 or p is not a defined policy.
func WithQueueLimit(n int, p OverflowPolicy) Option {
	if n < 1 {
		panic("eventbus: WithQueueLimit: limit must be at least 1")
	}
	if p != OverflowBlock && p != OverflowReject {
		panic("eventbus: WithQueueLimit: unknown overflow policy")
	}
	return optionFunc(func(c *config) { c.queueLimit, c.policy = n, p })
}

// An OverflowPolicy says what Publish does when the queue is full.
type OverflowPolicy int

const (
	// OverflowBlock makes Publish wait for room until its ctx ends.
	OverflowBlock OverflowPolicy = iota
	// OverflowReject makes Publish return ErrQueueFull at once.
	OverflowReject
)

func (p OverflowPolicy) String() string {
	switch p {
	case OverflowBlock:
		return "block"
	case OverflowReject:
		return "reject"
	}
	return "OverflowPolicy(" + strconv.Itoa(int(p)) + ")"
}

// WithLogger sets the logger for handler runs (default slog.Default()). Use
// slog.New(slog.DiscardHandler) to silence the bus. It panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		panic("eventbus: WithLogger: nil logger")
	}
	return optionFunc(func(c *config) { c.logger = l })
}

// A SubscribeOption configures one subscription. A [Filter] is a
// SubscribeOption.
type SubscribeOption interface{ applySubscription(*subscription) }

type subscribeOptionFunc func(*subscription)

func (f subscribeOptionFunc) applySubscription(s *subscription) { f(s) }

// Once makes a subscription handle at most one event: the first matching
// event the bus accepts (with concurrent publishers, whichever is accepted
// first). An event that is refused (ErrQueueFull, ctx ending while it waits
// for room, ErrClosed) does not use it up. As that event is accepted, the
// subscription leaves the registry, so Subscribers drops and no later event
// matches it; until its run is over, Unsubscribe still finds it and skips the
// run if it has not started.
func Once() SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.once = true })
}

// Ordered makes a subscription receive the events of one workflow (one
// ADWID) one at a time, in the order the bus accepted them, while events of
// different workflows still run in parallel. It works for sync and async
// handlers and with PublishAndWait. See the package documentation for its
// guarantee and cost.
func Ordered() SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.order = orderByADWID })
}

// OrderedBy is Ordered with another key: events with equal key(e) reach the
// subscription one at a time, in acceptance order. key is called once per
// matching event, on the publishing goroutine; it must be fast and must not
// block. A key that panics is logged and treated as "". It panics if key is
// nil.
func OrderedBy(key func(Event) string) SubscribeOption {
	if key == nil {
		panic("eventbus: OrderedBy: nil key function")
	}
	return subscribeOptionFunc(func(s *subscription) { s.order = orderBy(key) })
}

// Detached makes the ctx of a handler that takes one (SubscribeAsync,
// SubscribeContext) keep the publisher's values but never follow its
// cancellation or deadline, also through PublishAndWait: only Shutdown's
// deadline cancels it. Use it for sinks that must outlive the request that
// published, such as an archive. PublishAndWait still waits for such a run
// until its own ctx ends, and then reports it pending.
func Detached() SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.ctxRule = detachedCtx })
}

// WithName names a subscription. The name appears in log lines beside the
// subscription id.
func WithName(name string) SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.name = name })
}
