package natsbridge_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
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
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	recA, recB := newRecorder(), newRecorder()
	_, err := busA.Subscribe(recA.handle)
	require.NoError(t, err)
	_, err = busB.Subscribe(recB.handle)
	require.NoError(t, err)
	js := natsbridge.WithJetStream(stream)
	brA := newBridge(t, busA, connect(t, es, "a"), js, natsbridge.WithExport(), natsbridge.WithImport(""))
	brB := newBridge(t, busB, connect(t, es, "b"), js, natsbridge.WithExport(), natsbridge.WithImport(""))

	const nA, nB = 40, 25
	ctx := ctxFor(t)
	for i := range nA {
		require.NoError(t, busA.Publish(ctx, event(eventbus.StepStarted, "adw-a", i)))
	}
	for i := range nB {
		require.NoError(t, busB.Publish(ctx, event(eventbus.StepCompleted, "adw-b", i)))
	}
	want := func(exported, imported int) natsbridge.Stats {
		return natsbridge.Stats{Exported: uint64(exported), Looped: uint64(exported), Imported: uint64(imported), Skipped: uint64(imported)}
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
}

// TestJetStreamRedelivery checks at-least-once import: a handler that fails
// makes the bridge nak the message, the server delivers it again after the
// backoff, and it is acknowledged once the handler succeeds.
func TestJetStreamRedelivery(t *testing.T) {
	es := startServer(t)
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
	newBridge(t, busA, connect(t, es, "a"), js, natsbridge.WithExport())
	ncB := connect(t, es, "b")
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
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, attempts, n)
	for id, a := range attempts {
		assert.Equal(t, 3, a, "attempts of %s", id)
	}
}

func info(t *testing.T, nc *nats.Conn) *jetstream.ConsumerInfo { return consumerInfo(t, nc, "loader") }

// TestJetStreamMalformedTerminated checks that a message that does not
// decode is terminated, counted, and never delivered again, and that the
// import goes on.
func TestJetStreamMalformedTerminated(t *testing.T) {
	es := startServer(t)
	busB := newBus(t)
	rec := newRecorder()
	_, err := busB.Subscribe(rec.handle)
	require.NoError(t, err)
	ncB := connect(t, es, "b")
	// A short AckWait: a message left unacknowledged would come back quickly.
	brB := newBridge(t, busB, ncB, natsbridge.WithJetStream(stream), natsbridge.WithImport(""),
		natsbridge.WithQueueGroup("loader"), natsbridge.WithAckWait(100*time.Millisecond))

	js, err := jetstream.New(connect(t, es, "raw"))
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
	assert.Equal(t, uint64(1), brB.Stats().Terminated)
	require.NoError(t, busB.Drain(ctx))
	assert.Equal(t, 1, rec.count())
}

// TestJetStreamDeduplicates checks that the event id travels as Nats-Msg-Id:
// an event exported twice is stored once and imported once.
func TestJetStreamDeduplicates(t *testing.T) {
	es := startServer(t)
	busA, busB := newBus(t), newBus(t)
	rec := newRecorder()
	_, err := busB.Subscribe(rec.handle)
	require.NoError(t, err)
	jsOpt := natsbridge.WithJetStream(stream)
	brA := newBridge(t, busA, connect(t, es, "a"), jsOpt, natsbridge.WithExport())
	ncB := connect(t, es, "b")
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
}

// TestJetStreamQueueGroup runs two importers on one durable consumer: each
// event is handled by exactly one of them.
func TestJetStreamQueueGroup(t *testing.T) {
	es := startServer(t)
	busA, busB1, busB2 := newBus(t), newBus(t), newBus(t)
	rec1, rec2 := newRecorder(), newRecorder()
	_, err := busB1.Subscribe(rec1.handle)
	require.NoError(t, err)
	_, err = busB2.Subscribe(rec2.handle)
	require.NoError(t, err)
	js := natsbridge.WithJetStream(stream)
	newBridge(t, busA, connect(t, es, "a"), js, natsbridge.WithExport())
	ncB1 := connect(t, es, "b1")
	br1 := newBridge(t, busB1, ncB1, js, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"))
	br2 := newBridge(t, busB2, connect(t, es, "b2"), js, natsbridge.WithImport(""), natsbridge.WithQueueGroup("loader"))

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
}

// TestJetStreamServerRestart stops the server in the middle of a stream of
// events and starts it again. The importer is held in its 50th event while
// the server stops, so that event is acknowledged while the server is away,
// and so are the messages it had already pulled (nats.go keeps those acks in
// its reconnect buffer); events are also published while the server is
// down, and after it is back. Every event arrives; counted by id, each
// arrives exactly once, and the duplicates (redeliveries of messages whose
// acknowledgement was lost) are counted and reported.
func TestJetStreamServerRestart(t *testing.T) {
	es := startServer(t)
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
	brA := newBridge(t, busA, connect(t, es, "a"), js, natsbridge.WithExport())
	brB := newBridge(t, busB, connect(t, es, "b"), js, natsbridge.WithImport(""),
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
	es.stop()
	atStop := rec.count()
	close(resume)  // acknowledged while the server is away
	publish(nDown) // their exports retry until the server is back
	exportedWhileDown := brA.Stats().Exported
	es.restart()
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
	assert.LessOrEqual(t, exportedWhileDown, uint64(nBefore), "exports acknowledged while the server was down")
	t.Logf("published %d before the stop, %d while down, %d after the restart; "+
		"%d received when the server stopped, %d exports acknowledged while it was down; "+
		"received %d in all, %d unique, %d duplicates removed; exporter %+v; importer %+v",
		nBefore, nDown, nAfter, atStop, exportedWhileDown,
		rec.count(), rec.unique(), rec.count()-rec.unique(), brA.Stats(), brB.Stats())
}
