package eventbus

// This file holds the Bus, its constructor and its public methods, and the
// sentinel errors they return. How an event travels from Publish to its
// handlers starts in publish.go.

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// A Handler handles events synchronously. The bus calls it on one of its
// worker goroutines, or inline in the publishing goroutine when the bus was
// built WithMaxWorkers(0) or when the caller of PublishAndWait runs its own
// event's handlers (see [Bus.PublishAndWait]). A Handler may be called
// concurrently for different events and must be safe for that. Its error
// and any panic are reported, never passed to another handler or to the
// publisher (except through PublishAndWait).
type Handler func(Event) error

// A ContextHandler is a Handler that also gets a ctx: it runs where a
// Handler runs, and its ctx follows the rules of an [AsyncHandler]'s (see
// [Bus.SubscribeContext]).
type ContextHandler func(ctx context.Context, e Event) error

// An AsyncHandler handles events on a goroutine of the bus's, apart from the
// publisher and the workers; the bus tracks it until the handler returns and
// reuses idle goroutines rather than starting one per run. Its ctx carries
// the publisher's values; see [Bus.SubscribeAsync] for when it is cancelled.
type AsyncHandler func(ctx context.Context, e Event) error

// A SubscriptionID identifies a subscription within one Bus. IDs are "sub-1",
// "sub-2", ... in the order of subscription, and are never reused by that Bus.
type SubscriptionID string

// Errors returned by the bus. Compare with errors.Is: ErrInvalidEvent is always
// wrapped with the reason.
var (
	// ErrClosed is returned by Publish, PublishAndWait, Subscribe and
	// SubscribeAsync once Close or Shutdown has been called.
	ErrClosed = errors.New("eventbus: bus closed")
	// ErrInvalidEvent is wrapped by the errors that Publish, PublishAndWait,
	// Event.Validate and Severity.UnmarshalText return for an event that
	// cannot be published: an empty Type or an unknown Severity.
	ErrInvalidEvent = errors.New("eventbus: invalid event")
	// ErrNilHandler is returned by Subscribe and SubscribeAsync for a nil
	// handler.
	ErrNilHandler = errors.New("eventbus: nil handler")
	// ErrQueueFull is returned by Publish and PublishAndWait on a bus built
	// WithQueueLimit(n, OverflowReject) when n events already wait for a
	// worker. No handler sees the event.
	ErrQueueFull = errors.New("eventbus: queue full")
	// ErrNilContext is returned by Publish, PublishAndWait, Drain and
	// Shutdown when given a nil context.
	ErrNilContext = errors.New("eventbus: nil context")
	// ErrInHandler is returned by Drain and Shutdown when their ctx is (or
	// derives from) the ctx of one of the bus's own async handlers: they
	// would wait for that handler, which waits for them. Call them from
	// another goroutine instead (go bus.Close()).
	ErrInHandler = errors.New("eventbus: Drain or Shutdown called from one of the bus's handlers")
)

// A Bus delivers published events to the subscriptions whose filters match.
// It is safe for concurrent use by many goroutines. Create one with New (the
// zero Bus is not usable) and stop it with Close or Shutdown; see the package
// documentation for the guarantees.
type Bus struct {
	log        *slog.Logger
	obs        Observer
	starter    RunStarter // obs, when it is one
	maxWorkers int
	clock      clock

	// The registry (registry.go): reg is read without a lock, subsMu
	// guards the rest and every store to reg.
	subsMu sync.Mutex
	reg    atomic.Pointer[registry]
	byID   map[SubscriptionID]*subscription
	lastID uint64

	// Where runs wait for a goroutine, and the goroutines that take them
	// (queue.go): the workers run sync handlers, the async goroutines
	// async ones. Each queue has its own lock.
	workers queue
	async   queue

	deliveries     sync.Pool    // of *delivery, recycled per bus
	deliveriesMade atomic.Int64 // gives each new delivery its shard
	life           lifecycle    // what Drain and Shutdown wait for (drain.go)
	watch          watchdog

	shards    []shard // hot counters, spread to avoid contention (metrics.go)
	shardMask int
	m         counters
}

