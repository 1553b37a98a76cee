package otelbus

import (
	"context"
	"errors"
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/adws/eventbus"
)

// Names of the instruments that the semantic conventions do not define; the
// others are messaging.client.sent.messages and messaging.process.duration.
const (
	nameFailures = "eventbus.handler.failures"
	nameQueued   = "eventbus.queue.depth"
	nameInFlight = "eventbus.handler.in_flight"
)

// durationBuckets are the bucket boundaries, in seconds, of
// messaging.process.duration: the ones the messaging conventions advise,
// below five finer ones for handlers that take microseconds.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
}

// An Observer turns what an eventbus.Bus reports into OpenTelemetry spans
// and metrics: pass it to eventbus.New with eventbus.WithObserver, and hand
// the bus to ObserveBus for its queue instruments. See the package documentation
// for what it records.
//
// An Observer is safe for concurrent use and may serve several buses. Create
// one with New; the zero Observer records nothing.
type Observer struct {
	tracer trace.Tracer
	meter  metric.Meter

	sent     messagingconv.ClientSentMessages
	duration messagingconv.ProcessDuration
	failures metric.Int64Counter
	queued   metric.Int64ObservableUpDownCounter
	inFlight metric.Int64ObservableUpDownCounter

	noSpans bool // the tracer provider is a no-op one: skip spans altogether
	// unsetGlobal is the global tracer provider as New found it, when that
	// was OpenTelemetry's stand-in with no SDK behind it; nil otherwise. As
	// long as it is still the global provider, a run with no span in its
	// ctx would only get a span that records and propagates nothing.
	unsetGlobal trace.TracerProvider

	runs      cache[runKey, runEntry]
	publishes cache[publishKey, measureOpts]
}

// isUnsetGlobal reports whether tp is the global tracer provider as
// OpenTelemetry hands it out before otel.SetTracerProvider is called: a
// stand-in (package go.opentelemetry.io/otel/internal/global) that starts
// non-recording spans until a provider is set, and then delegates to it.
func isUnsetGlobal(tp trace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global" &&
		otel.GetTracerProvider() == tp
}

// untraced reports whether a run whose handler gets ctx needs no span of
// its own: ctx carries no span, and the global provider that the Observer
// uses still has no SDK behind it. Starting one would allocate a span and a
// context that record and propagate nothing.
func (o *Observer) untraced(ctx context.Context) bool {
	return o.unsetGlobal != nil && !trace.SpanContextFromContext(ctx).IsValid() &&
		otel.GetTracerProvider() == o.unsetGlobal
}

// isNoop reports whether tp is one of OpenTelemetry's no-op tracer
// providers, whose spans record nothing and propagate nothing.
func isNoop(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	return false
}

var (
	_ eventbus.Observer   = (*Observer)(nil)
	_ eventbus.RunStarter = (*Observer)(nil)
)

// New returns an Observer that creates spans with the tracer provider and
// instruments with the meter provider that opts name (default: the global
// ones). It creates its instruments at once and returns an error, with an
// Observer that still works, if the meter provider rejects any of them.
// Nil options are ignored.
func New(opts ...Option) (*Observer, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	o := &Observer{
		tracer:  c.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		meter:   c.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL)),
		noSpans: isNoop(c.tp),
	}
	if isUnsetGlobal(c.tp) {
		o.unsetGlobal = c.tp
	}
	var err, e error
	o.sent, e = messagingconv.NewClientSentMessages(o.meter)
	err = errors.Join(err, e)
	o.duration, e = messagingconv.NewProcessDuration(o.meter,
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	err = errors.Join(err, e)
	o.failures, e = o.meter.Int64Counter(nameFailures, metric.WithUnit("{run}"),
		metric.WithDescription("Number of handler runs that returned an error, panicked or called runtime.Goexit."))
	err = errors.Join(err, e)
	o.queued, e = o.meter.Int64ObservableUpDownCounter(nameQueued, metric.WithUnit("{run}"),
		metric.WithDescription("Handler runs accepted but not yet started (eventbus.Metrics.Queued)."))
	err = errors.Join(err, e)
	o.inFlight, e = o.meter.Int64ObservableUpDownCounter(nameInFlight, metric.WithUnit("{run}"),
		metric.WithDescription("Handler runs executing now (eventbus.Metrics.InFlight)."))
	err = errors.Join(err, e)
	return o, err
}

