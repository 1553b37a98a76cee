package natsbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
// imported (NotReexported).
func TestBothWaysNoLoop(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		recA, recB := newRecorder(), newRecorder()
		_, err := busA.Subscribe(recA.handle)
		require.NoError(t, err)
		_, err = busB.Subscribe(recB.handle)
		require.NoError(t, err)
		brA := newBridge(t, busA, es.Connect("a"), natsbridge.WithExport(), natsbridge.WithImport(""), natsbridge.WithOrigin("svc-a"))
		brB := newBridge(t, busB, es.Connect("b"), natsbridge.WithExport(), natsbridge.WithImport(""), natsbridge.WithOrigin("svc-b"))

		const nA, nB = 50, 30
		ctx := ctxFor(t)
		for i := range nA {
			require.NoError(t, busA.Publish(ctx, event(eventbus.StepStarted, "adw-a", i)))
		}
		for i := range nB {
			require.NoError(t, busB.Publish(ctx, event(eventbus.StepCompleted, "adw-b", i)))
		}

		want := func(br *natsbridge.Bridge, exported, imported int) natsbridge.Stats {
			return natsbridge.Stats{Exported: uint64(exported), Looped: uint64(exported), Imported: uint64(imported), NotReexported: uint64(imported)}
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
	})
}

// TestImportedContext checks that async handlers can tell imported events
// from local ones.
func TestImportedContext(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		newBridge(t, busA, es.Connect("a"), natsbridge.WithExport())
		newBridge(t, busB, es.Connect("b"), natsbridge.WithImport(""))
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
	})
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
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		recB := newRecorder()
		_, err := busB.Subscribe(recB.handle)
		require.NoError(t, err)

		brA := newBridge(t, busA, es.Connect("a"), natsbridge.WithExport(eventbus.Filter{
			Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical},
		}))
		// Only failures of workflow adw-7, chosen by subject on the server.
		pattern := natsbridge.DefaultSubjectPrefix + ".*." + natsbridge.EscapeToken("adw-7")
		brB := newBridge(t, busB, es.Connect("b"), natsbridge.WithImport(pattern))

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
	})
}

// TestEventSurvivesTheTrip checks that an imported event equals the
// published one, field by field.
func TestEventSurvivesTheTrip(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		newBridge(t, busA, es.Connect("a"), natsbridge.WithExport())
		newBridge(t, busB, es.Connect("b"), natsbridge.WithImport(""))
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
	})
}

// TestQueueGroupSplitsWork runs two importers in one queue group: every
// event reaches exactly one of them, and both get some.
func TestQueueGroupSplitsWork(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA := newBus(t)
		busB1, busB2 := newBus(t), newBus(t)
		rec1, rec2 := newRecorder(), newRecorder()
		_, err := busB1.Subscribe(rec1.handle)
		require.NoError(t, err)
		_, err = busB2.Subscribe(rec2.handle)
		require.NoError(t, err)
		brA := newBridge(t, busA, es.Connect("a"), natsbridge.WithExport())
		br1 := newBridge(t, busB1, es.Connect("b1"), natsbridge.WithImport(""), natsbridge.WithQueueGroup("workers"))
		br2 := newBridge(t, busB2, es.Connect("b2"), natsbridge.WithImport(""), natsbridge.WithQueueGroup("workers"))

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
	})
}

// TestMalformedCoreMessage checks that undecodable messages are counted and
// dropped, and that the import goes on.
func TestMalformedCoreMessage(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busB := newBus(t)
		rec := newRecorder()
		_, err := busB.Subscribe(rec.handle)
		require.NoError(t, err)
		br := newBridge(t, busB, es.Connect("b"), natsbridge.WithImport(""))

		pub := es.Connect("raw")
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
	})
}

// TestDrainDeliversEverything checks Drain's promise: once the exporting
// Bridge's Drain and then the importing Bridge's Drain have returned, every
// event published before is in the other bus, with no waiting.
func TestDrainDeliversEverything(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		rec := newRecorder()
		_, err := busB.Subscribe(rec.handle)
		require.NoError(t, err)
		brA := newBridge(t, busA, es.Connect("a"), natsbridge.WithExport())
		brB := newBridge(t, busB, es.Connect("b"), natsbridge.WithImport(""))

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
	})
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
			for _, kind := range natstest.Kinds {
				t.Run(kind.String(), func(t *testing.T) {
					ctx := ctxFor(t)
					before := goleak.IgnoreCurrent()
					es := natstest.Start(t, kind)
					ncA, ncB := es.Connect("a"), es.Connect("b")
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
					es.Stop()
					goleak.VerifyNone(t, before)
				})
			}
		})
	}
}

