package otelbus_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

// A handler kind, for the span tests.
type kind int

const (
	plain kind = iota
	withCtx
	async
)

// subscribeKind subscribes h as a handler of kind k; a plain one gets no ctx
// and passes h context.Background().
func subscribeKind(bus *eventbus.Bus, k kind, h func(context.Context, eventbus.Event) error) error {
	var err error
	switch k {
	case plain:
		_, err = bus.Subscribe(func(e eventbus.Event) error { return h(context.Background(), e) })
	case withCtx:
		_, err = bus.SubscribeContext(h)
	case async:
		_, err = bus.SubscribeAsync(h)
	}
	return err
}

// Every run's span is a child of the publisher's span, whichever way the
// event travelled: fire-and-forget to a worker, inline, to an async
// handler, or through PublishAndWait; also when the publisher's span ended
// before the handler ran. A handler that takes a ctx finds the run's span
// in it.
func TestSpanParent(t *testing.T) {
	for _, tt := range []struct {
		name    string
		workers int
		kind    kind
		wait    bool
	}{
		{name: "Publish/sync/workers", workers: 2},
		{name: "Publish/sync/inline", workers: 0},
		{name: "Publish/context/workers", workers: 2, kind: withCtx},
		{name: "Publish/context/inline", workers: 0, kind: withCtx},
		{name: "Publish/async", workers: 2, kind: async},
		{name: "PublishAndWait/sync/workers", workers: 2, wait: true},
		{name: "PublishAndWait/sync/inline", workers: 0, wait: true},
		{name: "PublishAndWait/context/workers", workers: 2, kind: withCtx, wait: true},
		{name: "PublishAndWait/async", workers: 2, kind: async, wait: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			bus := h.bus(t, eventbus.WithMaxWorkers(tt.workers))
			seen := make(chan trace.SpanContext, 1)
			require.NoError(t, subscribeKind(bus, tt.kind, func(ctx context.Context, _ eventbus.Event) error {
				seen <- trace.SpanContextFromContext(ctx)
				return nil
			}))

			ctx, cancel := context.WithCancel(context.Background())
			ctx, parent := h.tracer.Start(ctx, "send step_started", trace.WithSpanKind(trace.SpanKindProducer))
			publish := bus.Publish
			if tt.wait {
				publish = bus.PublishAndWait
			}
			require.NoError(t, publish(ctx, eventbus.Event{Type: eventbus.StepStarted}))
			parent.End()
			cancel() // a fire-and-forget publisher may be gone before its handlers run
			require.NoError(t, bus.Drain(context.Background()))
			sc := <-seen
			spans := h.processSpans()
			require.Len(t, spans, 1)
			got := spans[0]
			if tt.kind != plain {
				assert.Equal(t, got.SpanContext(), sc, "the handler's ctx carries the run's span")
			}
			assert.Equal(t, "process step_started", got.Name())
			assert.Equal(t, trace.SpanKindConsumer, got.SpanKind())
			assert.Equal(t, parent.SpanContext().TraceID(), got.SpanContext().TraceID(), "same trace")
			assert.Equal(t, parent.SpanContext().SpanID(), got.Parent().SpanID(), "child of the publisher's span")
			assert.False(t, got.Parent().IsRemote())
		})
	}
}

// A publisher without a span gets a run span that starts a trace of its own.
func TestSpanWithoutParent(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t, eventbus.WithMaxWorkers(0))
	_, err := bus.Subscribe(func(eventbus.Event) error { return nil })
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), eventbus.Event{Type: eventbus.ToolCalled}))
	require.NoError(t, bus.Publish(context.Background(), eventbus.Event{Type: eventbus.ToolCalled}))

	spans := h.processSpans()
	require.Len(t, spans, 2)
	for _, s := range spans {
		assert.False(t, s.Parent().IsValid(), "a root span")
		assert.True(t, s.SpanContext().IsValid())
	}
	assert.NotEqual(t, spans[0].SpanContext().TraceID(), spans[1].SpanContext().TraceID(), "one trace per publish")
}

