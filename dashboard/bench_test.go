package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
)

// The core's S1 and S2 (bench/eventbus_test.go), each run without and with
// a dashboard subscribed to the bus, so that the two can be compared: the
// issue asks that the dashboard make them at most 10% slower. No client is
// connected; BenchmarkClients100 measures streaming.

// infoLogger is the core benchmarks' logger: Info, so Debug lines are off.
var infoLogger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))

var benchEvent = eventbus.Event{
	ADWID: "adw-42", Type: eventbus.StepCompleted, Source: "planner",
	Severity: eventbus.SeverityInfo, Message: "step done",
}

// An attachment says whether a benchmark's bus has a dashboard.
type attachment string

const (
	withoutDashboard attachment = "dashboard=off"
	withDashboard    attachment = "dashboard=on"
)

// benchBus returns a bus with n subscribers that count their runs in runs,
// and a dashboard when a says so; both are closed when b ends.
func benchBus(b *testing.B, a attachment, n int, runs *atomic.Int64, opts ...eventbus.Option) *eventbus.Bus {
	bus := eventbus.New(append(opts, eventbus.WithLogger(infoLogger))...)
	b.Cleanup(func() { _ = bus.Close() })
	for range n {
		if _, err := bus.Subscribe(func(eventbus.Event) error { runs.Add(1); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if a == withDashboard {
		d, err := dashboard.New(bus)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
	}
	return bus
}

// forEach runs f for every attachment and subscriber count, named
// BenchmarkSk/dashboard=on/subs=n.
func forEach(b *testing.B, subs []int, f func(b *testing.B, a attachment, n int)) {
	for _, a := range []attachment{withoutDashboard, withDashboard} {
		b.Run(string(a), func(b *testing.B) {
			for _, n := range subs {
				b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
					b.ReportAllocs()
					f(b, a, n)
				})
			}
		})
	}
}

// BenchmarkS1 is inline fan-out: one event to n sync subscribers,
// WithMaxWorkers(0), per operation.
func BenchmarkS1(b *testing.B) {
	forEach(b, []int{1, 10, 100}, func(b *testing.B, a attachment, n int) {
		var runs atomic.Int64
		bus := benchBus(b, a, n, &runs, eventbus.WithMaxWorkers(0))
		ctx := context.Background()
		ops := 0
		for b.Loop() {
			if err := bus.Publish(ctx, benchEvent); err != nil {
				b.Fatal(err)
			}
			ops++
		}
		if got := runs.Load(); got != int64(ops*n) {
			b.Fatalf("handlers ran %d times, want %d", got, ops*n)
		}
	})
}

// BenchmarkS2 is pool throughput: b.N events to n sync subscribers on a
// pool of GOMAXPROCS workers, then a timed Drain; ns/op is per event.
func BenchmarkS2(b *testing.B) {
	forEach(b, []int{1, 10}, func(b *testing.B, a attachment, n int) {
		var runs atomic.Int64
		bus := benchBus(b, a, n, &runs, eventbus.WithMaxWorkers(runtime.GOMAXPROCS(0)))
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			if err := bus.Publish(ctx, benchEvent); err != nil {
				b.Fatal(err)
			}
		}
		if err := bus.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := runs.Load(); got != int64(b.N*n) {
			b.Fatalf("handlers ran %d times, want %d", got, b.N*n)
		}
	})
}
