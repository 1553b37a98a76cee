package natsbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const stream = "EVENTS"

// consumerInfo returns the state of a durable consumer of the test stream.
func consumerInfo(t *testing.T, nc *nats.Conn, name string) *jetstream.ConsumerInfo {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	c, err := js.Consumer(ctxFor(t), stream, name)
	require.NoError(t, err)
	info, err := c.Info(ctxFor(t))
	require.NoError(t, err)
	return info
}

// settled reports whether a consumer has nothing delivered and unacknowledged
// and nothing left to deliver.
func settled(info *jetstream.ConsumerInfo) bool {
	return info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
}

// TestJetStreamBothWaysNoLoop is TestBothWaysNoLoop with JetStream: each
// bridge has its own consumer on the shared stream.
func TestJetStreamBothWaysNoLoop(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		recA, recB := newRecorder(), newRecorder()
		_, err := busA.Subscribe(recA.handle)
		require.NoError(t, err)
		_, err = busB.Subscribe(recB.handle)
		require.NoError(t, err)
		js := natsbridge.WithJetStream(stream)
		brA := newBridge(t, busA, es.Connect("a"), js, natsbridge.WithExport(), natsbridge.WithImport(""))
		brB := newBridge(t, busB, es.Connect("b"), js, natsbridge.WithExport(), natsbridge.WithImport(""))

		const nA, nB = 40, 25
		ctx := ctxFor(t)
		for i := range nA {
			require.NoError(t, busA.Publish(ctx, event(eventbus.StepStarted, "adw-a", i)))
		}
		for i := range nB {
			require.NoError(t, busB.Publish(ctx, event(eventbus.StepCompleted, "adw-b", i)))
		}
		want := func(exported, imported int) natsbridge.Stats {
			return natsbridge.Stats{Exported: uint64(exported), Looped: uint64(exported), Imported: uint64(imported), NotReexported: uint64(imported)}
		}
		require.Eventually(t, func() bool {
			return brA.Stats() == want(nA, nB) && brB.Stats() == want(nB, nA)
		}, waitFor, tick, "stats: a %+v, b %+v", brA.Stats(), brB.Stats())
		require.NoError(t, brA.Drain(ctx))
		require.NoError(t, brB.Drain(ctx))
		require.NoError(t, busA.Drain(ctx))
		require.NoError(t, busB.Drain(ctx))
		assert.Equal(t, nA+nB, recA.count())
		assert.Equal(t, nA+nB, recB.count())
		assert.Equal(t, want(nA, nB), brA.Stats())
		assert.Equal(t, want(nB, nA), brB.Stats())
	})
}

// TestJetStreamRedelivery checks at-least-once import: a handler that fails
// makes the bridge nak the message, the server delivers it again after the
// backoff, and it is acknowledged once the handler succeeds.
func TestJetStreamRedelivery(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		var mu sync.Mutex
		attempts := map[uuid.UUID]int{}
		_, err := busB.Subscribe(func(e eventbus.Event) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[e.ID]++
			if attempts[e.ID] < 3 {
				return errors.New("warehouse unreachable")
			}
			return nil
		})
		require.NoError(t, err)
		js := natsbridge.WithJetStream(stream)
		newBridge(t, busA, es.Connect("a"), js, natsbridge.WithExport())
		ncB := es.Connect("b")
		brB := newBridge(t, busB, ncB, js, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"),
			natsbridge.WithNakBackoff(10*time.Millisecond, 40*time.Millisecond))

		const n = 5
		ctx := ctxFor(t)
		for i := range n {
			require.NoError(t, busA.Publish(ctx, event(eventbus.StepCompleted, "adw-1", i)))
		}
		require.Eventually(t, func() bool { return brB.Stats().Imported == n }, waitFor, tick)
		require.Eventually(t, func() bool { return info(t, ncB).NumAckPending == 0 }, waitFor, tick)
		st := brB.Stats()
		assert.Equal(t, uint64(2*n), st.Naked, "two failures per event")
		assert.Equal(t, uint64(0), st.Terminated)
		// Each delivery, redeliveries included, is in exactly one counter.
		assert.Equal(t, info(t, ncB).Delivered.Consumer, st.Imported+st.Looped+st.Terminated+st.Naked)
		mu.Lock()
		defer mu.Unlock()
		assert.Len(t, attempts, n)
		for id, a := range attempts {
			assert.Equal(t, 3, a, "attempts of %s", id)
		}
	})
}

func info(t *testing.T, nc *nats.Conn) *jetstream.ConsumerInfo { return consumerInfo(t, nc, "loader") }

