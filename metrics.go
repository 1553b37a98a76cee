package eventbus

// This file holds the bus's counters and the Metrics snapshot of them.

import (
	"runtime"
	"sync/atomic"
)

// Metrics is a snapshot of a Bus's counters, taken by [Bus.Metrics]. Every
// counter starts at zero when the bus is created and moves at the moment
// described beside it. Counters are read one by one, so a snapshot taken while
// events are in flight may be slightly inconsistent; after [Bus.Drain] returns
// with nothing else publishing,
//
//	Delivered + Failed + Skipped = the number of matched handler runs
type Metrics struct {
	// Published counts events the bus accepted: Publish or PublishAndWait got
	// past validation, closing and backpressure, whether or not any
	// subscription matched.
	Published uint64
	// Delivered counts handler runs that returned nil. A goroutine adds
	// the runs it made back to back for one event at once, when it is done
	// with that event, before the event counts as finished.
	Delivered uint64
	// Failed counts handler runs that returned an error, panicked or called
	// runtime.Goexit. Each is logged once at Error level.
	Failed uint64
	// Panics counts the runs in Failed that panicked.
	Panics uint64
	// Rejected counts valid events the bus refused before accepting them:
	// ErrQueueFull with OverflowReject, ctx ending while Publish waited for
	// room with OverflowBlock, or a ctx already done when Publish or
	// PublishAndWait was called. No handler sees a rejected event.
	Rejected uint64
	// Skipped counts matched handler runs that never started because
	// Unsubscribe removed their subscription first. Nothing else skips a
	// run: after a handler's runtime.Goexit, the runs its goroutine had not
	// started still run, on another goroutine.
	Skipped uint64
	// Slow counts handler runs still going WithSlowHandlerThreshold after
	// they started, once each, when the watchdog notices; they go on
	// running and end up in Delivered or Failed like any other.
	Slow uint64

	// Queued is the number of handler runs accepted but not yet started:
	// sync runs waiting for a worker, async runs waiting for a goroutine,
	// and ordered runs waiting in their lane.
	Queued int64
	// InFlight is the number of goroutines running handlers now: a
	// goroutine that runs several back to back counts once.
	InFlight int64
	// Subscribers is the number of live subscriptions.
	Subscribers int
}

// counters are the rarely moving values behind Metrics.
type counters struct {
	failed   atomic.Uint64
	panics   atomic.Uint64
	rejected atomic.Uint64
	skipped  atomic.Uint64
	slow     atomic.Uint64
}

// A shard holds the counters that move on every event. Each publisher adds to
// a shard picked at random and each worker to its own, so that goroutines on
// different cores rarely write the same cache line; Metrics sums them.
type shard struct {
	idx       int      // this shard's index: read on every run, never written
	_         [56]byte // so it stays off the counters' line
	published atomic.Uint64
	delivered atomic.Uint64
	inFlight  atomic.Int64
	queued    atomic.Int64
	_         [96]byte // a cache line (and its prefetched pair) per shard
}

// shardCount returns the number of shards for a new bus: a power of two, at
// least 8 and twice the number of CPUs the process may use, at most 64.
func shardCount() int {
	n := 8
	for n < 2*runtime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	return n
}

// Metrics returns a snapshot of the bus's counters. It is safe to call at any
// time, from any goroutine, also after Close, and never blocks. It costs one
// pass over the bus's counter shards (8 to 64 of them, by CPU count).
func (b *Bus) Metrics() Metrics {
	m := Metrics{
		Failed:      b.m.failed.Load(),
		Panics:      b.m.panics.Load(),
		Rejected:    b.m.rejected.Load(),
		Skipped:     b.m.skipped.Load(),
		Slow:        b.m.slow.Load(),
		Subscribers: len(b.reg.Load().subs),
	}
	for i := range b.shards {
		s := &b.shards[i]
		m.Published += s.published.Load()
		m.Delivered += s.delivered.Load()
		m.InFlight += s.inFlight.Load()
		m.Queued += s.queued.Load()
	}
	// One shard's decrement may be read before another's increment.
	m.InFlight = max(m.InFlight, 0)
	m.Queued = max(m.Queued, 0)
	return m
}
