package eventbus_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
)

// benchEvent is what every benchmark publishes: a realistic event without an
// ID or timestamp, so that each Publish assigns both.
var benchEvent = eventbus.Event{
	ADWID:    "adw-42",
	Type:     eventbus.StepCompleted,
	Source:   "planner",
	Severity: eventbus.SeverityInfo,
	Message:  "step done",
}

var subCounts = []int{1, 10, 100}

// subscribeCounters subscribes n sync handlers that count their runs.
func subscribeCounters(b *testing.B, bus *eventbus.Bus, n int) *atomic.Int64 {
	var runs atomic.Int64
	for range n {
		if _, err := bus.Subscribe(func(eventbus.Event) error { runs.Add(1); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	return &runs
}

// publishLoop publishes e once per benchmark iteration and returns the
// number of iterations.
func publishLoop(b *testing.B, publish func(context.Context, eventbus.Event) error, e eventbus.Event) int {
	ctx := context.Background()
	b.ReportAllocs()
	ops := 0
	for b.Loop() {
		if err := publish(ctx, e); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	return ops
}

// checkRuns fails the benchmark unless every handler ran once per operation.
func checkRuns(b *testing.B, runs *atomic.Int64, want int) {
	if got := runs.Load(); got != int64(want) {
		b.Fatalf("handlers ran %d times, want %d", got, want)
	}
}

func BenchmarkPublishInline(b *testing.B) {
	for _, n := range subCounts {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			bus := newBus(b, eventbus.WithMaxWorkers(0))
			runs := subscribeCounters(b, bus, n)
			ops := publishLoop(b, bus.Publish, benchEvent)
			checkRuns(b, runs, ops*n)
		})
	}
}

func BenchmarkPublishPool(b *testing.B) {
	for _, n := range subCounts {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			bus := newBus(b)
			runs := subscribeCounters(b, bus, n)
			ops := publishLoop(b, bus.Publish, benchEvent)
			if err := bus.Drain(context.Background()); err != nil {
				b.Fatal(err)
			}
			checkRuns(b, runs, ops*n)
		})
	}
}

func BenchmarkPublishAsync(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			bus := newBus(b)
			var runs atomic.Int64
			for range n {
				if _, err := bus.SubscribeAsync(func(context.Context, eventbus.Event) error { runs.Add(1); return nil }); err != nil {
					b.Fatal(err)
				}
			}
			ops := publishLoop(b, bus.Publish, benchEvent)
			if err := bus.Drain(context.Background()); err != nil {
				b.Fatal(err)
			}
			checkRuns(b, &runs, ops*n)
		})
	}
}

func BenchmarkPublishAndWait(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			bus := newBus(b)
			runs := subscribeCounters(b, bus, n)
			ctx := context.Background()
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				if err := bus.PublishAndWait(ctx, benchEvent); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			checkRuns(b, runs, ops*n)
		})
	}
}

func BenchmarkPublishParallel(b *testing.B) {
	bus := newBus(b, eventbus.WithMaxWorkers(0))
	runs := subscribeCounters(b, bus, 10)
	ctx := context.Background()
	b.ReportAllocs()
	var ops atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bus.Publish(ctx, benchEvent); err != nil {
				b.Error(err)
				return
			}
			ops.Add(1)
		}
	})
	checkRuns(b, runs, int(ops.Load())*10)
}

func BenchmarkFilterMatches(b *testing.B) {
	for _, tt := range []struct {
		name string
		f    eventbus.Filter
	}{
		{"shape=empty", eventbus.Filter{}},
		{"shape=types3", eventbus.Filter{Types: []eventbus.EventType{eventbus.StepStarted, eventbus.StepFailed, eventbus.StepCompleted}}},
		{"shape=all4", eventbus.Filter{
			Types:      []eventbus.EventType{eventbus.StepCompleted},
			Severities: []eventbus.Severity{eventbus.SeverityInfo, eventbus.SeverityError},
			ADWIDs:     []string{"adw-1", "adw-42"},
			Sources:    []string{"planner"},
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			matched := 0
			for b.Loop() {
				if tt.f.Matches(benchEvent) {
					matched++
				}
			}
			if matched == 0 {
				b.Fatal("filter never matched")
			}
		})
	}
}

func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
			bus := newBus(b)
			noop := func(eventbus.Event) error { return nil }
			for range n {
				if _, err := bus.Subscribe(noop); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				id, err := bus.Subscribe(noop)
				if err != nil {
					b.Fatal(err)
				}
				if !bus.Unsubscribe(id) {
					b.Fatal("Unsubscribe: unknown id")
				}
			}
			if got := bus.Metrics().Subscribers; got != n {
				b.Fatalf("Subscribers = %d, want %d", got, n)
			}
		})
	}
}

// BenchmarkOrdered compares ordered with unordered delivery on the pool:
// one subscription, events spread over 50 workflows.
func BenchmarkOrdered(b *testing.B) {
	events := make([]eventbus.Event, 50)
	for i := range events {
		events[i] = benchEvent
		events[i].ADWID = "adw-" + strconv.Itoa(i)
	}
	for _, ordered := range []bool{false, true} {
		b.Run("ordered="+strconv.FormatBool(ordered)+"/workflows=50", func(b *testing.B) {
			bus := newBus(b)
			var runs atomic.Int64
			var opts []eventbus.SubscribeOption
			if ordered {
				opts = append(opts, eventbus.Ordered())
			}
			if _, err := bus.Subscribe(func(eventbus.Event) error { runs.Add(1); return nil }, opts...); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				if err := bus.Publish(ctx, events[ops%len(events)]); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			if err := bus.Drain(ctx); err != nil {
				b.Fatal(err)
			}
			checkRuns(b, &runs, ops)
		})
	}
}

// BenchmarkWatchdog shows what WithSlowHandlerThreshold adds to each run:
// inline publishing to 10 subscribers, without and with the watchdog.
func BenchmarkWatchdog(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run("watchdog="+strconv.FormatBool(on)+"/subs=10", func(b *testing.B) {
			opts := []eventbus.Option{eventbus.WithMaxWorkers(0)}
			if on {
				opts = append(opts, eventbus.WithSlowHandlerThreshold(time.Second))
			}
			bus := newBus(b, opts...)
			runs := subscribeCounters(b, bus, 10)
			ops := publishLoop(b, bus.Publish, benchEvent)
			checkRuns(b, runs, ops*10)
		})
	}
}

// noopObserver is an Observer that does nothing, to price the hook itself.
type noopObserver struct{}

func (noopObserver) Published(context.Context, eventbus.PublishInfo) {}
func (noopObserver) HandlerDone(context.Context, eventbus.RunInfo)   {}

// BenchmarkObserver shows what the observer hook costs: nothing beyond a
// nil check when unset, and the copies of the event it hands over when set.
func BenchmarkObserver(b *testing.B) {
	for _, set := range []bool{false, true} {
		b.Run("observer="+strconv.FormatBool(set)+"/subs=10", func(b *testing.B) {
			opts := []eventbus.Option{eventbus.WithMaxWorkers(0)}
			if set {
				opts = append(opts, eventbus.WithObserver(noopObserver{}))
			}
			bus := newBus(b, opts...)
			runs := subscribeCounters(b, bus, 10)
			ops := publishLoop(b, bus.Publish, benchEvent)
			checkRuns(b, runs, ops*10)
		})
	}
}
