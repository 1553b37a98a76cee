package otelbus_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/otelbus"
)

// messaging.client.sent.messages counts every accepted event once, by type
// and call, also when no subscription matched and when PublishAndWait
// returns handler errors; an invalid event counts nowhere.
func TestSentMessages(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t, eventbus.WithMaxWorkers(2))
	_, err := bus.Subscribe(func(eventbus.Event) error { return nil }, only(eventbus.StepStarted))
	require.NoError(t, err)
	_, err = bus.Subscribe(func(eventbus.Event) error { return errors.New("no") }, only(eventbus.StepFailed))
	require.NoError(t, err)

	ctx := context.Background()
	for range 5 {
		require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted}))
	}
	for range 3 {
		require.NoError(t, bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.StepStarted}))
	}
	for range 2 {
		require.Error(t, bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.StepFailed}))
	}
	require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "unheard_of"}))
	require.ErrorIs(t, bus.Publish(ctx, eventbus.Event{}), eventbus.ErrInvalidEvent)
	require.NoError(t, bus.Drain(ctx))

	m := h.collect(t)
	sent := m["messaging.client.sent.messages"]
	assert.Equal(t, "{message}", sent.Unit)
	op := func(name, typ string) string {
		return key("messaging.system=eventbus", "messaging.operation.name="+name, "messaging.destination.name="+typ)
	}
	assert.Equal(t, map[string]int64{
		op("publish", "step_started"):          5,
		op("publish_and_wait", "step_started"): 3,
		op("publish_and_wait", "step_failed"):  2,
		op("publish", "unheard_of"):            1,
	}, sums(t, sent))
	assert.Equal(t, bus.Metrics().Published, uint64(11), "the counter agrees with the bus")
}

// A PublishAndWait that stops waiting because its ctx ended still counts its
// accepted event as sent, without error.type.
func TestSentWhenWaitEnds(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	_, err := bus.SubscribeAsync(func(context.Context, eventbus.Event) error {
		cancel()  // the caller stops waiting...
		<-release // ...while this run goes on
		return nil
	})
	require.NoError(t, err)
	require.ErrorIs(t, bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.StepStarted}), context.Canceled)
	close(release)
	require.NoError(t, bus.Drain(context.Background()))

	assert.Equal(t, map[string]int64{
		key("messaging.system=eventbus", "messaging.operation.name=publish_and_wait", "messaging.destination.name=step_started"): 1,
	}, sums(t, h.collect(t)["messaging.client.sent.messages"]))
}

// A publisher whose ctx ends while it waits for queue room is refused, and
// counted with error.type.
func TestSentWhenBlockedPublishGivesUp(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowBlock))
	release := make(chan struct{})
	started := subscribeBlocking(t, bus, release)
	defer close(release)
	e := eventbus.Event{Type: eventbus.AgentMessage}
	require.NoError(t, bus.Publish(context.Background(), e))
	<-started
	require.NoError(t, bus.Publish(context.Background(), e)) // fills the queue
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	require.ErrorIs(t, bus.Publish(ctx, e), context.DeadlineExceeded)

	assert.Equal(t, map[string]int64{
		key("messaging.system=eventbus", "messaging.operation.name=publish", "messaging.destination.name=agent_message"):                                 2,
		key("messaging.system=eventbus", "messaging.operation.name=publish", "messaging.destination.name=agent_message", "error.type=deadline_exceeded"): 1,
	}, sums(t, h.collect(t)["messaging.client.sent.messages"]))
}

// An event the bus refuses counts in messaging.client.sent.messages with
// error.type saying why; accepted ones count without it.
func TestRefusedMessages(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t, eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowReject))
	release := make(chan struct{})
	started := subscribeBlocking(t, bus, release)

	ctx := context.Background()
	e := eventbus.Event{Type: eventbus.ToolCalled}
	require.NoError(t, bus.Publish(ctx, e)) // runs, and blocks the only worker
	<-started
	require.NoError(t, bus.Publish(ctx, e)) // waits for the worker, filling the queue
	require.ErrorIs(t, bus.Publish(ctx, e), eventbus.ErrQueueFull)
	// A caller whose ctx cannot end would run the handler itself.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	require.ErrorIs(t, bus.PublishAndWait(wctx, e), eventbus.ErrQueueFull)
	close(release)
	<-started
	require.NoError(t, bus.Close())
	require.ErrorIs(t, bus.Publish(ctx, e), eventbus.ErrClosed)

	m := h.collect(t)
	sent := func(op string, why ...string) string {
		pairs := []string{"messaging.system=eventbus", "messaging.operation.name=" + op,
			"messaging.destination.name=tool_called"}
		for _, w := range why {
			pairs = append(pairs, "error.type="+w)
		}
		return key(pairs...)
	}
	assert.Equal(t, map[string]int64{
		sent("publish"):                        2,
		sent("publish", "queue_full"):          1,
		sent("publish_and_wait", "queue_full"): 1,
		sent("publish", "closed"):              1,
	}, sums(t, m["messaging.client.sent.messages"]))
	snap := bus.Metrics()
	assert.Equal(t, [2]uint64{2, 2}, [2]uint64{snap.Published, snap.Rejected}, "the bus agrees")
}

