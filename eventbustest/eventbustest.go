// Package eventbustest helps test code that uses an [eventbus.Bus]: New
// gives a test its own bus, closed when the test ends and logging to the
// test's log, and a [Recorder] records the events a subscription receives
// so that a test can wait for them and look at them.
//
//	func TestCheckout(t *testing.T) {
//		bus := eventbustest.New(t)
//		rec := eventbustest.NewRecorder(t, bus, eventbus.Filter{Types: []eventbus.EventType{eventbus.StepFailed}})
//		runCheckout(bus)
//		if err := rec.WaitFor(t.Context(), 1); err != nil {
//			t.Fatal(err)
//		}
//	}
package eventbustest

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/adws/eventbus"
)

// TB is the part of testing.TB that this package uses; *testing.T,
// *testing.B and *testing.F satisfy it.
type TB interface {
	Cleanup(func())
	Errorf(format string, args ...any)
	Helper()
	Log(args ...any)
}

// closeTimeout bounds how long the Cleanup of New waits for the bus to shut
// down before it fails the test.
var closeTimeout = 10 * time.Second

// New returns a bus for the test t, built with opts. It logs to t's log
// (shown with go test -v or when the test fails) at Info and above: failed
// and slow handler runs, not every run; with [LogDebug] among opts, every
// run. A WithLogger among opts replaces that logger. t.Cleanup shuts the
// bus down and fails the test if it does not finish in time (10s).
func New(t TB, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	level, opts := logLevel(opts)
	logger := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: level}))
	b := eventbus.New(append([]eventbus.Option{eventbus.WithLogger(logger)}, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("eventbustest: bus did not shut down: %v", err)
		}
	})
	return b
}

// LogDebug is an option for New: log every handler run to the test's log,
// at Debug, not only the failed and slow ones. Given to eventbus.New
// directly, it sets the logger to slog.Default().
func LogDebug() eventbus.Option { return debugOption{eventbus.WithLogger(slog.Default())} }

// debugOption marks LogDebug among the options of New.
type debugOption struct{ eventbus.Option }

// logLevel returns the level New logs at, and opts without LogDebug.
func logLevel(opts []eventbus.Option) (slog.Level, []eventbus.Option) {
	level := slog.LevelInfo
	rest := make([]eventbus.Option, 0, len(opts))
	for _, o := range opts {
		if _, ok := o.(debugOption); ok {
			level = slog.LevelDebug
			continue
		}
		rest = append(rest, o)
	}
	return level, rest
}

// logWriter writes each line slog formats to the test log.
type logWriter struct{ t TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
