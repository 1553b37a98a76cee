package otelbus_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

// An Observer on a bus: one span per handler run, child of the publisher's
// span, and the bus's metrics. The example keeps spans and metrics in memory
// and prints them without timings and ids; an application would hand the
// SDK an exporter instead.
func Example() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) }()

	obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	bus := eventbus.New(eventbus.WithObserver(obs), eventbus.WithMaxWorkers(0),
		eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()
	unregister, err := obs.ObserveBus(bus)
	if err != nil {
		log.Fatal(err)
	}
	defer unregister()

	_, _ = bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("audit"))
	_, _ = bus.Subscribe(func(eventbus.Event) error { return errors.New("warehouse unreachable") },
		eventbus.WithName("loader"), eventbus.Filter{Types: []eventbus.EventType{eventbus.StepFailed}})

	// The publishers' own spans; the runs' spans become their children.
	tracer := tp.Tracer("orders")
	pctx, span := tracer.Start(ctx, "send step_started", trace.WithSpanKind(trace.SpanKindProducer))
	_ = bus.Publish(pctx, eventbus.Event{Type: eventbus.StepStarted, ADWID: "adw-7"})
	span.End()
	pctx, span = tracer.Start(ctx, "send step_failed", trace.WithSpanKind(trace.SpanKindProducer))
	err = bus.PublishAndWait(pctx, eventbus.Event{Type: eventbus.StepFailed, ADWID: "adw-7"})
	span.End()
	fmt.Println("PublishAndWait:", err)

	printSpans(spans.Ended())
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	printMetrics(rm)
	// Output:
	// PublishAndWait: eventbus: handler "loader" (sub-2) on step_failed for adw-7: warehouse unreachable
	// span "process step_started" consumer, child of "send step_started", status Unset
	//   eventbus.subscription.id=sub-1 messaging.consumer.group.name=audit messaging.destination.name=step_started messaging.message.conversation_id=adw-7 messaging.operation.name=process messaging.operation.type=process messaging.system=eventbus
	// span "process step_failed" consumer, child of "send step_failed", status Unset
	//   eventbus.subscription.id=sub-1 messaging.consumer.group.name=audit messaging.destination.name=step_failed messaging.message.conversation_id=adw-7 messaging.operation.name=process messaging.operation.type=process messaging.system=eventbus
	// span "process step_failed" consumer, child of "send step_failed", status Error "warehouse unreachable"
	//   error.type=*errors.errorString eventbus.subscription.id=sub-2 messaging.consumer.group.name=loader messaging.destination.name=step_failed messaging.message.conversation_id=adw-7 messaging.operation.name=process messaging.operation.type=process messaging.system=eventbus
	//   event exception: exception.message=warehouse unreachable exception.type=*errors.errorString
	// metric eventbus.handler.failures {run}
	//   error.type=*errors.errorString messaging.consumer.group.name=loader messaging.destination.name=step_failed messaging.operation.name=process messaging.system=eventbus: 1
	// metric eventbus.handler.in_flight {run}
	//   (no attributes): 0
	// metric eventbus.queue.depth {run}
	//   (no attributes): 0
	// metric messaging.client.sent.messages {message}
	//   messaging.destination.name=step_failed messaging.operation.name=publish_and_wait messaging.system=eventbus: 1
	//   messaging.destination.name=step_started messaging.operation.name=publish messaging.system=eventbus: 1
	// metric messaging.process.duration s
	//   error.type=*errors.errorString messaging.consumer.group.name=loader messaging.destination.name=step_failed messaging.operation.name=process messaging.system=eventbus: count 1
	//   messaging.consumer.group.name=audit messaging.destination.name=step_failed messaging.operation.name=process messaging.system=eventbus: count 1
	//   messaging.consumer.group.name=audit messaging.destination.name=step_started messaging.operation.name=process messaging.system=eventbus: count 1
}

// ObserveBus reports a bus's queue: here one run blocks the only worker and
// two more wait for it.
func ExampleObserver_ObserveBus() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()
	obs, err := otelbus.New(otelbus.WithMeterProvider(mp)) // spans: the global provider
	if err != nil {
		log.Fatal(err)
	}
	bus := eventbus.New(eventbus.WithObserver(obs), eventbus.WithMaxWorkers(1))
	defer bus.Close()
	unregister, err := obs.ObserveBus(bus, attribute.String("eventbus.bus.name", "orders"))
	if err != nil {
		log.Fatal(err)
	}
	defer unregister()

	started, release := make(chan struct{}, 3), make(chan struct{})
	defer close(release)
	_, _ = bus.Subscribe(func(eventbus.Event) error {
		started <- struct{}{}
		<-release
		return nil
	})
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted})
	<-started // the worker is busy; the next two events wait
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted})
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted})

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if g, ok := m.Data.(metricdata.Sum[int64]); ok && !g.IsMonotonic {
			p := g.DataPoints[0]
			fmt.Printf("%s {%s}: %d\n", m.Name, render(p.Attributes.ToSlice()), p.Value)
		}
	}
	// Output:
	// eventbus.queue.depth {eventbus.bus.name=orders}: 2
	// eventbus.handler.in_flight {eventbus.bus.name=orders}: 1
}

// printSpans prints the Observer's spans, in the order they ended, with
// their parents' names and their attributes, leaving out the message id.
func printSpans(ended []sdktrace.ReadOnlySpan) {
	names := map[trace.SpanID]string{}
	for _, s := range ended {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range ended {
		if s.InstrumentationScope().Name != otelbus.ScopeName {
			continue
		}
		status := s.Status().Code.String()
		if s.Status().Description != "" {
			status += fmt.Sprintf(" %q", s.Status().Description)
		}
		fmt.Printf("span %q %s, child of %q, status %s\n", s.Name(), s.SpanKind(), names[s.Parent().SpanID()], status)
		fmt.Println("  " + render(s.Attributes(), "messaging.message.id"))
		for _, ev := range s.Events() {
			fmt.Printf("  event %s: %s\n", ev.Name, render(ev.Attributes))
		}
	}
}

// printMetrics prints each metric's points, sorted, with sums' values and
// histograms' counts.
func printMetrics(rm metricdata.ResourceMetrics) {
	var ms []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		ms = append(ms, sm.Metrics...)
	}
	slices.SortFunc(ms, func(a, b metricdata.Metrics) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range ms {
		var lines []string
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				lines = append(lines, fmt.Sprintf("%s: %d", render(p.Attributes.ToSlice()), p.Value))
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				lines = append(lines, fmt.Sprintf("%s: count %d", render(p.Attributes.ToSlice()), p.Count))
			}
		}
		slices.Sort(lines)
		fmt.Println("metric", m.Name, m.Unit)
		for _, l := range lines {
			fmt.Println("  " + l)
		}
	}
}

// render prints attributes as sorted k=v pairs, leaving out the keys in skip.
func render(kvs []attribute.KeyValue, skip ...attribute.Key) string {
	var parts []string
	for _, kv := range kvs {
		if !slices.Contains(skip, kv.Key) {
			parts = append(parts, string(kv.Key)+"="+kv.Value.String())
		}
	}
	if len(parts) == 0 {
		return "(no attributes)"
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
