package eventbus

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A Handler handles events synchronously. The bus calls it on one of its
// worker goroutines, or inline in the publishing goroutine when the bus was
// built WithMaxWorkers(0). A caller of PublishAndWait, or of Publish blocked
// by OverflowBlock with a ctx that can never end, may also run queued runs
// (of its own event or others) on its own goroutine instead of waiting. A
// Handler may be called concurrently for different events and must be safe
// for that. Its error and any panic are reported, never passed to
// another handler or to the publisher (except through PublishAndWait).
type Handler func(Event) error

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

// A HandlerError reports a failed handler run: the handler returned an error,
// panicked or called runtime.Goexit. PublishAndWait returns one per failed run,
// joined with errors.Join; use errors.As to get at them.
type HandlerError struct {
	SubscriptionID SubscriptionID
	EventType      EventType
	Err            error // the handler's error, or the panic as an error; Unwrap returns it
	Panic          any   // the recovered value when the handler panicked
	Stack          []byte
}

var _ error = (*HandlerError)(nil)

func (e *HandlerError) Error() string {
	return "eventbus: handler " + string(e.SubscriptionID) + " on " + string(e.EventType) + ": " + e.Err.Error()
}

// Unwrap returns e.Err, so errors.Is and errors.As see the handler's own error
// (or the error value it panicked with).
func (e *HandlerError) Unwrap() error { return e.Err }

// errGoexit is the Err of a HandlerError for a handler that called
// runtime.Goexit (as t.FailNow does) instead of returning.
var errGoexit = errors.New("handler called runtime.Goexit")

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

const (
	defaultMaxWorkers = 10
	defaultMaxAsync   = 10000
)

type config struct {
	maxWorkers int
	maxAsync   int
	queueLimit int // 0: no limit
	policy     OverflowPolicy
	logger     *slog.Logger
	slowAfter  time.Duration
	observer   Observer
}

// An Option configures a Bus created by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

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
// (default 10,000). Beyond that, async runs wait in a list, without bound, and
// a goroutine that finishes an async run takes the next one instead of
// exiting, so a burst of events cannot start a goroutine per run. It panics if
// n < 1.
func WithMaxAsync(n int) Option {
	if n < 1 {
		panic("eventbus: WithMaxAsync: limit must be at least 1")
	}
	return optionFunc(func(c *config) { c.maxAsync = n })
}

// WithQueueLimit bounds how many published events may wait for a worker at
// once (default: no bound, so Publish never blocks). An event waits while any
// of its sync handler runs has not been taken by a worker (or a helping
// caller). When n events wait, Publish blocks
// for room with OverflowBlock and returns ErrQueueFull with OverflowReject.
// The limit has no effect WithMaxWorkers(0), and async handlers, which get
// goroutines of their own at once, never count against it. It panics if n < 1
// or p is not a defined policy.
func WithQueueLimit(n int, p OverflowPolicy) Option {
	if n < 1 {
		panic("eventbus: WithQueueLimit: limit must be at least 1")
	}
	if p != OverflowBlock && p != OverflowReject {
		panic("eventbus: WithQueueLimit: unknown overflow policy")
	}
	return optionFunc(func(c *config) { c.queueLimit, c.policy = n, p })
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
	return subscribeOptionFunc(func(s *subscription) { s.ordered, s.orderBy = true, nil })
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
	return subscribeOptionFunc(func(s *subscription) { s.ordered, s.orderBy = true, key })
}

// WithName names a subscription. The name appears in log lines beside the
// subscription id.
func WithName(name string) SubscribeOption {
	return subscribeOptionFunc(func(s *subscription) { s.name = name })
}

