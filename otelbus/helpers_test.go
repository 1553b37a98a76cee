package otelbus_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

// A harness is an Observer wired to an in-memory span recorder and a manual
// metric reader, plus a tracer for the publishers' own spans.
type harness struct {
	obs    *otelbus.Observer
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tracer trace.Tracer
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		require.NoError(t, tp.Shutdown(context.Background()))
		require.NoError(t, mp.Shutdown(context.Background()))
	})
	obs, err := otelbus.New(otelbus.WithTracerProvider(tp), otelbus.WithMeterProvider(mp))
	require.NoError(t, err)
	return &harness{obs: obs, spans: sr, reader: reader, tracer: tp.Tracer("publisher")}
}

// bus returns a bus reporting to h's Observer, closed at the end of the test.
func (h *harness) bus(t testing.TB, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	opts = append(opts, eventbus.WithObserver(h.obs), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	b := eventbus.New(opts...)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// processSpans returns the ended spans the Observer made, in end order.
func (h *harness) processSpans() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.InstrumentationScope().Name == otelbus.ScopeName {
			out = append(out, s)
		}
	}
	return out
}

// collect returns the metrics collected now, by instrument name.
func (h *harness) collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrKey renders an attribute set as "k=v,k=v", sorted by key.
func attrKey(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// sums returns the points of an int64 sum by attrKey; nil if m has none.
func sums(t testing.TB, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	if m.Data == nil {
		return nil
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T, want an int64 sum", m.Name, m.Data)
	if len(sum.DataPoints) == 0 {
		return nil
	}
	out := map[string]int64{}
	for _, p := range sum.DataPoints {
		out[attrKey(p.Attributes)] = p.Value
	}
	return out
}

// counts returns the counts of a float64 histogram's points by attrKey.
func counts(t testing.TB, m metricdata.Metrics) map[string]uint64 {
	t.Helper()
	if m.Data == nil {
		return nil
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a %T, want a float64 histogram", m.Name, m.Data)
	out := map[string]uint64{}
	for _, p := range h.DataPoints {
		out[attrKey(p.Attributes)] = p.Count
	}
	return out
}

// attrs returns a span's attributes by key, values as strings.
func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

// key joins "k=v" pairs into an attrKey, for expected values.
func key(pairs ...string) string {
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// subscribeBlocking subscribes a handler to bus that reports each run on
// the returned channel as it starts, then waits for release to be closed.
func subscribeBlocking(t testing.TB, bus *eventbus.Bus, release <-chan struct{}) <-chan struct{} {
	t.Helper()
	started := make(chan struct{}, 8)
	_, err := bus.Subscribe(func(eventbus.Event) error {
		started <- struct{}{}
		<-release
		return nil
	})
	require.NoError(t, err)
	return started
}

// only is a Filter on one event type.
func only(t eventbus.EventType) eventbus.Filter {
	return eventbus.Filter{Types: []eventbus.EventType{t}}
}