// TestDrainTimesOut checks that Drain returns ctx.Err() when its ctx ends
// first, and that Close then stops the Bridge.
func TestDrainTimesOut(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busB := newBus(t)
		block := make(chan struct{})
		_, err := busB.Subscribe(func(eventbus.Event) error { <-block; return nil })
		require.NoError(t, err)
		br := newBridge(t, busB, es.Connect("b"), natsbridge.WithImport(""), natsbridge.WithExport())

		// Drain waits for the bus's handlers, and this one blocks.
		require.NoError(t, busB.Publish(ctxFor(t), event(eventbus.StepStarted, "", 0)))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, br.Drain(ctx), context.DeadlineExceeded)
		require.NoError(t, br.Close())
		close(block)
	})
}

func TestNewErrors(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		nc := es.Connect("a")
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
	})
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
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := newBus(t)
		nc := es.Connect("a")
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
	})
}

// publishRaw publishes e, encoded, to its subject from a connection of its
// own, as another service would.
func publishRaw(t *testing.T, nc *nats.Conn, e eventbus.Event) {
	t.Helper()
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	data, err := natsbridge.Encode(e)
	require.NoError(t, err)
	require.NoError(t, nc.Publish(natsbridge.Subject(natsbridge.DefaultSubjectPrefix, e), data))
	require.NoError(t, nc.Flush())
}

// TestDerivedEventIsExported checks, in both modes, that a new event that a
// handler publishes in reaction to an imported one, with the handler's ctx,
// is exported: it has an id of its own, and only the imported event itself
// must not go back out.
func TestDerivedEventIsExported(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "jetstream"}[js], func(t *testing.T) {
			onEachServer(t, func(t *testing.T, es *natstest.Server) {
				bus := newBus(t)
				opts := []natsbridge.Option{natsbridge.WithExport(), natsbridge.WithImport("adws.events.step_failed.*")}
				if js {
					opts = append(opts, natsbridge.WithJetStream(stream))
				}
				br := newBridge(t, bus, es.Connect("b"), opts...)
				_, err := bus.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
					if e.Type != eventbus.StepFailed {
						return nil
					}
					return bus.Publish(ctx, eventbus.Event{ADWID: e.ADWID, Type: eventbus.WorkflowFailed, Severity: eventbus.SeverityError})
				})
				require.NoError(t, err)
				watcher := es.Connect("watch")
				sub, err := watcher.SubscribeSync("adws.events.workflow_failed.>")
				require.NoError(t, err)
				require.NoError(t, watcher.Flush())

				imported := event(eventbus.StepFailed, "adw-1", 0)
				imported.Timestamp = time.Now()
				if js {
					data, err := natsbridge.Encode(imported)
					require.NoError(t, err)
					jsc, err := jetstream.New(es.Connect("remote"))
					require.NoError(t, err)
					_, err = jsc.Publish(ctxFor(t), natsbridge.Subject(natsbridge.DefaultSubjectPrefix, imported), data)
					require.NoError(t, err)
				} else {
					publishRaw(t, es.Connect("remote"), imported)
				}
				m, err := sub.NextMsgWithContext(ctxFor(t))
				require.NoError(t, err, "the derived event was not exported; stats %+v", br.Stats())
				derived, err := natsbridge.Decode(m.Data)
				require.NoError(t, err)
				assert.NotEqual(t, imported.ID, derived.ID)
				assert.Equal(t, "adw-1", derived.ADWID)
				// The imported event itself went into the bus and not back out.
				require.Eventually(t, func() bool { return br.Stats().NotReexported == 1 }, waitFor, tick, "%+v", br.Stats())
			})
		})
	}
}