// messaging.process.duration has one point per subscription, event type and
// outcome, counting every run; eventbus.handler.failures counts the failed
// ones with the same attributes.
func TestRunMetrics(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t)
	_, err := bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("audit"))
	require.NoError(t, err)
	flaky, err := bus.SubscribeAsync(func(_ context.Context, e eventbus.Event) error {
		if e.Message == "fail" {
			return errors.New("flaky")
		}
		if e.Message == "panic" {
			panic("flaky")
		}
		return nil
	}, only(eventbus.ToolCalled))
	require.NoError(t, err)

	ctx := context.Background()
	for _, msg := range []string{"ok", "fail", "ok", "panic", "fail", "ok"} {
		_ = bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.ToolCalled, Message: msg})
	}
	require.NoError(t, bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.ToolReturned}))

	m := h.collect(t)
	dur := m["messaging.process.duration"]
	assert.Equal(t, "s", dur.Unit)
	run := func(group, typ string, errType ...string) string {
		pairs := []string{"messaging.system=eventbus", "messaging.operation.name=process",
			"messaging.consumer.group.name=" + group, "messaging.destination.name=" + typ}
		for _, e := range errType {
			pairs = append(pairs, "error.type="+e)
		}
		return key(pairs...)
	}
	g := string(flaky)
	assert.Equal(t, map[string]uint64{
		run("audit", "tool_called"):                  6,
		run("audit", "tool_returned"):                1,
		run(g, "tool_called"):                        3,
		run(g, "tool_called", "*errors.errorString"): 2,
		run(g, "tool_called", "panic"):               1,
	}, counts(t, dur))
	assert.Equal(t, map[string]int64{
		run(g, "tool_called", "*errors.errorString"): 2,
		run(g, "tool_called", "panic"):               1,
	}, sums(t, m["eventbus.handler.failures"]))
	assert.Equal(t, uint64(3), bus.Metrics().Failed)
}

// The queue instruments report Metrics().Queued and InFlight at collection
// time, and nothing once unregistered.
func TestObserveBus(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t, eventbus.WithMaxWorkers(1))
	release := make(chan struct{})
	started := subscribeBlocking(t, bus, release)
	unregister, err := h.obs.ObserveBus(bus)
	require.NoError(t, err)

	m := h.collect(t)
	assert.Equal(t, map[string]int64{"": 0}, sums(t, m["eventbus.queue.depth"]), "an idle bus")
	assert.Equal(t, map[string]int64{"": 0}, sums(t, m["eventbus.handler.in_flight"]))

	// The one worker takes the first event and blocks in its handler; the
	// two published after that wait in the queue. (Publishing all three at
	// once could let the worker claim several in one batch.)
	ctx := context.Background()
	require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: eventbus.AgentMessage}))
	<-started
	for range 2 {
		require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: eventbus.AgentMessage}))
	}

	m = h.collect(t)
	assert.Equal(t, map[string]int64{"": 2}, sums(t, m["eventbus.queue.depth"]))
	assert.Equal(t, map[string]int64{"": 1}, sums(t, m["eventbus.handler.in_flight"]))
	assert.Equal(t, "{run}", m["eventbus.queue.depth"].Unit)
	snap := bus.Metrics()
	assert.Equal(t, [2]int64{2, 1}, [2]int64{snap.Queued, snap.InFlight}, "what the bus says")

	close(release)
	<-started
	<-started
	require.NoError(t, bus.Drain(ctx))
	m = h.collect(t)
	assert.Equal(t, map[string]int64{"": 0}, sums(t, m["eventbus.queue.depth"]))
	assert.Equal(t, map[string]int64{"": 0}, sums(t, m["eventbus.handler.in_flight"]))

	require.NoError(t, unregister())
	require.NoError(t, unregister(), "a second call is harmless")
	m = h.collect(t)
	assert.Nil(t, sums(t, m["eventbus.queue.depth"]), "no point once unregistered")
	assert.Nil(t, sums(t, m["eventbus.handler.in_flight"]))
}