// A run's span covers exactly the run's start and duration and carries the
// messaging attributes, as the bus described the run.
func TestSpanOfRunInfo(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	id := uuid.MustParse("6f1c0d8e-5a4b-4c3d-8e2f-1a2b3c4d5e6f")
	ctx, parent := h.tracer.Start(context.Background(), "send")
	run := eventbus.RunInfo{
		SubscriptionID: "sub-7",
		Name:           "indexer",
		Event:          eventbus.Event{ID: id, ADWID: "adw-42", Type: "order_placed"},
		Start:          start,
	}
	ctx = h.obs.HandlerStart(ctx, run)
	run.Duration = 1500 * time.Microsecond
	h.obs.HandlerDone(ctx, run)
	parent.End()

	spans := h.processSpans()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "process order_placed", s.Name())
	assert.Equal(t, trace.SpanKindConsumer, s.SpanKind())
	assert.Equal(t, start, s.StartTime())
	assert.Equal(t, start.Add(1500*time.Microsecond), s.EndTime())
	assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
	assert.Equal(t, codes.Unset, s.Status().Code)
	assert.Empty(t, s.Events())
	assert.Equal(t, map[string]string{
		"messaging.system":                  "eventbus",
		"messaging.operation.type":          "process",
		"messaging.operation.name":          "process",
		"messaging.destination.name":        "order_placed",
		"messaging.consumer.group.name":     "indexer",
		"eventbus.subscription.id":          "sub-7",
		"messaging.message.conversation_id": "adw-42",
		"messaging.message.id":              "6f1c0d8e-5a4b-4c3d-8e2f-1a2b3c4d5e6f",
	}, attrs(s))

	// Without a name, the group is the subscription id; without an ADWID,
	// there is no conversation id.
	run = eventbus.RunInfo{SubscriptionID: "sub-8", Event: eventbus.Event{ID: id, Type: "order_placed"}, Start: start}
	h.obs.HandlerDone(h.obs.HandlerStart(context.Background(), run), run)
	s = h.processSpans()[1]
	assert.Equal(t, "sub-8", attrs(s)["messaging.consumer.group.name"])
	assert.NotContains(t, attrs(s), "messaging.message.conversation_id")
}

// The spans a handler starts itself, with the ctx the bus gave it, are
// children of the run's span, for every kind of handler that takes a ctx.
func TestHandlerSpansAreChildrenOfTheRun(t *testing.T) {
	for _, k := range []kind{withCtx, async} {
		h := newHarness(t)
		bus := h.bus(t)
		require.NoError(t, subscribeKind(bus, k, func(ctx context.Context, _ eventbus.Event) error {
			_, span := h.tracer.Start(ctx, "query warehouse")
			span.End()
			return nil
		}))
		ctx, parent := h.tracer.Start(context.Background(), "send")
		require.NoError(t, bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.StepStarted}))
		parent.End()
		var run, query sdktrace.ReadOnlySpan
		for _, s := range h.spans.Ended() {
			switch s.Name() {
			case "process step_started":
				run = s
			case "query warehouse":
				query = s
			}
		}
		require.NotNil(t, run)
		require.NotNil(t, query)
		assert.Equal(t, run.SpanContext().SpanID(), query.Parent().SpanID(), "kind %d", k)
		assert.Equal(t, parent.SpanContext().SpanID(), run.Parent().SpanID())
	}
}

// The span of a real run names the event the handler got.
func TestSpanOfBusRun(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t)
	got := make(chan eventbus.Event, 1)
	id, err := bus.Subscribe(func(e eventbus.Event) error {
		got <- e
		return nil
	}, eventbus.WithName("audit"))
	require.NoError(t, err)
	require.NoError(t, bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.WorkflowStarted, ADWID: "adw-1"}))
	e := <-got

	spans := h.processSpans()
	require.Len(t, spans, 1)
	a := attrs(spans[0])
	assert.Equal(t, e.ID.String(), a["messaging.message.id"])
	assert.Equal(t, "adw-1", a["messaging.message.conversation_id"])
	assert.Equal(t, "audit", a["messaging.consumer.group.name"])
	assert.Equal(t, string(id), a["eventbus.subscription.id"])
	assert.Equal(t, "workflow_started", a["messaging.destination.name"])
	assert.False(t, spans[0].EndTime().Before(spans[0].StartTime()))
}