// A Bus delivers published events to the subscriptions whose filters match.
// It is safe for concurrent use by many goroutines. Create one with New (the
// zero Bus is not usable) and stop it with Close or Shutdown; see the package
// documentation for the guarantees.
type Bus struct {
	log        *slog.Logger
	obs        Observer
	maxWorkers int
	queue      queue // used when maxWorkers > 0

	subsMu sync.Mutex
	reg    atomic.Pointer[registry] // copy-on-write; never nil
	byID   map[SubscriptionID]*subscription
	lastID uint64

	gen    atomic.Pointer[generation] // accepted events not yet finished
	lifeMu sync.Mutex                 // guards sealed
	sealed []*generation              // generations Drain or Shutdown wait for
	closed atomic.Bool                // set by Shutdown, before it seals

	stop     context.Context // cancelled when Shutdown gives up waiting
	stopFunc context.CancelFunc

	workers sync.WaitGroup
	async   sync.WaitGroup
	asyncQ  asyncQueue
	pool    sync.Pool // of *delivery
	clock   clock
	watch   watchdog

	shards    []shard // hot counters, spread to avoid contention
	shardMask int
	m         counters
}

// New returns a Bus configured by opts, ready for use. It starts no goroutine:
// the worker goroutines start with the first event that has to be queued for
// them, and Close or Shutdown stops them. Nil options are ignored.
func New(opts ...Option) *Bus {
	c := config{maxWorkers: defaultMaxWorkers, maxAsync: defaultMaxAsync}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
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
	for i := range b.shards {
		b.shards[i].idx = i
	}
	b.queue.init(c.maxWorkers, c.queueLimit, c.policy)
	b.asyncQ.max = c.maxAsync
	b.asyncQ.maxIdle = min(c.maxAsync, 16*runtime.GOMAXPROCS(0))
	b.pool.New = func() any { return newDelivery(b) }
	b.clock.epoch = time.Now()
	if c.slowAfter > 0 {
		b.watch.init(c.slowAfter, shards)
	}
	b.reg.Store(&registry{})
	b.gen.Store(newGeneration(shards))
	b.stop, b.stopFunc = context.WithCancel(context.Background())
	return b
}

var defaultBus = sync.OnceValue(func() *Bus { return New() })

// Default returns the process-wide Bus, created with default options on first
// use. It is safe for concurrent first use. Do not close it unless the process
// is exiting: it is never recreated.
func Default() *Bus { return defaultBus() }

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
	return b.subscribe(&subscription{handler: h}, opts)
}

// SubscribeAsync registers h to run in a goroutine of its own for each
// matching event. Via Publish, h's ctx keeps the publisher's values but not
// its cancellation or deadline; via PublishAndWait it is the caller's ctx.
// Either way it is also cancelled when Shutdown's deadline passes. Errors as
// for Subscribe.
func (b *Bus) SubscribeAsync(h AsyncHandler, opts ...SubscribeOption) (SubscriptionID, error) {
	if h == nil {
		return "", ErrNilHandler
	}
	return b.subscribe(&subscription{async: h}, opts)
}

func (b *Bus) subscribe(s *subscription, opts []SubscribeOption) (SubscriptionID, error) {
	for _, o := range opts {
		if o != nil {
			o.applySubscription(s)
		}
	}
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	if b.closed.Load() {
		return "", ErrClosed
	}
	b.lastID++
	s.id = SubscriptionID("sub-" + strconv.FormatUint(b.lastID, 10))
	b.byID[s.id] = s
	b.reg.Store(b.reg.Load().with(s))
	return s.id, nil
}

