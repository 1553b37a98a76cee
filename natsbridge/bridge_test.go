package natsbridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// newBridge starts a Bridge that the test closes when it ends.
func newBridge(tb testing.TB, bus *eventbus.Bus, nc *nats.Conn, opts ...natsbridge.Option) *natsbridge.Bridge {
	tb.Helper()
	opts = append([]natsbridge.Option{natsbridge.WithLogger(quiet)}, opts...)
	br, err := natsbridge.New(ctxFor(tb), bus, nc, opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() { br.Close() })
	return br
}

// TestBothWaysNoLoop bridges two buses both ways over core NATS and checks
// that every event reaches the other bus exactly once and nothing comes back:
// each bridge drops its own messages (Looped) and does not export what it
// imported (Skipped).
func TestBothWaysNoLoop(t *testing.T) {
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	recA, recB := newRecorder(), newRecorder()
	_, err := busA.Subscribe(recA.handle)
	require.NoError(t, err)
	_, err = busB.Subscribe(recB.handle)
	require.NoError(t, err)
	brA := newBridge(t, busA, connect(t, es, "a"), natsbridge.WithExport(), natsbridge.WithImport(""), natsbridge.WithOrigin("svc-a"))
	brB := newBridge(t, busB, connect(t, es, "b"), natsbridge.WithExport(), natsbridge.WithImport(""), natsbridge.WithOrigin("svc-b"))

	const nA, nB = 50, 30
	ctx := ctxFor(t)
	for i := range nA {
		require.NoError(t, busA.Publish(ctx, event(eventbus.StepStarted, "adw-a", i)))
	}
	for i := range nB {
		require.NoError(t, busB.Publish(ctx, event(eventbus.StepCompleted, "adw-b", i)))
	}

	want := func(br *natsbridge.Bridge, exported, imported int) natsbridge.Stats {
		return natsbridge.Stats{Exported: uint64(exported), Looped: uint64(exported), Imported: uint64(imported), Skipped: uint64(imported)}
	}
	require.Eventually(t, func() bool {
		return brA.Stats() == want(brA, nA, nB) && brB.Stats() == want(brB, nB, nA)
	}, waitFor, tick, "stats: a %+v, b %+v", brA.Stats(), brB.Stats())

	// Every event on either bus has been exported once or skipped, so no
	// message can still be on its way: stop and count.
	require.NoError(t, brA.Drain(ctx))
	require.NoError(t, brB.Drain(ctx))
	require.NoError(t, busA.Drain(ctx))
	require.NoError(t, busB.Drain(ctx))
	assert.Equal(t, nA+nB, recA.count())
	assert.Equal(t, nA+nB, recA.unique())
	assert.Equal(t, nA+nB, recB.count())
	assert.Equal(t, nA+nB, recB.unique())
	assert.Equal(t, want(brA, nA, nB), brA.Stats())
	assert.Equal(t, want(brB, nB, nA), brB.Stats())
}

// TestImportedContext checks that async handlers can tell imported events
// from local ones.
func TestImportedContext(t *testing.T) {
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	newBridge(t, busA, connect(t, es, "a"), natsbridge.WithExport())
	newBridge(t, busB, connect(t, es, "b"), natsbridge.WithImport(""))
	seen := make(chan bool, 2)
	_, err := busB.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
		seen <- natsbridge.Imported(ctx)
		return nil
	})
	require.NoError(t, err)

	ctx := ctxFor(t)
	require.NoError(t, busA.Publish(ctx, event(eventbus.ToolCalled, "adw-1", 0)))
	assert.True(t, receive(t, seen), "imported event")
	require.NoError(t, busB.Publish(ctx, event(eventbus.ToolCalled, "adw-1", 1)))
	assert.False(t, receive(t, seen), "local event")
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctxFor(t).Done():
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// TestFilters checks both sides of filtering: the export filter decides
// what leaves bus A, and the import pattern lets the server decide what
// reaches bus B.
func TestFilters(t *testing.T) {
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	recB := newRecorder()
	_, err := busB.Subscribe(recB.handle)
	require.NoError(t, err)

	brA := newBridge(t, busA, connect(t, es, "a"), natsbridge.WithExport(eventbus.Filter{
		Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical},
	}))
	// Only failures of workflow adw-7, chosen by subject on the server.
	pattern := natsbridge.DefaultSubjectPrefix + ".*." + natsbridge.EscapeToken("adw-7")
	brB := newBridge(t, busB, connect(t, es, "b"), natsbridge.WithImport(pattern))

	ctx := ctxFor(t)
	send := func(typ eventbus.EventType, adw string, sev eventbus.Severity) eventbus.Event {
		e := event(typ, adw, 0)
		e.Severity = sev
		require.NoError(t, busA.Publish(ctx, e))
		return e
	}
	wanted := send(eventbus.StepFailed, "adw-7", eventbus.SeverityError)
	send(eventbus.StepFailed, "adw-8", eventbus.SeverityError)    // exported, not imported
	send(eventbus.StepCompleted, "adw-7", eventbus.SeverityInfo)  // not exported
	send(eventbus.StepCompleted, "adw-7", eventbus.SeverityDebug) // not exported
	last := send(eventbus.WorkflowFailed, "adw-7", eventbus.SeverityCritical)

	require.Eventually(t, func() bool { return recB.count() == 2 }, waitFor, tick)
	require.NoError(t, busA.Drain(ctx))
	require.NoError(t, brA.Drain(ctx))
	require.NoError(t, brB.Drain(ctx))
	require.NoError(t, busB.Drain(ctx))
	got := recB.snapshot()
	require.Len(t, got, 2)
	assert.Equal(t, 1, recB.seen(wanted.ID))
	assert.Equal(t, 1, recB.seen(last.ID))
	assert.Equal(t, uint64(3), brA.Stats().Exported)
	assert.Equal(t, uint64(2), brB.Stats().Imported)
}

