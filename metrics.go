package eventbus

import "sync/atomic"

// Metrics is a snapshot of a Bus's counters, taken by [Bus.Metrics]. Every
// counter starts at zero when the bus is created and moves at the moment
// described beside it. Counters are read one by one, so a snapshot taken while
// events are in flight may be slightly inconsistent; after [Bus.Drain] returns
// with nothing else publishing, these hold:
//
//	runs started = Delivered + Failed
//	every matched handler run is Delivered, Failed or Skipped exactly once
type Metrics struct {
	// Published counts events the bus accepted: Publish or PublishAndWait got
	// past validation, closing and backpressure, whether or not any
	// subscription matched.
	Published uint64
	// Delivered counts handler runs that returned nil.
	Delivered uint64
	// Failed counts handler runs that returned an error, panicked or called
	// runtime.Goexit. Each is logged once at Error level.
	Failed uint64
	// Panics counts the runs in Failed that panicked.
	Panics uint64
	// Rejected counts events the bus refused for lack of queue room:
	// ErrQueueFull with OverflowReject, or ctx ending while Publish waited for
	// room with OverflowBlock. No handler sees a rejected event.
	Rejected uint64
	// Skipped counts queued handler runs that never started because their
	// subscription was removed by Unsubscribe first.
	Skipped uint64

	// Queued is the number of sync handler runs accepted but not yet started.
	Queued int64
	// InFlight is the number of handler runs, sync and async, executing now.
	InFlight int64
	// Subscribers is the number of live subscriptions.
	Subscribers int
}

// counters are the live values behind Metrics.
type counters struct {
	published atomic.Uint64
	delivered atomic.Uint64
	failed    atomic.Uint64
	panics    atomic.Uint64
	rejected  atomic.Uint64
	skipped   atomic.Uint64
	queued    atomic.Int64
	inFlight  atomic.Int64
}

// Metrics returns a snapshot of the bus's counters. It is safe to call at any
// time, from any goroutine, also after Close, and never blocks.
func (b *Bus) Metrics() Metrics {
	return Metrics{
		Published:   b.m.published.Load(),
		Delivered:   b.m.delivered.Load(),
		Failed:      b.m.failed.Load(),
		Panics:      b.m.panics.Load(),
		Rejected:    b.m.rejected.Load(),
		Skipped:     b.m.skipped.Load(),
		Queued:      b.m.queued.Load(),
		InFlight:    b.m.inFlight.Load(),
		Subscribers: len(*b.subs.Load()),
	}
}
