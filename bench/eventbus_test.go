package bench

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/adws/eventbus"
)

// This bus logs every handler run at Debug. infoLogger leaves Debug off, as
// a service would in production; debugLogger formats every line and writes
// it to io.Discard, which shows what logging costs.
var (
	infoLogger  = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	debugLogger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
)

// newEventbus returns a bus with n subscribers that count their runs in t,
// closed when b's run ends. async subscribes with SubscribeAsync.
func newEventbus(b *testing.B, t *tally, n int, async bool, opts ...eventbus.Option) *eventbus.Bus {
	bus := eventbus.New(opts...)
	b.Cleanup(func() {
		if err := bus.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	for range n {
		var err error
		if async {
			_, err = bus.SubscribeAsync(func(context.Context, eventbus.Event) error { t.hit(); return nil })
		} else {
			_, err = bus.Subscribe(func(eventbus.Event) error { t.hit(); return nil })
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return bus
}

// eventbusS1 runs the handlers inline, WithMaxWorkers(0): Publish returns
// after every handler has.
func eventbusS1(logger *slog.Logger) func(*testing.B, int) {
	return func(b *testing.B, n int) {
		t := newTally(b)
		bus := newEventbus(b, t, n, false, eventbus.WithMaxWorkers(0), eventbus.WithLogger(logger))
		ctx := context.Background()
		ops := 0
		for b.Loop() {
			if err := bus.Publish(ctx, benchEvent); err != nil {
				b.Fatal(err)
			}
			ops++
		}
		t.verify(b, ops*n)
	}
}

// eventbusS2 publishes b.N events to a pool as large as the worker-pool
// baseline's (or to async handlers) and drains, timed. It cannot use b.Loop,
// which stops the timer before the drain.
func eventbusS2(logger *slog.Logger, async bool) func(*testing.B, int) {
	return func(b *testing.B, n int) {
		t := newTally(b)
		bus := newEventbus(b, t, n, async, eventbus.WithMaxWorkers(poolSize()), eventbus.WithLogger(logger))
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
		t.verify(b, b.N*n)
	}
}

// eventbusS3 waits for each event with PublishAndWait.
func eventbusS3(logger *slog.Logger, async bool) func(*testing.B, int) {
	return func(b *testing.B, n int) {
		t := newTally(b)
		bus := newEventbus(b, t, n, async, eventbus.WithMaxWorkers(poolSize()), eventbus.WithLogger(logger))
		ctx := context.Background()
		ops := 0
		for b.Loop() {
			if err := bus.PublishAndWait(ctx, benchEvent); err != nil {
				b.Fatal(err)
			}
			ops++
		}
		t.verify(b, ops*n)
	}
}

// eventbusS4 publishes from parallel goroutines to inline handlers.
func eventbusS4(logger *slog.Logger) func(*testing.B) {
	return func(b *testing.B) {
		t := newTally(b)
		bus := newEventbus(b, t, s4Subs, false, eventbus.WithMaxWorkers(0), eventbus.WithLogger(logger))
		ctx := context.Background()
		b.ResetTimer()
		ops := parallelOps(b, func() error { return bus.Publish(ctx, benchEvent) })
		b.StopTimer()
		t.verify(b, ops*s4Subs)
	}
}