// TestEventSurvivesTheTrip checks that an imported event equals the
// published one, field by field.
func TestEventSurvivesTheTrip(t *testing.T) {
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	newBridge(t, busA, connect(t, es, "a"), natsbridge.WithExport())
	newBridge(t, busB, connect(t, es, "b"), natsbridge.WithImport(""))
	got := make(chan eventbus.Event, 1)
	_, err := busB.Subscribe(func(e eventbus.Event) error { got <- e; return nil })
	require.NoError(t, err)

	sent := event("custom.type with spaces", "", 0)
	sent.Severity = eventbus.SeverityWarning
	sent.Message = "quote \" newline \n unicode é ✓"
	sent.Data = map[string]any{"rows": 12.0, "tables": []any{"a", "b"}, "nested": map[string]any{"ok": true, "none": nil}}
	require.NoError(t, busA.Publish(ctxFor(t), sent))
	e := receive(t, got)
	assert.Equal(t, sent.ID, e.ID)
	assert.Equal(t, sent.ADWID, e.ADWID)
	assert.Equal(t, sent.Type, e.Type)
	assert.Equal(t, sent.Source, e.Source)
	assert.Equal(t, sent.Severity, e.Severity)
	assert.Equal(t, sent.Message, e.Message)
	assert.False(t, e.Timestamp.IsZero())
	assert.Equal(t, sent.Data, e.Data)
}

// TestQueueGroupSplitsWork runs two importers in one queue group: every
// event reaches exactly one of them, and both get some.
func TestQueueGroupSplitsWork(t *testing.T) {
	es := startServer(t)
	busA := newBus(t)
	busB1, busB2 := newBus(t), newBus(t)
	rec1, rec2 := newRecorder(), newRecorder()
	_, err := busB1.Subscribe(rec1.handle)
	require.NoError(t, err)
	_, err = busB2.Subscribe(rec2.handle)
	require.NoError(t, err)
	brA := newBridge(t, busA, connect(t, es, "a"), natsbridge.WithExport())
	br1 := newBridge(t, busB1, connect(t, es, "b1"), natsbridge.WithImport(""), natsbridge.WithQueueGroup("workers"))
	br2 := newBridge(t, busB2, connect(t, es, "b2"), natsbridge.WithImport(""), natsbridge.WithQueueGroup("workers"))

	const n = 400
	ctx := ctxFor(t)
	sent := make([]eventbus.Event, n)
	for i := range n {
		sent[i] = event(eventbus.AgentMessage, fmt.Sprintf("adw-%d", i%7), i)
		require.NoError(t, busA.Publish(ctx, sent[i]))
	}
	require.Eventually(t, func() bool {
		return br1.Stats().Imported+br2.Stats().Imported == n
	}, waitFor, tick)
	require.NoError(t, busA.Drain(ctx))
	require.NoError(t, brA.Drain(ctx))
	require.NoError(t, br1.Drain(ctx))
	require.NoError(t, br2.Drain(ctx))
	require.NoError(t, busB1.Drain(ctx))
	require.NoError(t, busB2.Drain(ctx))

	assert.Equal(t, n, rec1.count()+rec2.count(), "events handled")
	for _, e := range sent {
		require.Equal(t, 1, rec1.seen(e.ID)+rec2.seen(e.ID), "event %s", e.ID)
	}
	assert.Positive(t, rec1.count(), "importer 1 got none")
	assert.Positive(t, rec2.count(), "importer 2 got none")
	t.Logf("split: %d + %d", rec1.count(), rec2.count())
}