// TestJetStreamMalformedTerminated checks that a message that does not
// decode is terminated, not acknowledged, as the server's advisory says,
// counted, and never delivered again, and that the import goes on: on a
// server that takes a reason for the termination and on one that does not.
func TestJetStreamMalformedTerminated(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busB := newBus(t)
		rec := newRecorder()
		_, err := busB.Subscribe(rec.handle)
		require.NoError(t, err)
		ncB := es.Connect("b")
		// A short AckWait: a message left unacknowledged would come back quickly.
		brB := newBridge(t, busB, ncB, natsbridge.WithJetStream(stream), natsbridge.WithImport(""),
			natsbridge.WithQueueGroup("loader"), natsbridge.WithAckWait(100*time.Millisecond))

		raw := es.Connect("raw")
		advisories, err := raw.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + stream + ".loader")
		require.NoError(t, err)
		require.NoError(t, raw.Flush())
		js, err := jetstream.New(raw)
		require.NoError(t, err)
		ctx := ctxFor(t)
		subject := natsbridge.DefaultSubjectPrefix + ".step_failed._"
		_, err = js.Publish(ctx, subject, []byte("this is not JSON"))
		require.NoError(t, err)
		good := event(eventbus.StepFailed, "", 0)
		good.Timestamp = time.Now()
		data, err := natsbridge.Encode(good)
		require.NoError(t, err)
		_, err = js.Publish(ctx, subject, data)
		require.NoError(t, err)

		require.Eventually(t, func() bool { return brB.Stats().Imported == 1 }, waitFor, tick)
		require.Eventually(t, func() bool { return settled(info(t, ncB)) }, waitFor, tick)
		ci := info(t, ncB)
		assert.Equal(t, uint64(2), ci.Delivered.Stream, "both messages delivered")
		assert.Equal(t, uint64(2), ci.AckFloor.Stream, "both settled")
		assert.Equal(t, uint64(2), ci.Delivered.Consumer, "no redelivery")
		assert.Equal(t, uint64(1), brB.Stats().Terminated)
		m, err := advisories.NextMsgWithContext(ctx)
		require.NoError(t, err)
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
			Reason    string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal(m.Data, &adv), "%s", m.Data)
		assert.Equal(t, uint64(1), adv.StreamSeq, "the malformed message was terminated")
		// A reason where the server honours one (2.10.4 and later, such as
		// the embedded server), a plain Term on older ones (2.9.10), which
		// would otherwise ignore the termination altogether.
		assert.Equal(t, natsbridge.TermReasonFor(ncB.ConnectedServerVersion()), adv.Reason,
			"server %s", ncB.ConnectedServerVersion())
		if es.Kind() == natstest.Embedded {
			assert.Equal(t, "malformed", adv.Reason)
		}
		pending, _, err := advisories.Pending()
		require.NoError(t, err)
		assert.Zero(t, pending, "more than one message terminated")
		require.NoError(t, busB.Drain(ctx))
		assert.Equal(t, 1, rec.count())
	})
}

// TestJetStreamPoisonMessages publishes 2,000 malformed messages, twice the
// server's default MaxAckPending of 1,000, and then a valid event, on a
// server that takes a reason for a termination and on one that does not
// (2.9). The valid event arrives; each malformed message is terminated,
// counted and logged exactly once, and never delivered again; the consumer
// ends with nothing pending. With a termination that the server ignores,
// the first 1,000 would stay pending, the consumer would stall before the
// valid event, and each would come back every AckWait, counted again.
func TestJetStreamPoisonMessages(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		const malformed = 2000
		bus := newBus(t)
		rec := newRecorder()
		_, err := bus.Subscribe(rec.handle)
		require.NoError(t, err)
		var logged atomic.Int64
		ncB := es.Connect("b")
		// A short AckWait, so that a message left pending comes back soon.
		br, err := natsbridge.New(ctxFor(t), bus, ncB, natsbridge.WithJetStream(stream), natsbridge.WithImport(""),
			natsbridge.WithQueueGroup("loader"), natsbridge.WithAckWait(time.Second),
			natsbridge.WithLogger(slog.New(countingHandler{&logged})))
		require.NoError(t, err)
		t.Cleanup(func() { br.Close() })

		js, err := jetstream.New(es.Connect("producer"))
		require.NoError(t, err)
		ctx := ctxFor(t)
		subject := natsbridge.DefaultSubjectPrefix + ".step_failed._"
		for i := range malformed {
			_, err := js.PublishAsync(subject, fmt.Appendf(nil, `{"attempt":%d}`, i)) // no id, type, severity or timestamp
			require.NoError(t, err)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			t.Fatal("the stream did not acknowledge the malformed messages")
		}
		good := event(eventbus.StepFailed, "", 0)
		jsPublish(t, js.Conn(), good)

		require.Eventually(t, func() bool { return rec.seen(good.ID) == 1 }, waitFor, tick, "%+v", br.Stats())
		require.Eventually(t, func() bool { return settled(info(t, ncB)) }, waitFor, tick, "%+v", br.Stats())
		ci := info(t, ncB)
		st := br.Stats()
		t.Logf("nats-server %s: %+v; consumer: delivered %d, redelivered %d, ack pending %d, pending %d",
			ncB.ConnectedServerVersion(), st, ci.Delivered.Consumer, ci.NumRedelivered, ci.NumAckPending, ci.NumPending)
		assert.Equal(t, natsbridge.Stats{Imported: 1, Terminated: malformed}, st)
		assert.Equal(t, uint64(malformed+1), ci.Delivered.Consumer, "deliveries, redeliveries included")
		assert.Equal(t, ci.Delivered.Consumer, st.Imported+st.Looped+st.Terminated+st.Naked)
		assert.Equal(t, uint64(malformed+1), ci.AckFloor.Stream, "every message settled")
		assert.Equal(t, int64(malformed), logged.Load(), "log lines at Warn or above")
		require.NoError(t, bus.Drain(ctx))
		assert.Equal(t, 1, rec.count())
	})
}

