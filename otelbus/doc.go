// Package otelbus reports the work of an [eventbus.Bus] to OpenTelemetry: a
// span per handler run, and metrics for publishes, runs, failures and the
// bus's queue.
//
// # Setup
//
// [New] returns an [Observer], an [eventbus.Observer] that uses the tracer
// and meter providers given with [WithTracerProvider] and
// [WithMeterProvider] (default: the global ones, otel.GetTracerProvider and
// otel.GetMeterProvider). Pass it to eventbus.New with eventbus.WithObserver,
// then hand the bus to [Observer.ObserveBus] for its queue instruments, which
// need the bus itself:
//
//	obs, err := otelbus.New()
//	bus := eventbus.New(eventbus.WithObserver(obs))
//	unregister, err := obs.ObserveBus(bus)
//	defer unregister()
//
// One Observer may serve several buses.
//
// # Spans
//
// Every handler run gets a span named "process <event type>", of kind
// Consumer, that starts and ends when the run did ([eventbus.RunInfo] Start
// and Start+Duration). The Observer is an [eventbus.RunStarter]: the bus
// calls [Observer.HandlerStart] as each run starts, with the ctx given to
// Publish or PublishAndWait (or, for a handler fed by Publish, a ctx with
// its values), and the span starts there, as a child of the span in that
// ctx, so a trace goes on across the bus. That holds for fire-and-forget
// Publish too, even when the publisher's span has ended before the handler
// runs. The ctx HandlerStart returns carries the run's span, and the bus
// hands it to the handler (SubscribeContext and SubscribeAsync handlers):
// the spans a handler starts from its ctx are children of the run's span.
// [Observer.HandlerDone] ends the span. A publisher
// without a span gets runs that start traces of their own. The Observer makes
// no span for the publish itself: to have one, start a Producer span
// ("send <event type>", as the conventions name it) around Publish.
//
// A run's span has these attributes, named by the OpenTelemetry messaging
// conventions (semconv v1.43.0) where they fit:
//
//   - messaging.system: "eventbus"
//   - messaging.operation.type and messaging.operation.name: "process"
//   - messaging.destination.name: the event type
//   - messaging.consumer.group.name: the subscription's name (eventbus.WithName),
//     or its id when it has none
//   - eventbus.subscription.id: the subscription's id, such as "sub-3"
//   - messaging.message.id: the event's ID
//   - messaging.message.conversation_id: the workflow id (Event.ADWID), when set
//   - error.type, on a failed run: "panic" for a panic, otherwise what
//     semconv.ErrorType gives for the handler's error: the result of its
//     ErrorType() string method, if it has one, else its Go type, such as
//     "*errors.errorString"
//
// A failed run's span also has status Error, described by the handler's
// error message (for a panic, "panic: " and the value), and an "exception"
// event stamped at the run's end, with exception.type, exception.message and,
// for a panic, exception.stacktrace: the stack where it panicked.
//
// A plain Subscribe handler gets no ctx, so it cannot start child spans: use
// SubscribeContext for a handler that calls out and should carry the trace.
// When the tracer produces no span to propagate (a no-op provider, or the
// global one before an SDK is installed) and the publisher's ctx has none
// either, the handler gets the publisher's ctx unchanged.
//
// # Metrics
//
// The Observer's meter, named by [ScopeName], has these instruments:
//
//   - messaging.client.sent.messages (counter, {message}): one per Publish or
//     PublishAndWait call with a valid event, by messaging.destination.name
//     (the event type) and messaging.operation.name ("publish" or
//     "publish_and_wait"). An event the bus accepted counts without
//     error.type, also when no subscription matched, when PublishAndWait
//     returns handler errors, and when its ctx ends while it waits; so the
//     points without error.type add up to [eventbus.Metrics].Published. An
//     event the bus refused counts with error.type "queue_full", "closed",
//     "deadline_exceeded" or "canceled" (its ctx ended while it waited for
//     queue room), as the conventions count a failed send. An invalid event,
//     or a call whose ctx was done before it started, is not reported.
//   - messaging.process.duration (histogram, s): every handler run's
//     duration, by event type, messaging.consumer.group.name and error.type
//     (absent when the run succeeded). Its buckets are the ones the
//     conventions advise, from 5 ms to 10 s, below 0.1, 0.25, 0.5, 1 and
//     2.5 ms for fast in-process handlers.
//   - eventbus.handler.failures (counter, {run}): the runs that returned an
//     error, panicked or called runtime.Goexit, with the same attributes.
//   - eventbus.queue.depth and eventbus.handler.in_flight (asynchronous
//     up-down counters, {run}): [eventbus.Metrics].Queued and InFlight, read
//     at each collection from the buses given to [Observer.ObserveBus].
//
// Every point also has messaging.system "eventbus". The attributes of
// metrics hold no ids, only the subscription's name or id: name the
// subscriptions that come and go (Once subscriptions, for example), or each
// new id makes new series.
//
// # Concurrency and costs
//
// An Observer is safe for concurrent use. The bus calls it synchronously:
// Published on the publisher's goroutine as the call returns, HandlerDone
// on the goroutine that ran the handler, before the run counts as done for
// PublishAndWait and Drain. Neither blocks, except as long as the SDK's span
// processors and instruments do: use a batching span processor
// (sdktrace.WithBatcher), not a syncer, to keep exporting off the bus's
// goroutines.
//
// The attribute sets of the metrics, span names and shared span attributes
// are built once per kind of run (event type, subscription, error.type) and
// cached, up to 1,024 kinds; past that they are built per run. A run's
// span is started only where it can record or propagate something: not on
// a no-op provider, and not on the global provider before an SDK is
// installed for a run whose ctx carries no span (installing one later with
// otel.SetTracerProvider is noticed at the next run). Its own attributes are
// built only when the span records. So with no SDK a run costs a cache
// lookup and a histogram call and allocates nothing; with the SDK, most of
// the cost is the SDK's own span. README.md has the measured figures. A bus
// without an Observer pays one nil check per publish and per run.
package otelbus