// TestSplitBridgesDoNotEcho gives each of two buses one Bridge that exports
// and another that imports, all with default origins, and publishes on both
// buses: each event reaches the other bus once, and never comes back into
// its own bus, because the default origin belongs to the bus.
func TestSplitBridgesDoNotEcho(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "jetstream"}[js], func(t *testing.T) {
			onEachServer(t, func(t *testing.T, es *natstest.Server) {
				var opts []natsbridge.Option
				if js {
					opts = append(opts, natsbridge.WithJetStream(stream))
				}
				type side struct {
					bus      *eventbus.Bus
					rec      *recorder
					out, in  *natsbridge.Bridge
					sentByMe eventbus.Event
				}
				sides := make([]*side, 2)
				for i, name := range []string{"a", "b"} {
					s := &side{bus: newBus(t), rec: newRecorder()}
					_, err := s.bus.Subscribe(s.rec.handle)
					require.NoError(t, err)
					s.out = newBridge(t, s.bus, es.Connect(name+"-out"), append(opts, natsbridge.WithExport())...)
					s.in = newBridge(t, s.bus, es.Connect(name+"-in"), append(opts, natsbridge.WithImport(""))...)
					assert.Equal(t, s.out.Origin(), s.in.Origin(), "bridges on one bus share its origin")
					sides[i] = s
				}
				assert.NotEqual(t, sides[0].out.Origin(), sides[1].out.Origin())
				ctx := ctxFor(t)
				for i, s := range sides {
					s.sentByMe = event(eventbus.StepStarted, "adw-1", i)
					require.NoError(t, s.bus.PublishAndWait(ctx, s.sentByMe))
				}
				// Each importer has seen its own bus's event and dropped it, and
				// each exporter has turned away the event imported from the
				// other side: nothing is left in flight.
				for _, s := range sides {
					require.Eventually(t, func() bool {
						in, out := s.in.Stats(), s.out.Stats()
						return in.Looped == 1 && in.Imported == 1 && out.NotReexported == 1
					}, waitFor, tick, "importer %+v, exporter %+v", s.in.Stats(), s.out.Stats())
				}
				require.NoError(t, sides[0].bus.Drain(ctx))
				require.NoError(t, sides[1].bus.Drain(ctx))
				for i, s := range sides {
					assert.Equal(t, 1, s.rec.seen(s.sentByMe.ID), "own event on bus %d", i)
					assert.Equal(t, 1, s.rec.seen(sides[1-i].sentByMe.ID), "other event on bus %d", i)
					assert.Equal(t, 2, s.rec.count(), "events on bus %d", i)
				}
			})
		})
	}
}

// TestCloseFromHandler calls Bridge.Close from a sync handler of an
// imported event on a bus that runs handlers inline: that handler runs on
// the Bridge's own import goroutine, and Close must not wait for it.
func TestCloseFromHandler(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "jetstream"}[js], func(t *testing.T) {
			onEachServer(t, func(t *testing.T, es *natstest.Server) {
				bus := eventbus.New(eventbus.WithLogger(quiet), eventbus.WithMaxWorkers(0))
				t.Cleanup(func() { bus.Close() })
				var br *natsbridge.Bridge
				closed := make(chan error, 1)
				_, err := bus.Subscribe(func(e eventbus.Event) error {
					if e.Type == "shutdown" {
						closed <- br.Close()
					}
					return nil
				})
				require.NoError(t, err)
				opts := []natsbridge.Option{natsbridge.WithImport("")}
				if js {
					opts = append(opts, natsbridge.WithJetStream(stream))
				}
				br = newBridge(t, bus, es.Connect("b"), opts...)
				pub := es.Connect("p")
				if js {
					jsc, err := jetstream.New(pub)
					require.NoError(t, err)
					e := event("shutdown", "", 0)
					e.Timestamp = time.Now()
					data, err := natsbridge.Encode(e)
					require.NoError(t, err)
					_, err = jsc.Publish(ctxFor(t), natsbridge.Subject(natsbridge.DefaultSubjectPrefix, e), data)
					require.NoError(t, err)
				} else {
					publishRaw(t, pub, event("shutdown", "", 0))
				}
				assert.NoError(t, receive(t, closed), "Close from a handler")
				assert.NoError(t, br.Close(), "second Close")
			})
		})
	}
}

// TestGoexitInHandler has a sync handler call runtime.Goexit, as t.FailNow
// does, on the import goroutine (a bus that runs handlers inline). If the
// goroutine ends, the Bridge starts another and counts the lost message in
// ImportErrors; either way it imports the next message, and does not keep
// the lost event's id in the set that keeps imported events from being
// exported.
func TestGoexitInHandler(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := eventbus.New(eventbus.WithLogger(quiet), eventbus.WithMaxWorkers(0))
		t.Cleanup(func() { bus.Close() })
		rec := newRecorder()
		_, err := bus.Subscribe(func(e eventbus.Event) error {
			if e.Type == "boom" {
				runtime.Goexit()
			}
			return rec.handle(e)
		})
		require.NoError(t, err)
		br := newBridge(t, bus, es.Connect("b"), natsbridge.WithImport("adws.events.*._"), natsbridge.WithExport())
		watcher := es.Connect("watch")
		exported, err := watcher.SubscribeSync("adws.events.*.local")
		require.NoError(t, err)
		require.NoError(t, watcher.Flush())

		pub := es.Connect("p")
		boom := event("boom", "", 0)
		publishRaw(t, pub, boom)
		publishRaw(t, pub, event("after", "", 1))
		require.Eventually(t, func() bool { return rec.count() == 1 }, waitFor, tick, "stats %+v", br.Stats())
		// Whether Publish returned (the bus may contain the Goexit) or the
		// goroutine ended, each message is counted once.
		require.Eventually(t, func() bool { st := br.Stats(); return st.Imported+st.ImportErrors == 2 }, waitFor, tick)

		// A local event that happens to carry the lost event's id is exported.
		local := event("local", "local", 2)
		local.ID = boom.ID
		require.NoError(t, bus.PublishAndWait(ctxFor(t), local))
		_, err = exported.NextMsgWithContext(ctxFor(t))
		require.NoError(t, err, "stats %+v", br.Stats())
	})
}