// TestJetStreamDeduplicates checks that the event id travels as Nats-Msg-Id:
// an event exported twice is stored once and imported once.
func TestJetStreamDeduplicates(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		rec := newRecorder()
		_, err := busB.Subscribe(rec.handle)
		require.NoError(t, err)
		jsOpt := natsbridge.WithJetStream(stream)
		brA := newBridge(t, busA, es.Connect("a"), jsOpt, natsbridge.WithExport())
		ncB := es.Connect("b")
		brB := newBridge(t, busB, ncB, jsOpt, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"))

		ctx := ctxFor(t)
		e := event(eventbus.WorkflowCompleted, "adw-9", 0)
		require.NoError(t, busA.PublishAndWait(ctx, e))
		require.NoError(t, busA.PublishAndWait(ctx, e)) // the same event again
		second := event(eventbus.WorkflowCompleted, "adw-9", 1)
		require.NoError(t, busA.PublishAndWait(ctx, second))
		assert.Equal(t, uint64(3), brA.Stats().Exported)

		require.Eventually(t, func() bool { return brB.Stats().Imported == 2 }, waitFor, tick)
		require.Eventually(t, func() bool { return settled(info(t, ncB)) }, waitFor, tick)
		js, err := jetstream.New(ncB)
		require.NoError(t, err)
		s, err := js.Stream(ctx, stream)
		require.NoError(t, err)
		si, err := s.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), si.State.Msgs, "messages stored")
		require.NoError(t, busB.Drain(ctx))
		assert.Equal(t, 1, rec.seen(e.ID))
		assert.Equal(t, 1, rec.seen(second.ID))
	})
}

// TestJetStreamQueueGroup runs two importers on one durable consumer: each
// event is handled by exactly one of them.
func TestJetStreamQueueGroup(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB1, busB2 := newBus(t), newBus(t), newBus(t)
		rec1, rec2 := newRecorder(), newRecorder()
		_, err := busB1.Subscribe(rec1.handle)
		require.NoError(t, err)
		_, err = busB2.Subscribe(rec2.handle)
		require.NoError(t, err)
		js := natsbridge.WithJetStream(stream)
		newBridge(t, busA, es.Connect("a"), js, natsbridge.WithExport())
		ncB1 := es.Connect("b1")
		br1 := newBridge(t, busB1, ncB1, js, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"))
		br2 := newBridge(t, busB2, es.Connect("b2"), js, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"))

		const n = 300
		ctx := ctxFor(t)
		sent := make([]eventbus.Event, n)
		for i := range n {
			sent[i] = event(eventbus.AgentMessage, "adw-1", i)
			require.NoError(t, busA.Publish(ctx, sent[i]))
		}
		require.Eventually(t, func() bool { return br1.Stats().Imported+br2.Stats().Imported == n }, waitFor, tick)
		require.Eventually(t, func() bool { return settled(info(t, ncB1)) }, waitFor, tick)
		require.NoError(t, busB1.Drain(ctx))
		require.NoError(t, busB2.Drain(ctx))
		for _, e := range sent {
			require.Equal(t, 1, rec1.seen(e.ID)+rec2.seen(e.ID), "event %s", e.ID)
		}
		t.Logf("split: %d + %d", rec1.count(), rec2.count())
	})
}

// TestJetStreamSlowHandlersShareTheBacklog has two members of a queue group
// import a backlog of 40 events whose handler takes 20ms each. An import
// goroutine fetches as many messages as it imports in about 100ms, so
// neither member takes the whole backlog while the other idles: each
// handles at least a quarter of it.
func TestJetStreamSlowHandlersShareTheBacklog(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		const n = 40
		busA := newBus(t)
		jsOpt := natsbridge.WithJetStream(stream)
		newBridge(t, busA, es.Connect("a"), jsOpt, natsbridge.WithExport())
		ctx := ctxFor(t)
		for i := range n {
			require.NoError(t, busA.PublishAndWait(ctx, event(eventbus.StepCompleted, "adw-1", i)))
		}
		recs := []*recorder{newRecorder(), newRecorder()}
		for i, rec := range recs {
			bus := newBus(t)
			_, err := bus.Subscribe(func(e eventbus.Event) error {
				time.Sleep(20 * time.Millisecond) // the handler's work
				return rec.handle(e)
			})
			require.NoError(t, err)
			newBridge(t, bus, es.Connect(fmt.Sprint("b", i)), jsOpt, natsbridge.WithImport(""),
				natsbridge.WithQueueGroup("loader"))
		}
		require.Eventually(t, func() bool { return recs[0].count()+recs[1].count() == n }, waitFor, tick)
		t.Logf("split: %d + %d", recs[0].count(), recs[1].count())
		for i, rec := range recs {
			assert.GreaterOrEqual(t, rec.count(), n/4, "events handled by member %d", i)
		}
	})
}

