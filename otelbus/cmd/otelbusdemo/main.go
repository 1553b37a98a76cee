// Command otelbusdemo runs a small workflow through an eventbus.Bus with an
// otelbus.Observer and prints the spans and metrics it produced with the
// OpenTelemetry SDK's stdout exporters, as a stream of JSON objects: every
// span as it ends, then one collection of the metrics. The README's sample
// is this output, condensed with jq:
//
//	go run ./cmd/otelbusdemo | jq -c -f cmd/otelbusdemo/condense.jq
package main

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	res := resource.NewSchemaless(semconv.ServiceName("otelbusdemo"))
	spanOut, err := stdouttrace.New(stdouttrace.WithPrettyPrint(), stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		return err
	}
	// A syncer exports each span as it ends, on the goroutine that ends it.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spanOut), sdktrace.WithResource(res))
	defer func() { _ = tp.Shutdown(ctx) }()
	reader := metric.NewManualReader()
	mp := metric.NewMeterProvider(metric.WithReader(reader), metric.WithResource(res))
	defer func() { _ = mp.Shutdown(ctx) }()

	obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	bus := eventbus.New(eventbus.WithObserver(obs), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()
	unregister, err := obs.ObserveBus(bus)
	if err != nil {
		return err
	}
	defer unregister()

	steps := eventbus.Filter{Types: []eventbus.EventType{eventbus.StepStarted, eventbus.StepFailed}}
	if _, err := bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("audit")); err != nil {
		return err
	}
	if _, err := bus.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
		if e.Type == eventbus.StepFailed {
			return errors.New("warehouse unreachable")
		}
		return nil
	}, eventbus.WithName("loader"), steps); err != nil {
		return err
	}

	tracer := tp.Tracer("otelbusdemo")
	for _, e := range []eventbus.Event{
		{Type: eventbus.WorkflowStarted, ADWID: "adw-7", Message: "ingest orders"},
		{Type: eventbus.StepStarted, ADWID: "adw-7", Message: "extract"},
		{Type: eventbus.StepFailed, ADWID: "adw-7", Message: "extract"},
	} {
		pctx, span := tracer.Start(ctx, "send "+string(e.Type), trace.WithSpanKind(trace.SpanKindProducer))
		err := bus.Publish(pctx, e)
		span.End()
		if err != nil {
			return err
		}
	}
	if err := bus.Drain(ctx); err != nil {
		return err
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	metricOut, err := stdoutmetric.New(stdoutmetric.WithPrettyPrint(), stdoutmetric.WithWriter(os.Stdout))
	if err != nil {
		return err
	}
	return metricOut.Export(ctx, &rm)
}