// New returns a Bus configured by opts, ready for use. It starts no goroutine:
// workers and async goroutines start when runs wait for them, and Close or
// Shutdown stops them. Nil options are ignored.
func New(opts ...Option) *Bus {
	c := config{maxWorkers: defaultMaxWorkers, maxAsync: defaultMaxAsync, logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	shards := shardCount()
	b := &Bus{
		log:        c.logger,
		obs:        c.observer,
		maxWorkers: c.maxWorkers,
		byID:       make(map[SubscriptionID]*subscription),
		shards:     make([]shard, shards),
		shardMask:  shards - 1,
	}
	b.starter, _ = c.observer.(RunStarter)
	for i := range b.shards {
		b.shards[i].idx = i
	}
	b.clock.start()
	b.reg.Store(&registry{})
	b.workers.init(b, c.maxWorkers, c.maxWorkers)
	b.workers.limitAdmission(c.queueLimit, c.policy)
	b.async.init(b, c.maxAsync, min(c.maxAsync, 16*runtime.GOMAXPROCS(0)))
	b.deliveries.New = func() any { return newDelivery(b) }
	b.life.init(b, shards)
	if c.slowAfter > 0 {
		b.watch.init(c.slowAfter, shards)
	}
	return b
}

var defaultBus atomic.Pointer[Bus]

// Default returns the process-wide Bus: the one SetDefault set, or else one
// created with default options on first use (New starts no goroutine, so a
// bus that loses a race to be first is simply dropped). It is safe for
// concurrent use. Do not close it unless the process is exiting: a closed
// default is not recreated.
func Default() *Bus {
	if b := defaultBus.Load(); b != nil {
		return b
	}
	defaultBus.CompareAndSwap(nil, New())
	return defaultBus.Load()
}

// SetDefault makes b the bus that Default returns, as slog.SetDefault does
// for loggers. It does not close the previous default. It panics if b is
// nil.
func SetDefault(b *Bus) {
	if b == nil {
		panic("eventbus: SetDefault: nil bus")
	}
	defaultBus.Store(b)
}

// MaxWorkers returns the number of worker goroutines that run sync handlers;
// zero means they run inline in the publisher.
func (b *Bus) MaxWorkers() int { return b.maxWorkers }

// Subscribe registers h for the events that match the subscription's filters
// (every event, without a Filter). Events published after Subscribe returns
// reach h; a Publish already running does not. It returns ErrNilHandler for a
// nil h and ErrClosed after Close. Nil options are ignored.
func (b *Bus) Subscribe(h Handler, opts ...SubscribeOption) (SubscriptionID, error) {
	if h == nil {
		return "", ErrNilHandler
	}
	return b.subscribe(&subscription{kind: syncHandler, handler: h}, opts)
}

// SubscribeAsync registers h to run on a goroutine of the bus for each
// matching event, apart from the publisher and the workers. Idle goroutines
// are reused; at most WithMaxAsync of them run at once. Via Publish, h's ctx
// keeps the publisher's values but not its cancellation or deadline; via
// PublishAndWait it is the caller's ctx, unless the subscription is
// [Detached]. Either way it is also cancelled when Shutdown's deadline
// passes. Errors as for Subscribe.
func (b *Bus) SubscribeAsync(h AsyncHandler, opts ...SubscribeOption) (SubscriptionID, error) {
	if h == nil {
		return "", ErrNilHandler
	}
	return b.subscribe(&subscription{kind: asyncHandler, withCtx: h}, opts)
}

// SubscribeContext registers h like Subscribe (it runs on a worker, or
// inline WithMaxWorkers(0)), and gives it a ctx by the rules of
// SubscribeAsync: via Publish, the publisher's values without its
// cancellation or deadline; via PublishAndWait, the caller's ctx; either way
// also cancelled when Shutdown's deadline passes. With [Detached] it never
// follows the caller's cancellation. The ctx lets a handler carry a trace
// into the calls it makes, and notice Shutdown's deadline. Errors as for
// Subscribe.
func (b *Bus) SubscribeContext(h ContextHandler, opts ...SubscribeOption) (SubscriptionID, error) {
	if h == nil {
		return "", ErrNilHandler
	}
	return b.subscribe(&subscription{kind: contextHandler, withCtx: h}, opts)
}

// Unsubscribe removes the subscription id and reports whether it existed. No
// event published after Unsubscribe returns reaches it, and its runs that
// have not started are skipped (counted in Metrics.Skipped). A run already
// executing is not interrupted. It works after Close too.
func (b *Bus) Unsubscribe(id SubscriptionID) bool { return b.unsubscribe(id) }

// Publish delivers e to every matching subscription and returns without waiting
// for the handlers, except WithMaxWorkers(0), where it runs the sync handlers
// inline before it returns. A zero e.ID or e.Timestamp is filled in first.
// Handler errors are logged and counted, not returned.
//
// Publish never blocks by default. On a bus built WithQueueLimit(n,
// OverflowBlock) it waits for room until ctx ends, then returns ctx.Err() and
// no handler sees e; with OverflowReject it returns ErrQueueFull. It returns
// ctx.Err() at once if ctx is already done (counting e in Metrics.Rejected),
// an error wrapping ErrInvalidEvent for an invalid e, and ErrClosed after
// Close.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	return b.publish(ctx, e, noWait)
}