// TestJetStreamServerRestart stops the server in the middle of a stream of
// events and starts it again. The importer is held in its 50th event while
// the server stops, so that event is acknowledged while the server is away,
// and so are the messages it had already pulled (nats.go keeps those acks in
// its reconnect buffer); events are also published while the server is
// down, and after it is back. Every event arrives; counted by id, each
// arrives exactly once, and the duplicates (redeliveries of messages that
// were delivered but not acknowledged when the server stopped: the held one
// and the few pulled behind it) are counted and reported, not bounded, as
// at-least-once delivery allows; every export is stored exactly once, and
// none is acknowledged while the server is down.
func TestJetStreamServerRestart(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		rec := newRecorder()
		const holdAt = 50
		reached, resume := make(chan struct{}), make(chan struct{})
		var once sync.Once
		_, err := busB.Subscribe(func(e eventbus.Event) error {
			if rec.handle(e); rec.count() == holdAt {
				once.Do(func() {
					close(reached)
					<-resume
				})
			}
			return nil
		})
		require.NoError(t, err)
		js := natsbridge.WithJetStream(stream)
		brA := newBridge(t, busA, es.Connect("a"), js, natsbridge.WithExport())
		brB := newBridge(t, busB, es.Connect("b"), js, natsbridge.WithImport(""),
			natsbridge.WithQueueGroup("loader"), natsbridge.WithAckWait(time.Second))

		const nBefore, nDown, nAfter = 300, 100, 300
		ctx := ctxFor(t)
		var sent []eventbus.Event
		publish := func(n int) {
			for range n {
				e := event(eventbus.StepCompleted, "adw-r", len(sent))
				sent = append(sent, e)
				require.NoError(t, busA.Publish(ctx, e))
			}
		}
		publish(nBefore)
		receive(t, reached) // the importer holds the 50th event
		require.Eventually(t, func() bool { return brA.Stats().Exported == nBefore }, waitFor, tick)
		es.Stop()
		atStop := rec.count()
		close(resume)  // acknowledged while the server is away
		publish(nDown) // their exports retry until the server is back
		exportedWhileDown := brA.Stats().Exported
		require.Equal(t, uint64(nBefore), exportedWhileDown, "exports acknowledged while the server was down")
		es.Restart()
		publish(nAfter)

		total := nBefore + nDown + nAfter
		require.Eventually(t, func() bool { return rec.unique() == total }, waitFor, 10*time.Millisecond,
			"unique %d of %d", rec.unique(), total)
		require.NoError(t, busA.Drain(ctx))
		require.NoError(t, brA.Drain(ctx))
		require.NoError(t, brB.Drain(ctx))
		require.NoError(t, busB.Drain(ctx))

		for _, e := range sent {
			require.Positive(t, rec.seen(e.ID), "event %s lost", e.ID)
		}
		assert.Equal(t, total, rec.unique())
		assert.Equal(t, uint64(total), brA.Stats().Exported)
		assert.Zero(t, brA.Stats().ExportErrors)
		assert.Equal(t, total, len(storedIDs(t, es.Connect("check"))), "events stored")
		t.Logf("published %d before the stop, %d while down, %d after the restart; "+
			"%d received when the server stopped, %d exports acknowledged when it stopped; "+
			"received %d in all, %d unique, %d duplicates removed; exporter %+v; importer %+v",
			nBefore, nDown, nAfter, atStop, exportedWhileDown,
			rec.count(), rec.unique(), rec.count()-rec.unique(), brA.Stats(), brB.Stats())
	})
}

// jsPublish stores e, encoded, in the stream, as another service would.
func jsPublish(t *testing.T, nc *nats.Conn, e eventbus.Event) {
	t.Helper()
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	}
	data, err := natsbridge.Encode(e)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.Publish(ctxFor(t), natsbridge.Subject(natsbridge.DefaultSubjectPrefix, e), data)
	require.NoError(t, err)
}

// storedIDs returns the ids of the events in the test stream.
func storedIDs(t *testing.T, nc *nats.Conn) map[uuid.UUID]bool {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := ctxFor(t)
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	ids := map[uuid.UUID]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		e, err := natsbridge.Decode(m.Data)
		require.NoError(t, err)
		ids[e.ID] = true
	}
	return ids
}

