package otelbus

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/adws/eventbus"
)

// Past maxCached kinds of run, the cache stops growing and every run is
// still recorded with its own attributes; concurrent first uses of one key
// share one entry.
func TestCacheBound(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() {
		require.NoError(t, tp.Shutdown(context.Background()))
		require.NoError(t, mp.Shutdown(context.Background()))
	}()
	o, err := New(WithTracerProvider(tp), WithMeterProvider(mp))
	require.NoError(t, err)

	const kinds = maxCached + 100
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range kinds {
				r := testRun("group-" + strconv.Itoa(i))
				o.HandlerDone(o.HandlerStart(context.Background(), r), r)
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, o.runs.len(), maxCached+3, "at most one overshoot per racing goroutine")
	assert.GreaterOrEqual(t, o.runs.len(), maxCached)
	assert.Len(t, sr.Ended(), 4*kinds)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var points int
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "messaging.process.duration" {
				continue
			}
			for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				assert.Equal(t, uint64(4), p.Count)
				points++
			}
		}
	}
	assert.Equal(t, kinds, points, "one point per group, cached or not")
}

// testRun returns a successful run of a subscription named group.
func testRun(group string) eventbus.RunInfo {
	return eventbus.RunInfo{SubscriptionID: "sub-1", Name: group,
		Event: eventbus.Event{Type: eventbus.ToolCalled}, Start: time.Now(), Duration: time.Millisecond}
}