// Published counts one Publish or PublishAndWait call in
// messaging.client.sent.messages; the bus calls it as the call returns, on
// the publisher's goroutine. An event the bus accepted counts without
// error.type: p.Err is nil, or p.Runs > 0 (PublishAndWait returns handler
// errors, or its ctx's error once it stops waiting, for an event it
// accepted). An event it refused (p.Runs == 0 and p.Err non-nil:
// ErrQueueFull, ErrClosed, or ctx ending while Publish waited for room)
// counts with error.type, as the messaging conventions count a failed send.
// It makes no span.
func (o *Observer) Published(ctx context.Context, p eventbus.PublishInfo) {
	if o.tracer == nil {
		return
	}
	k := publishKey{typ: p.Event.Type, op: opPublish}
	if p.Wait {
		k.op = opPublishAndWait
	}
	if p.Err != nil && p.Runs == 0 {
		k.errType = refusalType(p.Err)
	}
	o.sent.Int64Counter.Add(ctx, 1, o.publishes.get(k, newPublishOpts).add...)
}

// HandlerStart starts the span of one handler run, at r.Start, as a child
// of the span in ctx (the publisher's), and returns ctx with the run's span
// in it: the handler gets that ctx (SubscribeContext and SubscribeAsync
// handlers), so the spans it starts itself are children of the run's span.
// The attributes that runs share go in at the start, for samplers to see.
// When the span has nothing to propagate (no tracer, or a no-op one), it
// returns ctx itself and allocates nothing. The bus calls it on the
// goroutine about to run the handler.
func (o *Observer) HandlerStart(ctx context.Context, r eventbus.RunInfo) context.Context {
	if o.tracer == nil || o.noSpans || o.untraced(ctx) {
		return ctx
	}
	re := o.runs.get(runKey{typ: r.Event.Type, group: groupName(&r)}, newRunEntry)
	sctx, span := o.tracer.Start(ctx, re.spanName, kindConsumer, trace.WithTimestamp(r.Start), re.spanAttrs)
	if !span.SpanContext().IsValid() {
		span.End()
		return ctx // nothing to propagate: a child of no span, on no SDK
	}
	return sctx
}

// HandlerDone ends the span that HandlerStart started for the run, found in
// ctx, which must be the ctx HandlerStart returned (the bus passes it), at
// r.Start+r.Duration, and records the run's duration in
// messaging.process.duration; a failed run also counts in
// eventbus.handler.failures and its span gets error.type, an exception
// event and an error status. The bus calls it on the goroutine that ran the
// handler, right after it returned. It blocks only as long as the
// providers' span processors and instruments do.
func (o *Observer) HandlerDone(ctx context.Context, r eventbus.RunInfo) {
	if o.tracer == nil {
		return
	}
	k := runKey{typ: r.Event.Type, group: groupName(&r)}
	var f failure
	if r.Err != nil {
		f = runFailure(r.Err)
		k.errType = f.errType
	}
	re := o.runs.get(k, newRunEntry)
	if !o.noSpans {
		// ctx is what HandlerStart returned: its span, when it has one, is
		// the run's (a child of a valid span is always valid).
		if span := trace.SpanFromContext(ctx); span.SpanContext().IsValid() {
			endSpan(span, &r, &f)
		}
	}
	o.duration.Float64Histogram.Record(ctx, r.Duration.Seconds(), re.rec...)
	if r.Err != nil {
		o.failures.Add(ctx, 1, re.add...)
	}
}

var kindConsumer = trace.WithSpanKind(trace.SpanKindConsumer)

// endSpan ends the span of run r, which failed as f says, if at all. The
// run's own attributes (subscription id, message id, conversation id, error
// type) go in only if the span records, which keeps an unsampled span cheap.
func endSpan(span trace.Span, r *eventbus.RunInfo, f *failure) {
	end := trace.WithTimestamp(r.Start.Add(r.Duration))
	if span.IsRecording() {
		own := make([]attribute.KeyValue, 2, 4)
		own[0] = keySubscriptionID.String(string(r.SubscriptionID))
		own[1] = semconv.MessagingMessageID(r.Event.ID.String())
		if r.Event.ADWID != "" {
			own = append(own, semconv.MessagingMessageConversationID(r.Event.ADWID))
		}
		if f.cause != nil {
			own = append(own, semconv.ErrorTypeKey.String(f.errType))
		}
		span.SetAttributes(own...)
		if f.cause != nil {
			if f.stack != nil {
				span.RecordError(f.cause, end, trace.WithAttributes(semconv.ExceptionStacktrace(string(f.stack))))
			} else {
				span.RecordError(f.cause, end)
			}
			span.SetStatus(codes.Error, f.cause.Error())
		}
	}
	span.End(end)
}