// TestJetStreamCloseFailsQueuedExports closes an exporting Bridge while an
// export run may wait in the bus for an async slot (the only one is busy).
// The bus must never skip such a run silently: PublishAndWait returns nil
// only if the event is stored, and otherwise ErrClosed. (Whether the run
// waits depends on the bus: one whose waiting caller runs an async handler
// itself when every slot is busy exports the event before Close.)
func TestJetStreamCloseFailsQueuedExports(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := eventbus.New(eventbus.WithLogger(quiet), eventbus.WithMaxAsync(1))
		t.Cleanup(func() { bus.Close() })
		release := make(chan struct{})
		_, err := bus.SubscribeAsync(func(context.Context, eventbus.Event) error { <-release; return nil },
			eventbus.Filter{Types: []eventbus.EventType{"block"}})
		require.NoError(t, err)
		nc := es.Connect("a")
		br := newBridge(t, bus, nc, natsbridge.WithJetStream(stream),
			natsbridge.WithExport(eventbus.Filter{Types: []eventbus.EventType{eventbus.StepFailed}}))

		ctx := ctxFor(t)
		require.NoError(t, bus.Publish(ctx, event("block", "", 0))) // holds the one async slot
		res := make(chan error, 1)
		e := event(eventbus.StepFailed, "adw-1", 1)
		go func() { res <- bus.PublishAndWait(ctx, e) }()
		// Accepted: its export run is waiting behind "block", or done.
		require.Eventually(t, func() bool { return bus.Metrics().Published == 2 }, waitFor, tick)
		require.NoError(t, br.Close())
		close(release)
		err = receive(t, res)
		stored := storedIDs(t, nc)[e.ID]
		if err == nil {
			assert.True(t, stored, "PublishAndWait returned nil, but the event is not stored")
			assert.Equal(t, natsbridge.Stats{Exported: 1}, br.Stats())
		} else {
			// Failed when it started after Close, or, if it was running,
			// interrupted while it waited for its ack: then the server may
			// have stored it all the same.
			assert.ErrorIs(t, err, natsbridge.ErrClosed)
			assert.Equal(t, natsbridge.Stats{ExportErrors: 1}, br.Stats(), "stored: %v", stored)
		}
		require.NoError(t, bus.Drain(ctx))
		assert.Zero(t, bus.Metrics().Skipped, "export runs skipped by the bus")
		// The exporter is gone from the bus once its last run ended.
		assert.Equal(t, 1, len(bus.Subscriptions()), "subscriptions left: %+v", bus.Subscriptions())
	})
}

// TestStopRacesKeepTheExportPromise publishes with PublishAndWait from
// several goroutines while the exporting Bridge is closed or drained, in
// every order against the bus closing, with few async slots, so that export
// runs wait in the bus. It checks the promise of JetStream export: no
// export run is ever skipped by the bus (a skipped run is no error, so its
// publisher would get nil for an event that is not stored), an event whose
// PublishAndWait returned nil before the stop began is stored, and the
// stored events are the exported ones, plus perhaps some whose export Close
// interrupted after the server had it. It also checks that no combination
// deadlocks or leaks a goroutine (TestMain runs goleak).
func TestStopRacesKeepTheExportPromise(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		for i := range 12 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				bus := eventbus.New(eventbus.WithLogger(quiet), eventbus.WithMaxWorkers(i%3), eventbus.WithMaxAsync(1+i%2))
				nc := es.Connect("a")
				ctx := ctxFor(t)
				br, err := natsbridge.New(ctx, bus, nc, natsbridge.WithLogger(quiet), natsbridge.WithJetStream(stream),
					natsbridge.WithExport(), natsbridge.WithPublishRetry(0))
				require.NoError(t, err)
				var mu sync.Mutex
				acked := map[uuid.UUID]bool{} // PublishAndWait returned nil before the stop
				var stopping atomic.Bool
				var started sync.WaitGroup
				var publishers sync.WaitGroup
				for p := range 3 {
					started.Add(1)
					publishers.Go(func() {
						for j := range 40 {
							if j == 5 {
								started.Done()
							}
							e := event(eventbus.StepStarted, "adw", 100*p+j)
							if bus.PublishAndWait(ctx, e) == nil && !stopping.Load() {
								mu.Lock()
								acked[e.ID] = true
								mu.Unlock()
							}
						}
					})
				}
				started.Wait() // every publisher is under way
				stopping.Store(true)
				var stoppers sync.WaitGroup
				switch i % 4 {
				case 0:
					stoppers.Go(func() { _ = br.Close() })
				case 1:
					stoppers.Go(func() { _ = br.Drain(ctx) })
				case 2:
					stoppers.Go(func() { _ = br.Drain(ctx) })
					stoppers.Go(func() { _ = br.Close() })
				case 3:
					stoppers.Go(func() { _ = bus.Close() })
					stoppers.Go(func() { _ = br.Drain(ctx) })
				}
				stoppers.Wait()
				publishers.Wait()
				require.NoError(t, br.Close())
				require.NoError(t, bus.Close())
				assert.Zero(t, bus.Metrics().Skipped, "export runs skipped by the bus")
				stored := storedIDs(t, nc)
				for id := range acked {
					require.True(t, stored[id], "PublishAndWait returned nil for %s, which is not stored", id)
				}
				// Close cancels exports waiting for their ack: such an event
				// may be stored although its publisher got the error.
				st := br.Stats()
				assert.LessOrEqual(t, st.Exported, uint64(len(stored)))
				assert.LessOrEqual(t, uint64(len(stored)), st.Exported+st.ExportErrors)
				// The next subtest starts from an empty stream.
				js, err := jetstream.New(nc)
				require.NoError(t, err)
				s, err := js.Stream(ctx, stream)
				require.NoError(t, err)
				require.NoError(t, s.Purge(ctx))
			})
		}
	})
}