// TestMalformedCoreMessage checks that undecodable messages are counted and
// dropped, and that the import goes on.
func TestMalformedCoreMessage(t *testing.T) {
	es := startServer(t)
	busB := newBus(t)
	rec := newRecorder()
	_, err := busB.Subscribe(rec.handle)
	require.NoError(t, err)
	br := newBridge(t, busB, connect(t, es, "b"), natsbridge.WithImport(""))

	pub := connect(t, es, "raw")
	subject := natsbridge.DefaultSubjectPrefix + ".step_failed._"
	require.NoError(t, pub.Publish(subject, []byte(`{"not":"an event"`)))
	require.NoError(t, pub.Publish(subject, []byte(`{"event_type":"step_failed"}`))) // no id
	good := event(eventbus.StepFailed, "", 0)
	good.Timestamp = good.Timestamp.AddDate(2025, 0, 0)
	data, err := natsbridge.Encode(good)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(subject, data))

	require.Eventually(t, func() bool { return br.Stats().Imported == 1 }, waitFor, tick)
	assert.Equal(t, uint64(2), br.Stats().Terminated)
	require.NoError(t, busB.Drain(ctxFor(t)))
	assert.Equal(t, 1, rec.seen(good.ID))
}

// TestDrainDeliversEverything checks Drain's promise: once the exporting
// Bridge's Drain and then the importing Bridge's Drain have returned, every
// event published before is in the other bus, with no waiting.
func TestDrainDeliversEverything(t *testing.T) {
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	rec := newRecorder()
	_, err := busB.Subscribe(rec.handle)
	require.NoError(t, err)
	brA := newBridge(t, busA, connect(t, es, "a"), natsbridge.WithExport())
	brB := newBridge(t, busB, connect(t, es, "b"), natsbridge.WithImport(""))

	const n = 500
	ctx := ctxFor(t)
	for i := range n {
		require.NoError(t, busA.Publish(ctx, event(eventbus.ToolReturned, "adw-1", i)))
	}
	require.NoError(t, brA.Drain(ctx))
	require.NoError(t, brB.Drain(ctx))
	require.NoError(t, busB.Drain(ctx))
	assert.Equal(t, n, rec.unique())
	assert.Equal(t, uint64(n), brA.Stats().Exported)
	assert.Equal(t, uint64(n), brB.Stats().Imported)

	// Stopped bridges stay stopped, and stopping again is harmless.
	require.NoError(t, busA.Publish(ctx, event(eventbus.ToolReturned, "adw-1", n)))
	require.NoError(t, busA.Drain(ctx))
	assert.Equal(t, uint64(n), brA.Stats().Exported)
	assert.NoError(t, brA.Close())
	assert.NoError(t, brA.Drain(ctx))
	assert.NoError(t, brB.Close())
}

// TestStopLeavesNoGoroutine checks that Close and Drain stop everything the
// bridge started, while events flow, in core NATS and JetStream mode.
func TestStopLeavesNoGoroutine(t *testing.T) {
	for _, tt := range []struct {
		name  string
		drain bool
		js    bool
	}{
		{"close", false, false},
		{"drain", true, false},
		{"jetstream close", false, true},
		{"jetstream drain", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxFor(t)
			before := goleak.IgnoreCurrent()
			es := startServer(t)
			ncA, ncB := connect(t, es, "a"), connect(t, es, "b")
			connected := goleak.IgnoreCurrent() // the server's and the connections' goroutines

			busA := eventbus.New(eventbus.WithLogger(quiet))
			busB := eventbus.New(eventbus.WithLogger(quiet))
			var handled atomic.Int64
			_, err := busB.Subscribe(func(eventbus.Event) error { handled.Add(1); return nil })
			require.NoError(t, err)
			opts := []natsbridge.Option{natsbridge.WithLogger(quiet)}
			if tt.js {
				opts = append(opts, natsbridge.WithJetStream("EVENTS"))
			}
			brA, err := natsbridge.New(ctx, busA, ncA, append(opts, natsbridge.WithExport())...)
			require.NoError(t, err)
			brB, err := natsbridge.New(ctx, busB, ncB, append(opts, natsbridge.WithImport(""), natsbridge.WithConcurrency(3))...)
			require.NoError(t, err)
			for i := range 200 {
				require.NoError(t, busA.Publish(ctx, event(eventbus.StepStarted, "adw-1", i)))
			}
			require.Eventually(t, func() bool { return handled.Load() > 0 }, waitFor, tick)
			if tt.drain {
				require.NoError(t, brA.Drain(ctx))
				require.NoError(t, brB.Drain(ctx))
			} else {
				require.NoError(t, brA.Close())
				require.NoError(t, brB.Close())
			}
			require.NoError(t, brA.Close(), "second stop")
			require.NoError(t, busA.Close())
			require.NoError(t, busB.Close())
			if !tt.js {
				// With the server and the connections still up, only their
				// goroutines are left.
				goleak.VerifyNone(t, connected)
			}
			// JetStream also starts goroutines in the server, for the stream
			// and the consumers: stop everything and check nothing is left.
			ncA.Close()
			ncB.Close()
			es.stop()
			goleak.VerifyNone(t, before)
		})
	}
}