// Buses observed with the same attributes add up; other attributes make a
// point of their own.
func TestObserveBusAddsUp(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	defer close(release)
	blocked := func() *eventbus.Bus {
		bus := h.bus(t, eventbus.WithMaxWorkers(1))
		started := subscribeBlocking(t, bus, release)
		// One run blocks the only worker, the next waits in the queue.
		require.NoError(t, bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepStarted}))
		<-started
		require.NoError(t, bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepStarted}))
		return bus
	}
	a, b := blocked(), blocked()

	for _, o := range []struct {
		bus   *eventbus.Bus
		attrs []attribute.KeyValue
	}{{bus: a}, {bus: b}, {bus: a, attrs: []attribute.KeyValue{attribute.String("eventbus.bus.name", "a")}}} {
		unregister, err := h.obs.ObserveBus(o.bus, o.attrs...)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, unregister()) })
	}
	m := h.collect(t)
	assert.Equal(t, map[string]int64{"": 2, "eventbus.bus.name=a": 1}, sums(t, m["eventbus.queue.depth"]))
	assert.Equal(t, map[string]int64{"": 2, "eventbus.bus.name=a": 1}, sums(t, m["eventbus.handler.in_flight"]))
}

// Many publishers on many goroutines: every event counts once, every run has
// one span, parented by its own publisher's span, and one duration point.
func TestConcurrentPublishers(t *testing.T) {
	h := newHarness(t)
	bus := h.bus(t, eventbus.WithMaxWorkers(4))
	types := []eventbus.EventType{eventbus.StepStarted, eventbus.StepCompleted, eventbus.ToolCalled}
	for _, typ := range types {
		_, err := bus.Subscribe(func(eventbus.Event) error { return nil }, only(typ))
		require.NoError(t, err)
	}
	_, err := bus.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
	require.NoError(t, err)

	const publishers, each = 8, 50
	parents := make(chan [2]string, publishers*each) // trace id, span id
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				ctx, span := h.tracer.Start(context.Background(), "send")
				e := eventbus.Event{Type: types[(p+i)%len(types)]}
				var err error
				if i%2 == 0 {
					err = bus.Publish(ctx, e)
				} else {
					err = bus.PublishAndWait(ctx, e)
				}
				span.End()
				assert.NoError(t, err)
				parents <- [2]string{span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()}
			}
		})
	}
	wg.Wait()
	close(parents)
	require.NoError(t, bus.Drain(context.Background()))

	parentOf := map[string]string{}
	for p := range parents {
		parentOf[p[0]] = p[1]
	}
	spans := h.processSpans()
	require.Len(t, spans, 2*publishers*each, "a sync and an async run per event")
	perTrace := map[string]int{}
	for _, s := range spans {
		tid := s.SpanContext().TraceID().String()
		assert.Equal(t, parentOf[tid], s.Parent().SpanID().String())
		perTrace[tid]++
	}
	for tid, n := range perTrace {
		assert.Equal(t, 2, n, "trace %s", tid)
	}

	m := h.collect(t)
	var sent int64
	for _, v := range sums(t, m["messaging.client.sent.messages"]) {
		sent += v
	}
	assert.Equal(t, int64(publishers*each), sent)
	var runs uint64
	for _, v := range counts(t, m["messaging.process.duration"]) {
		runs += v
	}
	assert.Equal(t, uint64(2*publishers*each), runs)
}

// The zero Observer and an Observer on the global (no-op) providers can be
// used like any other: every call on them succeeds and none panics. (With
// no-op providers there is nothing recorded to read back.)
func TestQuietObservers(t *testing.T) {
	global, err := otelbus.New()
	require.NoError(t, err)
	for name, o := range map[string]*otelbus.Observer{"zero": {}, "global": global} {
		t.Run(name, func(t *testing.T) {
			bus := eventbus.New(eventbus.WithObserver(o), eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
			defer bus.Close()
			_, err := bus.Subscribe(func(eventbus.Event) error { return errors.New("no") })
			require.NoError(t, err)
			unregister, err := o.ObserveBus(bus)
			require.NoError(t, err)
			require.Error(t, bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.StepFailed}))
			require.NoError(t, unregister())
		})
	}
}

// Nil providers and a nil bus are programming errors.
func TestPanics(t *testing.T) {
	assert.PanicsWithValue(t, "otelbus: WithTracerProvider: nil provider", func() { otelbus.WithTracerProvider(nil) })
	assert.PanicsWithValue(t, "otelbus: WithMeterProvider: nil provider", func() { otelbus.WithMeterProvider(nil) })
	h := newHarness(t)
	assert.PanicsWithValue(t, "otelbus: ObserveBus: nil bus", func() { _, _ = h.obs.ObserveBus(nil) })
	_, err := otelbus.New(nil) // nil options are ignored
	assert.NoError(t, err)
}