// TestJetStreamSlowImportsAreNotDeliveredTwice has a backlog of events, each
// taking a while to handle, with a short AckWait. The Bridge fetches the
// backlog at once and keeps every message it holds in progress, the one
// being handled for longer than AckWait and those waiting their turn, and
// acknowledges those it imported within AckWait: the server delivers each
// message once, as its own counters show. (AckWait is 1s, not less, so that
// a loaded machine that delays the Bridge's goroutine by a few hundred
// milliseconds does not fail the test.)
func TestJetStreamSlowImportsAreNotDeliveredTwice(t *testing.T) {
	const ackWait = time.Second
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA, busB := newBus(t), newBus(t)
		rec := newRecorder()
		var slowOnce sync.Once
		_, err := busB.Subscribe(func(e eventbus.Event) error {
			// The handler's own work: 30ms each, 2 AckWaits once.
			work := 30 * time.Millisecond
			slowOnce.Do(func() { work = 2 * ackWait })
			time.Sleep(work)
			return rec.handle(e)
		})
		require.NoError(t, err)
		jsOpt := natsbridge.WithJetStream(stream)
		newBridge(t, busA, es.Connect("a"), jsOpt, natsbridge.WithExport())
		const n = 40 // 3.2s of work, 3 AckWaits
		ctx := ctxFor(t)
		for i := range n {
			require.NoError(t, busA.PublishAndWait(ctx, event(eventbus.StepCompleted, "adw-1", i)))
		}
		ncB := es.Connect("b")
		br := newBridge(t, busB, ncB, jsOpt, natsbridge.WithImport(""),
			natsbridge.WithQueueGroup("loader"), natsbridge.WithAckWait(ackWait))
		require.Eventually(t, func() bool { return settled(info(t, ncB)) }, waitFor, tick)
		ci := info(t, ncB)
		assert.Equal(t, uint64(n), ci.Delivered.Consumer, "deliveries, redeliveries included")
		assert.Equal(t, uint64(n), ci.AckFloor.Stream)
		require.NoError(t, br.Drain(ctx))
		assert.Equal(t, n, rec.count())
		assert.Equal(t, n, rec.unique())
	})
}

// TestJetStreamConsumerDeleted deletes the import's consumer, durable or
// ephemeral, while the Bridge runs. The Bridge attaches again, counts it,
// and imports what is published afterwards.
func TestJetStreamConsumerDeleted(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(map[bool]string{true: "durable", false: "ephemeral"}[durable], func(t *testing.T) {
			onEachServer(t, func(t *testing.T, es *natstest.Server) {
				busA, busB := newBus(t), newBus(t)
				rec := newRecorder()
				_, err := busB.Subscribe(rec.handle)
				require.NoError(t, err)
				jsOpt := natsbridge.WithJetStream(stream)
				newBridge(t, busA, es.Connect("a"), jsOpt, natsbridge.WithExport())
				opts := []natsbridge.Option{jsOpt, natsbridge.WithImport("")}
				if durable {
					opts = append(opts, natsbridge.WithQueueGroup("q"))
				}
				br := newBridge(t, busB, es.Connect("b"), opts...)
				ctx := ctxFor(t)
				require.NoError(t, busA.PublishAndWait(ctx, event(eventbus.StepStarted, "adw-1", 0)))
				require.Eventually(t, func() bool { return rec.count() == 1 }, waitFor, tick)

				js, err := jetstream.New(es.Connect("ops"))
				require.NoError(t, err)
				s, err := js.Stream(ctx, stream)
				require.NoError(t, err)
				names := s.ConsumerNames(ctx)
				var deleted int
				for name := range names.Name() {
					err := js.DeleteConsumer(ctx, stream, name)
					var apiErr *jetstream.APIError
					if errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "directory not empty") {
						// nats-server 2.9 deletes the consumer, then fails to
						// remove its directory when the Bridge has already
						// created the durable again, and says so.
						t.Logf("the server deleted the consumer and answered: %v", err)
						err = nil
					}
					require.NoError(t, err)
					deleted++
				}
				require.NoError(t, names.Err())
				require.Equal(t, 1, deleted)
				require.Eventually(t, func() bool { return br.Stats().Reattached == 1 }, waitFor, tick, "%+v", br.Stats())
				require.NoError(t, busA.PublishAndWait(ctx, event(eventbus.StepStarted, "adw-1", 1)))
				require.Eventually(t, func() bool { return rec.count() == 2 }, waitFor, tick, "%+v", br.Stats())
				assert.Equal(t, 2, rec.unique())
			})
		})
	}
}

