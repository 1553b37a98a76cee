// Package eventbus is an in-process event bus for Go services that run
// agentic data workflows. Services publish typed workflow events ([Event]) and
// subscribe handlers with filters; the bus runs the handlers on a bounded
// worker pool or in goroutines it tracks, times and logs every run, and keeps
// one handler's error or panic away from every other handler and from the
// publisher.
//
//	bus := eventbus.New()
//	defer bus.Close()
//	bus.Subscribe(alert, eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError}})
//	err := bus.PublishAndWait(ctx, eventbus.Event{ADWID: "adw-7", Type: eventbus.StepFailed, Severity: eventbus.SeverityError})
//
// # Subscribing
//
// [Bus.Subscribe] registers a [Handler], which runs on one of the bus's worker
// goroutines ([WithMaxWorkers], default 10) or, with WithMaxWorkers(0), inline
// in the publishing goroutine. [Bus.SubscribeContext] registers a
// [ContextHandler], which runs where a Handler runs and also receives a
// context. [Bus.SubscribeAsync] registers an [AsyncHandler], which receives a
// context and runs on a goroutine of the bus, never sharing it with another
// run at the same time (the bus reuses idle goroutines rather than starting
// one per run). Options narrow or shape a subscription: a [Filter] selects
// events (several Filters must all match), [Once] removes the subscription
// after its first event, [Ordered] and [OrderedBy] serialise it per
// workflow or key, [Detached] keeps its ctx from following the publisher's
// cancellation, [WithName] names it in logs and reports. [Bus.Unsubscribe]
// removes it.
//
// The ctx of a ContextHandler or AsyncHandler carries the publisher's
// values (a trace, a request id). Via Publish it does not follow the
// publisher's cancellation or deadline, since nobody waits; via
// PublishAndWait it is the caller's ctx, unless the subscription is
// [Detached]. Either way Shutdown cancels it when its deadline passes, and
// Drain and Shutdown recognise it ([ErrInHandler]).
//
// The registry is copy-on-write: Subscribe and Unsubscribe copy the list of
// subscriptions (O(n) in their number), and Publish reads the current list
// without a lock. So a Publish delivers to the
// subscriptions registered when it started, and a Subscribe or Unsubscribe
// during a Publish does not change whom that Publish matches. No event
// published after Unsubscribe returns reaches the subscription; runs of it
// that were queued but had not started are skipped and counted in
// [Metrics].Skipped. A run already executing is not interrupted.
//
// # Publishing
//
// [Bus.Publish] validates the event (a non-empty Type and a known Severity,
// else an error wrapping [ErrInvalidEvent]), fills in a zero ID and a zero
// Timestamp, and hands the event to every matching subscription; [NewEvent]
// gives an event its ID before it is published. A Publish whose ctx is
// already done returns ctx.Err() and refuses the event, counted in
// [Metrics].Rejected. IDs are
// version 4 UUIDs whose random bits come from the runtime's per-thread
// ChaCha8 generator (math/rand/v2), seeded by the operating system: unique,
// allocation-free, but not secret; set ID yourself when it must be
// unpredictable. The Timestamp is the wall clock at publish time, taken with
// a single monotonic clock read from a wall-clock reading at most 1 ms old,
// so it can lag a wall-clock step by at most 1 ms. It carries no monotonic
// clock reading, so == and Equal agree on it, also after a JSON round trip.
// Publish returns without waiting for handlers, except that with
// WithMaxWorkers(0) it runs the sync handlers inline before returning.
// Handler errors are logged and counted, not returned by Publish.
//
// [Bus.PublishAndWait] returns once every matching handler, sync and async,
// has returned: nil, or [errors.Join] of one [*HandlerError] per failed run.
// If its ctx ends first it returns at once errors.Join of ctx.Err(), the
// HandlerErrors of the runs that already failed and a [*PendingError] naming
// the runs not finished; those still run to the end, and Drain and Close
// still wait for them. [HandlerErrors] lists the failures in any such error.
// Where the handlers run depends on that ctx:
//
//   - When it can never end (context.Background, or the ctx an async handler
//     got from a Publish), the caller runs its event's sync handlers itself,
//     one after another, on its own goroutine, and, if there is no sync one,
//     one of the async ones: it would only wait otherwise.
//   - When it can end, the workers run them and the caller only waits, so
//     that it returns as soon as ctx ends; it never starts a handler itself.
//     The runs a waiting caller needs are taken before the runs of events
//     nobody waits for.
//   - With WithMaxWorkers(0) there are no workers, so the caller runs the
//     sync handlers inline whatever its ctx. It starts none after ctx has
//     ended, but cannot return while one of them is running.
//
// While a caller waits, each of the bus's pools (the workers, the async
// goroutines) may run one goroutine more than its bound; the extra
// goroutine exits when the caller stops waiting. That is what lets a handler
// call PublishAndWait on its own bus with any pool size and never deadlock:
// the goroutine it occupies is made up for while it waits. It also means
// that MaxWorkers and MaxAsync bound the goroutines that run handlers for
// events nobody waits for, plus one each per waiting caller.
//
// Handlers may call Publish, PublishAndWait, Subscribe and Unsubscribe on
// their own bus, with any pool size and queue limit, without deadlock
// (TestReentrancy). The one exception: an ordered handler must not
// PublishAndWait an event of its own key to its own subscription, which
// waits in the lane behind the handler itself. A handler must not wait for
// its own bus to go idle either: Drain and Shutdown given the ctx of one of
// the bus's async handlers return [ErrInHandler]; from a sync handler, which
// has no ctx the bus could recognise, they wait for the handler itself until
// their ctx ends, and Close waits forever. Call them from another goroutine
// (go bus.Close()).
//
// # Delivery and ordering
//
// Every matching subscription receives each accepted event exactly once, and
// async handlers always run; nothing is dropped. What is ordered:
//
//   - WithMaxWorkers(0): sync handlers run one after another, in subscription
//     order, in the publishing goroutine. Events from one goroutine therefore
//     reach each sync handler in publish order.
//   - With workers, queued runs are taken one at a time, in the order their
//     events were accepted (except that the runs a waiting PublishAndWait
//     caller needs go first), and run in parallel, so they may start and
//     finish in any order: two events published one after the other may
//     reach the same handler in either order, and one handler may run for
//     several events at once. A worker holds only the run it is in, so a
//     slow handler holds up no other run while another worker is free.
//   - A subscription made with [Ordered] receives the events of one workflow
//     (one ADWID) one at a time, in the order the bus accepted them, whether
//     its handler is sync or async and whether they came through Publish or
//     PublishAndWait; events of different workflows still run in parallel.
//     [OrderedBy] orders by another key. Events published by one goroutine
//     are accepted in the order of the calls; for concurrent publishers the
//     order is the order in which their events were accepted.
//   - Async handlers run on goroutines of their own, concurrently unless
//     subscribed with Ordered or OrderedBy.
//     At most [WithMaxAsync] of them (default 10,000) run at once; further
//     async runs wait in a list, and a goroutine that finishes one takes the
//     next, so a burst of events cannot start a goroutine per run.
//
// Handlers of one event see the same Event value; its Data map is shared and
// must be treated as read-only.
//
// # Events and their JSON
//
// A [Severity] has the value of the [log/slog] level of the same name
// (Debug -4, Info 0, Warning 4, Error 8, and Critical 12), so the zero
// Severity is INFO and slog.Level(sev) is the matching log level.
// [Event.MarshalJSON] writes the timestamp as RFC 3339 in UTC with nine
// fractional digits; [Event.UnmarshalJSON] also reads what Python services
// write: timestamps without a zone (UTC) or with a space for the "T"
// ([ParseTimestamp]), the built-in event types in any case
// ([EventType.Canonical]), and a missing or null severity as INFO. Custom
// event types are kept, and matched by filters, exactly. Text is decoded as
// [encoding/json] decodes it: invalid UTF-8, and escaped lone surrogates
// such as Python's "\udcff", become U+FFFD; of a key given twice the last
// wins; data nested deeper than encoding/json allows (10,000 levels) is an
// error.
//
// How ordering works, and what it costs: an ordered subscription keeps a
// lane per key while the key has a run in progress. The first event of an
// idle lane is handed out like any other; later events of the key wait in
// the lane (counted in [Metrics].Queued). When a run of the lane ends, the
// worker or async goroutine that ran it goes on with the next one itself; a
// publisher that ran it (WithMaxWorkers(0), or a PublishAndWait caller
// running its own handlers) returns to its caller instead and queues the
// next run for the bus's goroutines, so a steady stream of events of one
// key never keeps a publisher from returning. An idle lane is deleted, so
// memory follows the number of workflows in flight, not the number seen.
// Ordering costs a map lookup under a per-subscription mutex per event and
// per run. Two consequences follow. With WithMaxWorkers(0), an event whose
// lane is busy runs later, on one of the bus's async goroutines, so Publish
// may return before it ran (PublishAndWait still waits). And an ordered
// handler must not PublishAndWait an event of its own key to its own
// subscription: that event waits in the lane behind the handler itself.
//
// # Backpressure
//
// By default the queue has no bound: Publish never blocks and never drops.
// [WithQueueLimit](n, policy) bounds how many events may wait for a worker; an
// event is queued for all of its sync handlers or for none. When the queue is
// full, [OverflowBlock] makes Publish wait for room until its ctx ends (then
// it returns ctx.Err()), and [OverflowReject] makes it return [ErrQueueFull]
// at once; either way no handler sees the event, it is counted in
// [Metrics].Rejected, and a [Once] subscription stays available. The limit
// does not apply with WithMaxWorkers(0) and does not count async handlers.
//
// A publisher waiting for room may be one of the workers that would make the
// room (a handler publishing into its own bus). So with OverflowBlock, a
// publisher whose ctx can never end lends the bus a worker while it waits,
// as a waiting PublishAndWait caller does: one more worker than the bound
// runs queued handlers until the event fits. A publisher whose ctx can end
// waits until it ends and then returns ctx.Err() (TestReentrantOverflowBlock).
// Runs that a PublishAndWait caller runs itself never enter the queue, and
// never wait for room.
//
// # Shutdown
//
// [Bus.Drain] waits until every handler run that was queued or executing when
// it was called has returned, and leaves the bus open; it ignores events
// accepted later, so it returns even while publishers never pause. It starts
// no goroutine and does not poll.
//
// [Bus.Shutdown] refuses new work at once (Publish, PublishAndWait, Subscribe
// and SubscribeAsync return [ErrClosed]), waits for every accepted event's
// handlers, queued runs included, and for the bus's goroutines to exit. If
// its ctx ends first it cancels the ctx of the running async handlers and
// returns ctx.Err(); the workers still finish the queue and then exit, and a
// later Shutdown or Close waits for them. [Bus.Close] is
// Shutdown(context.Background()); calling it again returns nil. A Publish
// racing with Close either returns ErrClosed or has its event delivered.
//
// New starts no goroutine: workers and async goroutines start one by one as
// runs wait for them, up to their bounds; idle async goroutines beyond a
// few per CPU exit. The process-wide [Default] bus is created on first use;
// [SetDefault] replaces it, as slog.SetDefault does for loggers.
//
// # Errors and panics
//
// A handler's panic is recovered where the handler is called, so it never
// reaches another handler or the publisher, and the worker goes on. It
// becomes a [*HandlerError] with the panic value in Panic, the stack in Stack
// and an Err that wraps the value when it is an error. A handler that calls
// runtime.Goexit (as t.FailNow does) is reported the same way, with Err
// saying so, and ends its goroutine as Goexit demands, and nothing else: a
// worker or async goroutine that exits this way is replaced, so the pool
// keeps its size, and a lane it held goes on elsewhere; on the publisher's
// goroutine (WithMaxWorkers(0), or a PublishAndWait caller running its own
// handlers), the event's runs that had not started go to the bus's
// goroutines and still run, and Publish or PublishAndWait never returns.
//
// Filters and loggers are user code too. A [Filter].Match predicate that
// panics is recovered and logged ("filter panicked") and rejects the event
// for its subscription; one that calls runtime.Goexit ends the publisher's
// goroutine before the event is accepted, so no handler sees it. A slog
// handler that panics, in Enabled or in Handle, loses its line and nothing
// else; an [Observer] that panics is recovered and logged. One case is not
// guarded: a slog handler whose Enabled calls runtime.Goexit may lose the
// run its goroutine was about to start.
//
// Bad input is refused with an error and changes nothing: a nil handler
// ([ErrNilHandler]), an invalid event ([ErrInvalidEvent], wrapped with the
// reason), a nil context ([ErrNilContext]). Invalid option values are
// programming errors: WithMaxWorkers(n < 0), WithMaxAsync(n < 1),
// WithQueueLimit(n < 1, ...) or an unknown policy, and WithLogger(nil) panic
// with an "eventbus: " message.
//
// # Observability
//
// Every handler run is timed and logged once through [log/slog] ([WithLogger],
// default slog.Default()): "handler finished" at Debug on success, "handler
// failed" or "handler panicked" at Error on failure, with the attributes
// subscription_id, subscription_name (when set), event_type, event_id,
// adw_id and duration, plus error and, for panics, stack. Nothing is
// formatted or allocated for a disabled level. To read the clock once per
// run, runs made back to back on one goroutine share readings: a run's
// duration is measured from the end of the previous one (or from the
// publish, for the first), so it includes the bus's own few tens of
// nanoseconds between them. [Bus.Metrics] returns counters
// whose [Metrics] documentation says exactly when each moves; after Drain,
// Delivered + Failed + Skipped is the number of matched handler runs.
// [Bus.Subscriptions] returns the same per subscription (delivered, failed,
// panics, total and longest duration, runs in flight) with its name, kind
// and a summary of its filters; keeping those counters costs a few atomic
// additions per run, spread over stripes so that CPUs rarely share them.
//
// [WithObserver] hands every publish ([PublishInfo]) and every handler run
// ([RunInfo]: subscription, event, start, duration, error) to an
// [Observer], synchronously, on the goroutine that did it; an Observer that
// is also a [RunStarter] hears of each run as it starts and hands the
// handler its ctx; the nested module
// github.com/adws/eventbus/otelbus builds OpenTelemetry spans and metrics on
// it. Without an Observer the hook is one nil check per publish and per run
// and allocates nothing (BenchmarkObserver).
//
// [WithSlowHandlerThreshold](d) adds a watchdog: one goroutine per bus that
// looks at the runs in progress every d/4 and logs a run still going after d
// once at Warn ("handler slow", with its elapsed time), counting it in
// [Metrics].Slow; the run is not interrupted. It costs a lock and a list
// insertion per run (BenchmarkWatchdog) and nothing when off.
//
// Package eventbustest gives tests a bus closed at the end of the test and
// logging to the test's log, and a Recorder to wait for and inspect the
// events a subscription receives.
//
// A bus keeps its clock readings relative to its own creation and its
// recycled objects to itself, so a bus created inside a testing/synctest
// bubble works with the bubble's fake time.
//
// # Costs
//
// Every handler run reads the monotonic clock once: runs made back to back
// on one goroutine share readings, the end of one being the start of the
// next (the first starts at the publish's reading). Beyond that a run costs
// a deferred recover and a few atomic additions on counters striped so that
// CPUs rarely share them (per subscription: runs started, delivered or
// failed, total and longest duration; the bus's delivered and in-flight
// counts are added once per series of runs one goroutine makes back to
// back), and nothing is formatted unless its log level is on. A publish costs a
// validation, an ID from the runtime's per-thread generator, the timestamp
// taken from the first run's clock reading, a walk over the registry
// snapshot with each subscription's filters, a count in a sharded
// generation for Drain, and, when runs go to a pool, one lock to queue them
// and one for each worker that joins in; the workers then claim the runs
// one at a time with an atomic addition. Deliveries are recycled per bus, so the
// publish paths allocate nothing in the steady state while Debug logging,
// the Observer and the watchdog are off (TestAllocations); handing a ctx to
// async handlers allocates it unless the publisher's ctx is
// context.Background. Ordering adds a map lookup under a per-subscription
// lock per event and per run, the watchdog a lock per run, and Subscribe and
// Unsubscribe copy the registry (O(n) in the subscriptions). The measured
// figures are in README.md's benchmark tables, with the machine, date and
// command they come from.
package eventbus