// Unsubscribe removes the subscription id and reports whether it existed. No
// event published after Unsubscribe returns reaches it, and its queued runs
// that have not started are skipped (counted in Metrics.Skipped). A run
// already executing is not interrupted. It works after Close too.
func (b *Bus) Unsubscribe(id SubscriptionID) bool {
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

// A registry is one immutable version of the subscription list. Publish
// loads the current version without a lock; Subscribe and Unsubscribe build
// a new one under subsMu.
type registry struct {
	subs    []*subscription // in subscription order
	async   int             // how many of subs are async
	ordered int             // how many of subs are ordered
}

// with returns a copy of r with s added at the end.
func (r *registry) with(s *subscription) *registry {
	next := &registry{subs: append(slices.Clip(r.subs), s), async: r.async, ordered: r.ordered}
	next.count(s, 1)
	return next
}

// without returns a copy of r without s, or r if s is not in it.
func (r *registry) without(s *subscription) *registry {
	i := slices.Index(r.subs, s)
	if i < 0 {
		return r
	}
	next := &registry{subs: slices.Concat(r.subs[:i], r.subs[i+1:]), async: r.async, ordered: r.ordered}
	next.count(s, -1)
	return next
}

func (r *registry) count(s *subscription, delta int) {
	if s.async != nil {
		r.async += delta
	}
	if s.ordered {
		r.ordered += delta
	}
}

// Publish delivers e to every matching subscription and returns without waiting
// for the handlers, except WithMaxWorkers(0), where it runs the sync handlers
// inline before it returns. A zero e.ID or e.Timestamp is filled in first.
// Handler errors are logged and counted, not returned.
//
// Publish never blocks by default. On a bus built WithQueueLimit(n,
// OverflowBlock) it waits for room until ctx ends, then returns ctx.Err() and
// no handler sees e; with OverflowReject it returns ErrQueueFull. It returns
// ctx.Err() at once if ctx is already done, an error wrapping ErrInvalidEvent
// for an invalid e, and ErrClosed after Close.
func (b *Bus) Publish(ctx context.Context, e Event) error {
	return b.publish(ctx, e, false)
}

// PublishAndWait delivers e like Publish and waits until every matching
// handler, sync and async, has returned. It returns nil when all succeeded and
// otherwise errors.Join of one *HandlerError per failed run. If ctx ends first
// it returns ctx.Err(); the handlers still run to the end, and Drain and Close
// still wait for them. To keep a busy pool from starving it, the caller runs
// its own event's sync handlers that no worker has started yet, on its own
// goroutine. Other errors as for Publish.
func (b *Bus) PublishAndWait(ctx context.Context, e Event) error {
	return b.publish(ctx, e, true)
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
	b.lifeMu.Lock()
	if !b.closed.Load() && b.gen.Load().busy() {
		b.sealLocked(newGeneration(len(b.shards)))
	}
	waits := b.unfinishedLocked()
	b.lifeMu.Unlock()
	return waitAll(ctx, waits)
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
	b.lifeMu.Lock()
	if !b.closed.Load() {
		b.subsMu.Lock()
		b.closed.Store(true) // under subsMu: no Subscribe after this
		b.subsMu.Unlock()
		b.sealLocked(closedGeneration(len(b.shards)))
		b.queue.close()
		b.asyncQ.closeIdle()
	}
	waits := b.unfinishedLocked()
	b.lifeMu.Unlock()
	if err := waitAll(ctx, waits); err != nil {
		b.stopFunc()
		return err
	}
	// Every accepted event has finished, so these return as soon as the
	// goroutines run out of their last deferred calls.
	b.workers.Wait()
	b.async.Wait()
	b.stopWatchdog()
	b.stopFunc()
	return nil
}

// finished reports whether every event accepted before Shutdown sealed the
// last generation has finished.
func (b *Bus) finished() bool {
	b.lifeMu.Lock()
	defer b.lifeMu.Unlock()
	return len(b.unfinishedLocked()) == 0
}

// Close is Shutdown(context.Background()): it waits for all accepted work and
// returns nil. A second call returns nil.
func (b *Bus) Close() error { return b.Shutdown(context.Background()) }

// A subscription is one registered handler with its options.
type subscription struct {
	id        SubscriptionID
	name      string
	handler   Handler
	async     AsyncHandler
	filters   []Filter
	once      bool
	claimed   atomic.Bool // Once: a Publish took the one event
	cancelled atomic.Bool // Unsubscribe ran: skip queued runs

	ordered   bool               // Ordered or OrderedBy
	orderBy   func(Event) string // OrderedBy's key; nil: ADWID
	lanesMu   sync.Mutex         // guards lanes and freeLanes
	freeLanes []*lane            // released lanes, for reuse
	lanes     map[string]*lane   // the busy lanes, by key

	stats [statStripes]subStats
}