// TestJetStreamBusClosedFirst closes the importing bus before its Bridge,
// with WithMaxDeliver(3). The Bridge gives the message in hand back at once
// and stops pulling, instead of using up its deliveries: a Bridge on
// another bus that attaches to the durable later imports it.
func TestJetStreamBusClosedFirst(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busA := newBus(t)
		busB := eventbus.New(eventbus.WithLogger(quiet))
		jsOpt := natsbridge.WithJetStream(stream)
		newBridge(t, busA, es.Connect("a"), jsOpt, natsbridge.WithExport())
		ncB := es.Connect("b")
		opts := []natsbridge.Option{jsOpt, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"),
			natsbridge.WithMaxDeliver(3), natsbridge.WithNakBackoff(10*time.Millisecond, 10*time.Millisecond)}
		br := newBridge(t, busB, ncB, opts...)
		require.NoError(t, busB.Close())
		ctx := ctxFor(t)
		e := event(eventbus.StepStarted, "adw-1", 0)
		require.NoError(t, busA.PublishAndWait(ctx, e))
		require.Eventually(t, func() bool { return br.Stats().ImportStopped }, waitFor, tick)
		assert.Equal(t, natsbridge.Stats{Naked: 1, ImportStopped: true}, br.Stats())
		ci := info(t, ncB)
		assert.Equal(t, uint64(1), ci.Delivered.Consumer, "deliveries used")
		require.NoError(t, br.Close())

		busC := newBus(t)
		rec := newRecorder()
		_, err := busC.Subscribe(rec.handle)
		require.NoError(t, err)
		newBridge(t, busC, es.Connect("c"), opts...)
		require.Eventually(t, func() bool { return rec.seen(e.ID) == 1 }, waitFor, tick)
	})
}

// TestJetStreamNakBackoff checks the redelivery delays after failures:
// WithNakBackoff's minimum after the first delivery, doubling, capped at
// its maximum.
func TestJetStreamNakBackoff(t *testing.T) {
	const nakMin, nakMax, failures = 25 * time.Millisecond, 50 * time.Millisecond, 6
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		busB := newBus(t)
		var mu sync.Mutex
		var starts []time.Time
		_, err := busB.Subscribe(func(eventbus.Event) error {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, time.Now())
			if len(starts) <= failures {
				return errors.New("not yet")
			}
			return nil
		})
		require.NoError(t, err)
		ncB := es.Connect("b")
		br := newBridge(t, busB, ncB, natsbridge.WithJetStream(stream), natsbridge.WithImport(""),
			natsbridge.WithQueueGroup("loader"), natsbridge.WithNakBackoff(nakMin, nakMax))
		jsPublish(t, es.Connect("p"), event(eventbus.StepFailed, "", 0))
		require.Eventually(t, func() bool { return br.Stats().Imported == 1 }, waitFor, tick)
		assert.Equal(t, uint64(failures), br.Stats().Naked)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, starts, failures+1)
		want := []time.Duration{25, 50, 50, 50, 50, 50} // ms; doubling without the cap: 25, 50, 100, 200, 400, 800
		for i, w := range want {
			gap := starts[i+1].Sub(starts[i])
			assert.GreaterOrEqual(t, gap, w*time.Millisecond, "delay after delivery %d", i+1)
		}
		assert.Less(t, starts[failures].Sub(starts[0]), time.Second, "the delays are not capped at %v", nakMax)
	})
}

// TestJetStreamStreamMustCaptureSubjects checks that New refuses an existing
// stream that would not store what the Bridge exports, instead of letting
// every export fail later.
func TestJetStreamStreamMustCaptureSubjects(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		nc := es.Connect("a")
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		ctx := ctxFor(t)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>", "adws.events.step_failed.*"}})
		require.NoError(t, err)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "WIDE", Subjects: []string{"acme.>"}})
		require.NoError(t, err)
		bus := newBus(t)
		_, err = natsbridge.New(ctx, bus, nc, natsbridge.WithJetStream("OTHER"), natsbridge.WithExport(), natsbridge.WithLogger(quiet))
		assert.ErrorIs(t, err, natsbridge.ErrStreamSubjects)
		newBridge(t, bus, nc, natsbridge.WithJetStream("WIDE"), natsbridge.WithExport(), natsbridge.WithSubjectPrefix("acme.events"))
		// Importing only needs the server to accept the consumer's filter.
		newBridge(t, bus, nc, natsbridge.WithJetStream("OTHER"), natsbridge.WithImport("adws.events.step_failed.*"))
	})
}

// TestJetStreamDurableIsNotReset starts two members of a queue group with
// different settings: the second attaches to the durable as the first
// created it, and a member that imports other subjects is refused.
func TestJetStreamDurableIsNotReset(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		nc := es.Connect("a")
		jsOpt := natsbridge.WithJetStream(stream)
		newBridge(t, newBus(t), nc, jsOpt, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"),
			natsbridge.WithAckWait(2*time.Second), natsbridge.WithMaxDeliver(5))
		newBridge(t, newBus(t), nc, jsOpt, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"),
			natsbridge.WithAckWait(7*time.Second))
		ci := info(t, nc)
		assert.Equal(t, 2*time.Second, ci.Config.AckWait)
		assert.Equal(t, 5, ci.Config.MaxDeliver)
		_, err := natsbridge.New(ctxFor(t), newBus(t), nc, jsOpt, natsbridge.WithImport("adws.events.*.adw-7"),
			natsbridge.WithQueueGroup("loader"), natsbridge.WithLogger(quiet))
		assert.ErrorIs(t, err, natsbridge.ErrConsumerMismatch)
	})
}

