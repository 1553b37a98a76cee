package otelbus_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

// discardSpans is a span processor that drops every span, so that a
// benchmark measures making spans, not keeping them.
type discardSpans struct{}

func (discardSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardSpans) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardSpans) Shutdown(context.Context) error                  { return nil }
func (discardSpans) ForceFlush(context.Context) error                { return nil }

// providers says which OpenTelemetry providers benchObserver uses.
type providers int

const (
	globalUnset   providers = iota // the global providers, before an SDK is installed
	noopProviders                  // go.opentelemetry.io/otel/{trace,metric}/noop
	sdkProviders                   // the SDK: every span sampled and dropped, metrics for a manual reader
)

func (p providers) String() string {
	return [...]string{"providers=global-unset", "providers=noop", "providers=sdk"}[p]
}

// benchObserver returns an Observer on the providers p, and a ctx holding a
// publisher's span (on the SDK).
func benchObserver(b testing.TB, p providers) (*otelbus.Observer, context.Context) {
	b.Helper()
	switch p {
	case globalUnset:
		o, err := otelbus.New()
		require.NoError(b, err)
		return o, context.Background()
	case noopProviders:
		o, err := otelbus.New(otelbus.WithTracerProvider(tracenoop.NewTracerProvider()), otelbus.WithMeterProvider(metricnoop.NewMeterProvider()))
		require.NoError(b, err)
		return o, context.Background()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardSpans{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	o, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
	require.NoError(b, err)
	ctx, span := tp.Tracer("publisher").Start(context.Background(), "send")
	b.Cleanup(func() { span.End() })
	return o, ctx
}

// BenchmarkHandlerDone measures what the Observer adds to one handler run,
// HandlerStart and HandlerDone as the bus calls them: one span and one
// histogram point, plus a counter, an exception event and an error status
// when the run failed.
func BenchmarkHandlerDone(b *testing.B) {
	herr := &eventbus.HandlerError{SubscriptionID: "sub-1", EventType: eventbus.StepFailed, Err: errors.New("no rows")}
	for _, bc := range []struct {
		name string
		p    providers
		err  error
	}{
		{name: globalUnset.String(), p: globalUnset},
		{name: noopProviders.String(), p: noopProviders},
		{name: sdkProviders.String(), p: sdkProviders},
		{name: sdkProviders.String() + "/failed", p: sdkProviders, err: herr},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o, ctx := benchObserver(b, bc.p)
			r := eventbus.RunInfo{
				SubscriptionID: "sub-1",
				Name:           "indexer",
				Event:          eventbus.Event{Type: eventbus.StepCompleted, ADWID: "adw-1"},
				Start:          time.Now(),
				Duration:       time.Millisecond,
				Err:            bc.err,
			}
			b.ReportAllocs()
			for b.Loop() {
				observeRun(o, ctx, r)
			}
		})
	}
}

// BenchmarkPublished measures what the Observer adds to one Publish call:
// one counter increment.
func BenchmarkPublished(b *testing.B) {
	for _, p := range []providers{globalUnset, noopProviders, sdkProviders} {
		b.Run(p.String(), func(b *testing.B) {
			o, ctx := benchObserver(b, p)
			p := eventbus.PublishInfo{Event: eventbus.Event{Type: eventbus.StepCompleted}, Runs: 1}
			b.ReportAllocs()
			for b.Loop() {
				o.Published(ctx, p)
			}
		})
	}
}

// BenchmarkPublish measures Publish with one inline subscriber on a bus
// without an Observer, with an Observer on the no-op providers, and with one
// on the SDK: the cost of the hook unset, idle and recording.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name     string
		observer bool
		p        providers
	}{
		{name: "observer=none"},
		{name: "observer=noop", observer: true, p: noopProviders},
		{name: "observer=sdk", observer: true, p: sdkProviders},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := []eventbus.Option{eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(slog.DiscardHandler))}
			ctx := context.Background()
			if bc.observer {
				var o *otelbus.Observer
				o, ctx = benchObserver(b, bc.p)
				opts = append(opts, eventbus.WithObserver(o))
			}
			bus := eventbus.New(opts...)
			b.Cleanup(func() { _ = bus.Close() })
			runs := 0
			_, err := bus.Subscribe(func(eventbus.Event) error {
				runs++
				return nil
			})
			require.NoError(b, err)
			e := eventbus.Event{Type: eventbus.StepCompleted, ADWID: "adw-1"}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := bus.Publish(ctx, e); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if runs != n {
				b.Fatalf("%d runs, want %d", runs, n)
			}
		})
	}
}

// observeRun tells o of run r as the bus does: as it starts, and when it is
// done, with the ctx HandlerStart returned.
func observeRun(o *otelbus.Observer, ctx context.Context, r eventbus.RunInfo) {
	o.HandlerDone(o.HandlerStart(ctx, r), r)
}
