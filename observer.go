package eventbus

// This file holds the Observer hook, and the per-subscription snapshots
// (Subscriptions) with the counters behind them.

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
)

// An Observer is told about every publish and every handler run, for
// tracing and metrics (package otelbus builds OpenTelemetry spans and
// instruments on it). Its methods are called synchronously and concurrently,
// from the goroutines named below; they must be fast and safe for concurrent
// use. A panic in them is recovered and logged. Without an Observer the bus
// makes none of these calls and allocates nothing for them.
type Observer interface {
	// Published is called once per Publish or PublishAndWait call whose
	// event was valid, on the publisher's goroutine, as the call returns:
	// for Publish once the event is accepted (and, WithMaxWorkers(0), its
	// inline handlers ran), for PublishAndWait once it stops waiting.
	Published(ctx context.Context, p PublishInfo)
	// HandlerDone is called once per handler run, on the goroutine that ran
	// the handler, right after it returned and was logged, and before the
	// run counts as done for PublishAndWait and Drain and as in flight or
	// delivered in Metrics (Failed, Panics and Subscriptions already count
	// it). ctx is the one the handler's logging uses: the publisher's, or
	// the async handler's own.
	HandlerDone(ctx context.Context, r RunInfo)
}

// A RunStarter is an Observer that is also told as each handler run starts,
// and hands the handler its ctx. When the bus's Observer implements it, the
// bus calls HandlerStart once per run, on the goroutine about to run the
// handler, just before it does (RunInfo then has no Duration or Err). The
// ctx it returns must be ctx or derive from it: it is the ctx the handler
// gets (for the kinds that take one), the one its log lines use, and the
// one HandlerDone is called with. Package otelbus uses it to make the run's
// span the parent of the spans the handler starts. A panic in it is
// recovered and logged, and the run goes on with ctx.
type RunStarter interface {
	HandlerStart(ctx context.Context, r RunInfo) context.Context
}

// PublishInfo describes one Publish or PublishAndWait call to an Observer.
type PublishInfo struct {
	Event Event // with ID and Timestamp filled in
	Wait  bool  // PublishAndWait
	Runs  int   // the handler runs the event was accepted for; 0 if it was refused
	Err   error // what the call returned
}

// RunInfo describes one handler run to an Observer.
type RunInfo struct {
	SubscriptionID SubscriptionID
	Name           string // WithName, or ""
	Async          bool
	Event          Event
	Start          time.Time
	Duration       time.Duration
	Err            error // nil, or the run's *HandlerError
}

// WithObserver makes the bus report every publish and handler run to o,
// and, if o is also a [RunStarter], every run as it starts. It panics if o
// is nil.
func WithObserver(o Observer) Option {
	if o == nil {
		panic("eventbus: WithObserver: nil observer")
	}
	return optionFunc(func(c *config) { c.observer = o })
}

// notePublished reports a publish to the observer.
func (b *Bus) notePublished(ctx context.Context, e *Event, mode waitMode, runs int, err error) {
	defer b.recoverObserver()
	b.obs.Published(ctx, PublishInfo{Event: *e, Wait: mode.waits(), Runs: runs, Err: err})
}

// noteStart tells the RunStarter that c starts, and returns the ctx it
// hands back.
func (b *Bus) noteStart(c *call) (ctx context.Context) {
	ctx = c.ctx
	defer b.recoverObserver()
	if next := b.starter.HandlerStart(ctx, b.runInfo(c)); next != nil {
		ctx = next
	}
	return ctx
}

// noteRun reports a handler run to the observer.
func (b *Bus) noteRun(c *call) {
	defer b.recoverObserver()
	info := b.runInfo(c)
	info.Duration, info.Err = time.Duration(c.end-c.start), c.err
	b.obs.HandlerDone(c.ctx, info)
}