// TestJetStreamPermanentErrorIsNotRetried exports an event larger than the
// server's max payload: retrying cannot help, so PublishAndWait returns the
// error at once instead of after the publish-retry minute.
func TestJetStreamPermanentErrorIsNotRetried(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := newBus(t)
		nc := es.Connect("a")
		br := newBridge(t, bus, nc, natsbridge.WithJetStream(stream), natsbridge.WithExport())
		e := event(eventbus.ToolReturned, "adw-1", 0)
		e.Data = map[string]any{"blob": strings.Repeat("x", int(nc.MaxPayload()))}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // well under the minute
		defer cancel()
		err := bus.PublishAndWait(ctx, e)
		require.ErrorIs(t, err, nats.ErrMaxPayload)
		assert.Equal(t, natsbridge.Stats{ExportErrors: 1}, br.Stats())
	})
}

// TestJetStreamExportWindow publishes many more events than the export
// window holds while the server is down: exactly PublishWindow exports
// await their acknowledgement, the others wait for a place, and once the
// server is back every event is stored once and exported without error.
func TestJetStreamExportWindow(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		const n = 4 * natsbridge.PublishWindow
		bus := newBus(t)
		nc := es.Connect("a")
		br := newBridge(t, bus, nc, natsbridge.WithJetStream(stream), natsbridge.WithExport())
		es.Stop()
		ctx := ctxFor(t)
		for i := range n {
			require.NoError(t, bus.Publish(ctx, event(eventbus.StepStarted, "adw-1", i)))
		}
		require.Eventually(t, func() bool { return br.AwaitingAck() == natsbridge.PublishWindow },
			waitFor, tick, "awaiting %d", br.AwaitingAck())
		assert.Zero(t, br.Stats().Exported)
		es.Restart()
		require.NoError(t, bus.Drain(ctx))
		assert.Equal(t, natsbridge.Stats{Exported: n}, br.Stats())
		assert.Len(t, storedIDs(t, nc), n)
		assert.Zero(t, br.AwaitingAck())
	})
}

// TestJetStreamRefusedExportReachesThePublisher exports, asynchronously,
// an event that the stream refuses (larger than its MaxMsgSize) and one it
// takes. The refusal comes with the stream's acknowledgement, long after
// the publish returned; PublishAndWait still returns it, at once, as the
// server's API error, and returns nil for the event that was stored.
func TestJetStreamRefusedExportReachesThePublisher(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		nc := es.Connect("a")
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // well under the minute
		defer cancel()
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: stream, Subjects: []string{natsbridge.DefaultSubjectPrefix + ".>"}, MaxMsgSize: 1024,
		})
		require.NoError(t, err)
		bus := newBus(t)
		br := newBridge(t, bus, nc, natsbridge.WithJetStream(stream), natsbridge.WithExport())

		big := event(eventbus.ToolReturned, "adw-1", 0)
		big.Data = map[string]any{"blob": strings.Repeat("x", 2048)}
		err = bus.PublishAndWait(ctx, big)
		var apiErr *jetstream.APIError
		require.ErrorAs(t, err, &apiErr, "%v", err)
		small := event(eventbus.ToolReturned, "adw-1", 1)
		require.NoError(t, bus.PublishAndWait(ctx, small))
		assert.Equal(t, natsbridge.Stats{Exported: 1, ExportErrors: 1}, br.Stats())
		assert.Equal(t, map[uuid.UUID]bool{small.ID: true}, storedIDs(t, nc))
	})
}

// TestJetStreamRestartImport checks that an ephemeral consumer, like a
// durable one, imports again after the server restarts, and so does core
// NATS: nats.go subscribes again once it has reconnected.
func TestJetStreamRestartImport(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(map[bool]string{false: "core", true: "jetstream-ephemeral"}[js], func(t *testing.T) {
			onEachServer(t, func(t *testing.T, es *natstest.Server) {
				busA, busB := newBus(t), newBus(t)
				rec := newRecorder()
				_, err := busB.Subscribe(rec.handle)
				require.NoError(t, err)
				var opts []natsbridge.Option
				if js {
					opts = append(opts, natsbridge.WithJetStream(stream))
				}
				ncA, ncB := es.Connect("a"), es.Connect("b")
				newBridge(t, busA, ncA, append(opts, natsbridge.WithExport())...)
				br := newBridge(t, busB, ncB, append(opts, natsbridge.WithImport(""))...)
				ctx := ctxFor(t)
				require.NoError(t, busA.PublishAndWait(ctx, event(eventbus.StepStarted, "adw-1", 0)))
				require.Eventually(t, func() bool { return rec.count() == 1 }, waitFor, tick)
				es.Stop()
				es.Restart() // returns once both connections are back
				for _, nc := range []*nats.Conn{ncA, ncB} {
					// A round trip on each: the server has their subscriptions again.
					require.NoError(t, nc.FlushWithContext(ctx))
				}
				require.NoError(t, busA.PublishAndWait(ctx, event(eventbus.StepStarted, "adw-1", 1)))
				require.Eventually(t, func() bool { return rec.count() == 2 }, waitFor, tick, "%+v", br.Stats())
			})
		})
	}
}