// TestBusClosedFirst closes the bus before the Bridge. The import stops at
// the first message the bus refuses, and says so once, in the log and in
// Stats; it does not go on pulling and failing.
func TestBusClosedFirst(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := eventbus.New(eventbus.WithLogger(quiet))
		var logged atomic.Int64
		log := slog.New(countingHandler{&logged})
		ncB := es.Connect("b")
		br, err := natsbridge.New(ctxFor(t), bus, ncB, natsbridge.WithImport(""), natsbridge.WithLogger(log))
		require.NoError(t, err)
		t.Cleanup(func() { br.Close() })
		require.NoError(t, bus.Close())

		pub := es.Connect("p")
		publishRaw(t, pub, event(eventbus.StepStarted, "", 0))
		require.Eventually(t, func() bool { return br.Stats().ImportStopped }, waitFor, tick)
		// The subscription is gone once the server has seen ncB's UNSUB.
		require.NoError(t, ncB.Flush())
		for i := range 3 {
			publishRaw(t, pub, event(eventbus.StepStarted, "", i+1))
		}
		require.NoError(t, ncB.Flush())
		assert.Equal(t, natsbridge.Stats{ImportErrors: 1, ImportStopped: true}, br.Stats())
		assert.Equal(t, int64(1), logged.Load(), "log lines at Warn or above")
		require.NoError(t, br.Close())
	})
}

// countingHandler counts the log records at Warn and above.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h countingHandler) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h countingHandler) WithGroup(string) slog.Handler                { return h }

// TestStopRacesWithImports stops bridges that export and import, while
// events flow both ways, in every order against each other and against the
// bus closing first: Close with the bus closing, Drain with the bus
// closing, Drain with Close, and two Drains. Nothing may deadlock (each
// stop is bounded by the test's ctx), and no goroutine may be left
// (TestMain runs goleak).
func TestStopRacesWithImports(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		for i := range 16 {
			js := i%2 == 1
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				busA := eventbus.New(eventbus.WithLogger(quiet))
				busB := eventbus.New(eventbus.WithLogger(quiet), eventbus.WithMaxWorkers(i%3))
				_, err := busB.Subscribe(func(eventbus.Event) error { return nil })
				require.NoError(t, err)
				_, err = busB.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
				require.NoError(t, err)
				opts := []natsbridge.Option{natsbridge.WithLogger(quiet), natsbridge.WithExport(), natsbridge.WithImport("")}
				if js {
					opts = append(opts, natsbridge.WithJetStream(stream), natsbridge.WithPublishRetry(0))
				}
				ctx := ctxFor(t)
				brA, err := natsbridge.New(ctx, busA, es.Connect("a"), opts...)
				require.NoError(t, err)
				brB, err := natsbridge.New(ctx, busB, es.Connect("b"), append(opts, natsbridge.WithConcurrency(1+i%3))...)
				require.NoError(t, err)
				received := make(chan struct{})
				var once sync.Once
				_, err = busB.Subscribe(func(eventbus.Event) error { once.Do(func() { close(received) }); return nil })
				require.NoError(t, err)

				var wg sync.WaitGroup
				wg.Go(func() {
					for j := range 300 {
						_ = busA.Publish(ctx, event(eventbus.StepStarted, "adw", j))
						_ = busB.Publish(ctx, event(eventbus.StepStarted, "adw", j))
					}
				})
				receive(t, received) // events are crossing
				switch i / 2 % 4 {
				case 0:
					wg.Go(func() { _ = busB.Close() })
					wg.Go(func() { _ = brB.Close() })
				case 1:
					wg.Go(func() { _ = busB.Close() })
					wg.Go(func() { _ = brB.Drain(ctx) })
				case 2:
					wg.Go(func() { _ = brB.Drain(ctx) })
					wg.Go(func() { _ = brB.Close() })
				case 3:
					wg.Go(func() { _ = brB.Drain(ctx) })
					wg.Go(func() { _ = brB.Drain(ctx) })
				}
				wg.Wait()
				require.NoError(t, brB.Close())
				require.NoError(t, brA.Close())
				require.NoError(t, busA.Close())
				require.NoError(t, busB.Close())
				require.NoError(t, ctx.Err(), "a stop took the whole test timeout")
			})
		}
	})
}