// PublishAndWait delivers e like Publish and waits until every matching
// handler, sync and async, has returned. It returns nil when all succeeded and
// otherwise errors.Join of one *HandlerError per failed run, in subscription
// order (sync handlers first). If ctx ends first it returns at once
// errors.Join(ctx.Err(), the HandlerErrors of the runs that had already
// failed, a *PendingError naming the runs not finished), so errors.Is(err,
// context.DeadlineExceeded) holds; the pending runs go on to the end, and
// Drain and Close still wait for them. [HandlerErrors] lists the failures.
//
// When ctx can never end (it has no Done channel, as context.Background), the
// caller runs its event's sync handlers itself, on its own goroutine, one
// after another. When ctx can end, the workers run them and the caller only
// waits, so that it can return as soon as ctx ends. Either way, while the
// caller waits the bus may run one more worker and one more async goroutine
// than its bounds, so that a handler that calls PublishAndWait cannot
// deadlock the bus whatever its pool size. Other errors as for Publish.
func (b *Bus) PublishAndWait(ctx context.Context, e Event) error {
	return b.publish(ctx, e, b.waitModeFor(ctx))
}

// Drain waits until every handler run that was queued or executing when Drain
// was called has returned, and returns nil; if ctx ends first it returns
// ctx.Err(). Runs of events published after the call, including events that
// handlers publish, are not waited for. Drain leaves the bus open and starts no
// goroutine. A handler must not Drain its own bus, which would wait for the
// handler itself: given an async handler's ctx, Drain returns ErrInHandler;
// from a sync handler it waits until ctx ends.
func (b *Bus) Drain(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	if b.inHandler(ctx) {
		return ErrInHandler
	}
	return waitAll(ctx, b.life.seal())
}

// Shutdown stops the bus. From the moment it is called, Publish,
// PublishAndWait, Subscribe and SubscribeAsync return ErrClosed. It then waits
// for every accepted event's handlers to return, queued runs included, and for
// every goroutine of the bus to exit, and returns nil. If ctx ends first, it
// cancels the ctx of the async handlers still running and returns ctx.Err();
// the workers go on finishing the queue and exit after it. A later call waits
// again, so Close after a timed-out Shutdown returns once nothing is left.
func (b *Bus) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	if b.inHandler(ctx) {
		return ErrInHandler
	}
	if b.life.close(&b.subsMu) {
		b.workers.close()
		b.async.close()
	}
	if err := waitAll(ctx, b.life.unfinished()); err != nil {
		b.life.giveUp()
		return err
	}
	// Every accepted event has finished, so these return as soon as the
	// goroutines run out of their last deferred calls.
	b.workers.group.Wait()
	b.async.group.Wait()
	b.stopWatchdog()
	b.life.giveUp()
	return nil
}

// Close is Shutdown(context.Background()): it waits for all accepted work and
// returns nil. A second call returns nil.
func (b *Bus) Close() error { return b.Shutdown(context.Background()) }