// TestDrainTimesOut checks that Drain returns ctx.Err() when its ctx ends
// first, and that Close then stops the Bridge.
func TestDrainTimesOut(t *testing.T) {
	es := startServer(t)
	busB := newBus(t)
	block := make(chan struct{})
	_, err := busB.Subscribe(func(eventbus.Event) error { <-block; return nil })
	require.NoError(t, err)
	br := newBridge(t, busB, connect(t, es, "b"), natsbridge.WithImport(""), natsbridge.WithExport())

	// Drain waits for the bus's handlers, and this one blocks.
	require.NoError(t, busB.Publish(ctxFor(t), event(eventbus.StepStarted, "", 0)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, br.Drain(ctx), context.DeadlineExceeded)
	require.NoError(t, br.Close())
	close(block)
}

func TestNewErrors(t *testing.T) {
	es := startServer(t)
	nc := connect(t, es, "a")
	bus := newBus(t)
	ctx := ctxFor(t)
	var nilCtx context.Context
	tests := []struct {
		name string
		ctx  context.Context
		bus  *eventbus.Bus
		nc   *nats.Conn
		opts []natsbridge.Option
		want error
	}{
		{"nil ctx", nilCtx, bus, nc, []natsbridge.Option{natsbridge.WithExport()}, natsbridge.ErrNilContext},
		{"nil bus", ctx, nil, nc, []natsbridge.Option{natsbridge.WithExport()}, natsbridge.ErrNilBus},
		{"nil conn", ctx, bus, nil, []natsbridge.Option{natsbridge.WithExport()}, natsbridge.ErrNilConn},
		{"no direction", ctx, bus, nc, nil, natsbridge.ErrNothingToBridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br, err := natsbridge.New(tt.ctx, tt.bus, tt.nc, tt.opts...)
			assert.Nil(t, br)
			assert.ErrorIs(t, err, tt.want)
		})
	}

	closed := eventbus.New()
	require.NoError(t, closed.Close())
	_, err := natsbridge.New(ctx, closed, nc, natsbridge.WithExport())
	assert.ErrorIs(t, err, eventbus.ErrClosed)
}

func TestOptionPanics(t *testing.T) {
	tests := []struct {
		name string
		opt  func()
	}{
		{"prefix with wildcard", func() { natsbridge.WithSubjectPrefix("adws.*") }},
		{"empty prefix", func() { natsbridge.WithSubjectPrefix("") }},
		{"prefix with space", func() { natsbridge.WithSubjectPrefix("adws events") }},
		{"bad pattern", func() { natsbridge.WithImport("adws.>.x") }},
		{"queue with dot", func() { natsbridge.WithQueueGroup("a.b") }},
		{"empty stream", func() { natsbridge.WithJetStream("") }},
		{"origin with space", func() { natsbridge.WithOrigin("a b") }},
		{"nil logger", func() { natsbridge.WithLogger(nil) }},
		{"zero concurrency", func() { natsbridge.WithConcurrency(0) }},
		{"bad backoff", func() { natsbridge.WithNakBackoff(2, 1) }},
		{"zero ack wait", func() { natsbridge.WithAckWait(0) }},
		{"zero max deliver", func() { natsbridge.WithMaxDeliver(0) }},
		{"negative retry", func() { natsbridge.WithPublishRetry(-1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				require.NotNil(t, v, "no panic")
				assert.Contains(t, fmt.Sprint(v), "natsbridge: ")
			}()
			tt.opt()
		})
	}
}

// TestExportErrorsReachThePublisher checks that a failed export is the
// exporter's error: PublishAndWait returns it and ExportErrors counts it.
func TestExportErrorsReachThePublisher(t *testing.T) {
	es := startServer(t)
	bus := newBus(t)
	nc := connect(t, es, "a")
	br := newBridge(t, bus, nc, natsbridge.WithExport())
	ctx := ctxFor(t)

	bad := event(eventbus.ToolReturned, "adw-1", 0)
	bad.Data = map[string]any{"result": make(chan int)} // JSON cannot hold it
	err := bus.PublishAndWait(ctx, bad)
	var he *eventbus.HandlerError
	require.ErrorAs(t, err, &he)
	assert.Contains(t, he.Error(), "natsbridge: encode event")

	nc.Close()
	err = bus.PublishAndWait(ctx, event(eventbus.ToolReturned, "adw-1", 1))
	assert.ErrorIs(t, err, nats.ErrConnectionClosed)
	assert.Equal(t, natsbridge.Stats{ExportErrors: 2}, br.Stats())
}