// runInfo describes c as it starts.
func (b *Bus) runInfo(c *call) RunInfo {
	s := c.slot.s
	return RunInfo{
		SubscriptionID: s.id,
		Name:           s.name,
		Async:          s.kind == asyncHandler,
		Event:          c.ref.d.e,
		Start:          b.clock.at(c.start),
	}
}

// recoverObserver logs an Observer's panic instead of letting it take the
// bus's bookkeeping down with it.
func (b *Bus) recoverObserver() {
	v := recover()
	if v == nil {
		return
	}
	ctx := context.Background()
	if !b.enabled(ctx, slog.LevelError) {
		return
	}
	defer func() { _ = recover() }()
	b.log.LogAttrs(ctx, slog.LevelError, "observer panicked",
		slog.Any(keyError, panicError(v)), slog.String(keyStack, string(debug.Stack())))
}

// SubscriptionInfo is a snapshot of one subscription, taken by
// [Bus.Subscriptions]. Its counters cover the subscription's whole life and
// follow the same rules as Metrics: a run is Delivered or Failed once it has
// returned, and a panic counts in Failed and Panics.
type SubscriptionInfo struct {
	ID      SubscriptionID
	Name    string
	Async   bool
	Ordered bool
	Once    bool
	Filter  string // a summary of its filters, as Filter.String gives it ("all" without one)

	Delivered     uint64
	Failed        uint64
	Panics        uint64
	TotalDuration time.Duration // of the runs that returned
	MaxDuration   time.Duration
	InFlight      int64 // runs executing now
}

// Subscriptions returns a snapshot of every live subscription, in
// subscription order. It is safe to call at any time; it costs one pass over
// the subscriptions and their counters.
func (b *Bus) Subscriptions() []SubscriptionInfo {
	subs := b.reg.Load().subs
	out := make([]SubscriptionInfo, 0, len(subs))
	for _, s := range subs {
		info := SubscriptionInfo{
			ID: s.id, Name: s.name, Async: s.kind == asyncHandler, Ordered: s.order.ordered, Once: s.once,
			Filter: s.filterSummary(),
		}
		var started uint64
		for i := range s.stats {
			st := &s.stats[i]
			started += st.started.Load()
			info.Delivered += st.delivered.Load()
			info.Failed += st.failed.Load()
			info.Panics += st.panics.Load()
			info.TotalDuration += time.Duration(st.totalNs.Load())
			info.MaxDuration = max(info.MaxDuration, time.Duration(st.maxNs.Load()))
		}
		info.InFlight = max(int64(started-info.Delivered-info.Failed), 0)
		out = append(out, info)
	}
	return out
}

func (s *subscription) filterSummary() string {
	if len(s.filters) == 0 {
		return "all"
	}
	parts := make([]string, len(s.filters))
	for i, f := range s.filters {
		parts[i] = f.String()
	}
	return strings.Join(parts, " and ")
}

// statStripes is how many copies of its counters a subscription keeps, so
// that runs on different CPUs rarely write the same cache line.
const statStripes = 4

// subStats are one stripe of a subscription's counters. 80 bytes of padding
// keep two stripes' counters off a shared cache line, wherever the
// allocator puts the subscription.
type subStats struct {
	started   atomic.Uint64
	delivered atomic.Uint64
	failed    atomic.Uint64
	panics    atomic.Uint64
	totalNs   atomic.Int64
	maxNs     atomic.Int64
	_         [80]byte
}

// stripe returns the counters a run counted in shard m uses.
func (s *subscription) stripe(m *shard) *subStats { return &s.stats[m.idx&(statStripes-1)] }

// ended counts a run that returned after took nanoseconds.
func (st *subStats) ended(took int64, err error) {
	if err == nil {
		st.delivered.Add(1)
	} else {
		st.failed.Add(1)
	}
	st.totalNs.Add(took)
	for old := st.maxNs.Load(); took > old && !st.maxNs.CompareAndSwap(old, took); old = st.maxNs.Load() {
	}
}