// codedError names its own error.type.
type codedError struct{}

func (codedError) Error() string     { return "warehouse unreachable" }
func (codedError) ErrorType() string { return "warehouse_down" }

// A failed run's span has error.type, an exception event at the run's end
// and an error status with the handler's message; a panic's event carries
// the panicking stack.
func TestSpanOfFailedRun(t *testing.T) {
	for _, tt := range []struct {
		name      string
		handler   eventbus.Handler
		errType   string
		message   string
		exception string // exception.type
		stack     bool
	}{
		{
			name:      "error",
			handler:   func(eventbus.Event) error { return errors.New("no rows") },
			errType:   "*errors.errorString",
			message:   "no rows",
			exception: "*errors.errorString",
		},
		{
			name:      "ErrorType method",
			handler:   func(eventbus.Event) error { return codedError{} },
			errType:   "warehouse_down",
			message:   "warehouse unreachable",
			exception: "github.com/adws/eventbus/otelbus_test.codedError",
		},
		{
			name:    "panic",
			handler: func(eventbus.Event) error { panic("boom") },
			errType: "panic",
			message: "panic: boom",
			stack:   true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			bus := h.bus(t)
			_, err := bus.Subscribe(tt.handler, eventbus.WithName("loader"))
			require.NoError(t, err)
			err = bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.StepFailed})
			var he *eventbus.HandlerError
			require.ErrorAs(t, err, &he)

			spans := h.processSpans()
			require.Len(t, spans, 1)
			s := spans[0]
			assert.Equal(t, codes.Error, s.Status().Code)
			assert.Equal(t, tt.message, s.Status().Description)
			assert.Equal(t, tt.errType, attrs(s)["error.type"])
			require.Len(t, s.Events(), 1)
			ev := s.Events()[0]
			assert.Equal(t, "exception", ev.Name)
			assert.Equal(t, s.EndTime(), ev.Time, "the event is stamped at the run's end, not when it was recorded")
			ea := map[string]string{}
			for _, kv := range ev.Attributes {
				ea[string(kv.Key)] = kv.Value.String()
			}
			assert.Equal(t, tt.message, ea["exception.message"])
			if tt.exception != "" {
				assert.Equal(t, tt.exception, ea["exception.type"])
			}
			if tt.stack {
				assert.Contains(t, ea["exception.stacktrace"], "TestSpanOfFailedRun", "the stack of the panic")
			} else {
				assert.NotContains(t, ea, "exception.stacktrace")
			}
		})
	}
}

// An Observer on the global provider starts no span for a run with no
// parent while no SDK is installed (a span then would record and propagate
// nothing, and cost allocations), and starts them once one is installed:
// the global provider delegates to it. Installing a global provider cannot
// be undone, so the check runs in a child process.
func TestGlobalProviderInstalledLater(t *testing.T) {
	if os.Getenv("OTELBUS_GLOBAL_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGlobalProviderInstalledLater$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "OTELBUS_GLOBAL_CHILD=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestGlobalProviderInstalledLater", "%s", out)
		return
	}
	o, err := otelbus.New()
	require.NoError(t, err)
	run := eventbus.RunInfo{SubscriptionID: "sub-1", Event: eventbus.Event{Type: eventbus.StepStarted}, Start: time.Now()}
	ctx := context.Background()
	assert.Equal(t, ctx, o.HandlerStart(ctx, run), "no SDK yet: the handler's ctx is the publisher's")

	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { require.NoError(t, tp.Shutdown(context.Background())) }()
	otel.SetTracerProvider(tp)
	hctx := o.HandlerStart(ctx, run)
	require.True(t, trace.SpanContextFromContext(hctx).IsValid(), "the SDK is installed: the run has a span")
	o.HandlerDone(hctx, run)
	require.Len(t, sr.Ended(), 1)
	assert.Equal(t, "process step_started", sr.Ended()[0].Name())
}
