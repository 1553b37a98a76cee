package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/adws/eventbus"
)

// The quick start of README.md: a PublishAndWait with a deadline, in a
// request path, and the report it returns when a handler is too slow.
func Example() {
	bus := eventbus.New()
	defer bus.Close()

	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("audit:", e.Type, e.ADWID)
		return nil
	}, eventbus.WithName("audit"))
	_, _ = bus.Subscribe(func(eventbus.Event) error {
		return errors.New("warehouse unreachable")
	}, eventbus.WithName("webhook"))
	release := make(chan struct{})
	defer close(release) // before Close, which waits for the slow handler
	_, _ = bus.Subscribe(func(eventbus.Event) error {
		<-release // slower than the request may wait
		return nil
	}, eventbus.WithName("loader"))

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.WorkflowFailed, ADWID: "wf-001"})
	fmt.Println(err)
	fmt.Println("timed out:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// audit: workflow_failed wf-001
	// context deadline exceeded
	// eventbus: handler "webhook" (sub-2) on workflow_failed for wf-001: warehouse unreachable
	// eventbus: 1 handler run not finished: "loader" (sub-3)
	// timed out: true
}

func ExampleNew() {
	bus := eventbus.New(eventbus.WithMaxWorkers(4))
	defer bus.Close()

	_, err := bus.Subscribe(func(e eventbus.Event) error {
		fmt.Printf("%s %s: %s\n", e.ADWID, e.Type, e.Message)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	err = bus.PublishAndWait(context.Background(), eventbus.Event{
		ADWID:    "adw-7",
		Type:     eventbus.WorkflowStarted,
		Severity: eventbus.SeverityInfo,
		Message:  "ingest orders",
	})
	fmt.Println("err:", err)
	// Output:
	// adw-7 workflow_started: ingest orders
	// err: <nil>
}

func ExampleDefault() {
	bus := eventbus.Default() // shared by the whole process; never closed
	id, err := bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("default bus got", e.Type)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Unsubscribe(id)

	if err := bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.StepStarted}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// default bus got step_started
}

// A service sets its configured bus as the default at start, so that
// packages that only call Default use it.
func ExampleSetDefault() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()
	prev := eventbus.Default()
	eventbus.SetDefault(bus)
	defer eventbus.SetDefault(prev)

	_, _ = eventbus.Default().Subscribe(func(e eventbus.Event) error {
		fmt.Println("inline:", e.Type)
		return nil
	})
	_ = eventbus.Default().Publish(context.Background(), eventbus.Event{Type: eventbus.ToolCalled})
	// Output:
	// inline: tool_called
}

// NewEvent gives an event its ID before it is published, to log it or to
// return it to a caller.
func ExampleNewEvent() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()
	var got uuid.UUID
	_, _ = bus.Subscribe(func(e eventbus.Event) error { got = e.ID; return nil })

	e := eventbus.NewEvent(eventbus.StepStarted, "adw-7")
	e.Message = "load"
	_ = bus.Publish(context.Background(), e)
	fmt.Println("same ID:", got == e.ID, "severity:", e.Severity)
	// Output:
	// same ID: true severity: INFO
}

// An event as a Python service writes it decodes to the same Event: a
// naive timestamp is UTC, an enum name is the built-in type, a null
// severity is INFO.
func ExampleEvent_UnmarshalJSON() {
	doc := `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "WORKFLOW_STARTED",
		"severity": null, "message": "started", "timestamp": "2026-12-04 21:52:15.123456"}`
	var e eventbus.Event
	if err := json.Unmarshal([]byte(doc), &e); err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Type, e.Severity, e.Timestamp)
	out, _ := json.Marshal(e)
	fmt.Println(string(out))
	// Output:
	// workflow_started INFO 2026-12-04 21:52:15.123456 +0000 UTC
	// {"id":"6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11","adw_id":"wf-001","event_type":"workflow_started","source":"","severity":"INFO","message":"started","timestamp":"2026-12-04T21:52:15.123456000Z"}
}

func ExampleEventType_Canonical() {
	fmt.Println(eventbus.EventType("WORKFLOW_STARTED").Canonical() == eventbus.WorkflowStarted)
	fmt.Println(eventbus.EventType("order_placed").Canonical())
	// Output:
	// true
	// order_placed
}

func ExampleParseTimestamp() {
	for _, s := range []string{"2026-12-04T23:52:15.5+02:00", "2026-12-04 21:52:15.5"} {
		t, err := eventbus.ParseTimestamp(s)
		fmt.Println(t.UTC(), err)
	}
	// Output:
	// 2026-12-04 21:52:15.5 +0000 UTC <nil>
	// 2026-12-04 21:52:15.5 +0000 UTC <nil>
}

func ExampleBus_Subscribe() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	id, err := bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("step:", e.Message)
		return nil
	}, eventbus.WithName("timeline"), eventbus.Filter{
		Types: []eventbus.EventType{eventbus.StepStarted, eventbus.StepCompleted},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("subscribed", id)

	ctx := context.Background()
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkflowStarted, Message: "not a step"})
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted, Message: "extract"})
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepCompleted, Message: "extract"})
	// Output:
	// subscribed sub-1
	// step: extract
	// step: extract
}

func ExampleBus_SubscribeAsync() {
	bus := eventbus.New()
	defer bus.Close()

	_, err := bus.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
		// Runs in a goroutine of its own; ctx ends if Shutdown gives up.
		select {
		case <-ctx.Done():
			return ctx.Err()
		default:
			fmt.Println("archived", e.ADWID)
			return nil
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := bus.Publish(context.Background(), eventbus.Event{Type: eventbus.WorkflowCompleted, ADWID: "adw-1"}); err != nil {
		log.Fatal(err)
	}
	if err := bus.Drain(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// archived adw-1
}

// A ContextHandler gets the publisher's values, a trace id here, and
// notices Shutdown's deadline, on the worker pool.
func ExampleBus_SubscribeContext() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	type traceID struct{}
	_, _ = bus.SubscribeContext(func(ctx context.Context, e eventbus.Event) error {
		fmt.Println("query warehouse for", e.ADWID, "in trace", ctx.Value(traceID{}))
		return nil
	})
	ctx := context.WithValue(context.Background(), traceID{}, "4bf92f35")
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted, ADWID: "adw-7"})
	// Output:
	// query warehouse for adw-7 in trace 4bf92f35
}

// An archive that must not be cut short by the request that published:
// Detached keeps the caller's values but not its deadline.
func ExampleDetached() {
	bus := eventbus.New()
	defer bus.Close()

	release, archived := make(chan struct{}), make(chan error, 1)
	_, _ = bus.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
		<-release // slower than the request's 10ms
		archived <- ctx.Err()
		return nil
	}, eventbus.Detached(), eventbus.WithName("archive"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.WorkflowCompleted, ADWID: "adw-7"})
	fmt.Println(err)
	close(release) // the request is over
	fmt.Println("archive ctx:", <-archived)
	// Output:
	// context deadline exceeded
	// eventbus: 1 handler run not finished: "archive" (sub-1) (async)
	// archive ctx: <nil>
}

// HandlerErrors lists the failed runs in what PublishAndWait returned.
func ExampleHandlerErrors() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	_, _ = bus.Subscribe(func(eventbus.Event) error { return errors.New("disk full") }, eventbus.WithName("archive"))
	_, _ = bus.Subscribe(func(eventbus.Event) error { panic("nil map") }, eventbus.WithName("index"))
	err := bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.StepCompleted, ADWID: "adw-7"})
	for _, he := range eventbus.HandlerErrors(err) {
		fmt.Printf("%s (%s) panicked=%v: %v\n", he.Name, he.SubscriptionID, he.Panic != nil, he.Err)
	}
	// Output:
	// archive (sub-1) panicked=false: disk full
	// index (sub-2) panicked=true: panic: nil map
}

// A PendingError names the runs a timed-out PublishAndWait left going.
func ExamplePendingError() {
	bus := eventbus.New()
	defer bus.Close()

	release := make(chan struct{})
	defer close(release)
	_, _ = bus.Subscribe(func(eventbus.Event) error { <-release; return nil }, eventbus.WithName("loader"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := bus.PublishAndWait(ctx, eventbus.Event{Type: eventbus.StepStarted})
	var pending *eventbus.PendingError
	if errors.As(err, &pending) {
		for _, r := range pending.Runs {
			fmt.Println("still running:", r.Name, r.SubscriptionID, "async:", r.Async)
		}
	}
	// Output:
	// still running: loader sub-1 async: false
}

func ExampleFilter() {
	alerts := eventbus.Filter{
		Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical},
		Match:      func(e eventbus.Event) bool { return e.Source != "healthcheck" },
	}
	for _, e := range []eventbus.Event{
		{Type: eventbus.StepFailed, Severity: eventbus.SeverityError, Source: "loader"},
		{Type: eventbus.StepFailed, Severity: eventbus.SeverityError, Source: "healthcheck"},
		{Type: eventbus.StepCompleted, Severity: eventbus.SeverityInfo, Source: "loader"},
	} {
		fmt.Println(e.Source, e.Severity, alerts.Matches(e))
	}
	fmt.Println(alerts)
	// Output:
	// loader ERROR true
	// healthcheck ERROR false
	// loader INFO false
	// severities=[ERROR CRITICAL] match=func
}

func ExampleBus_Publish() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	fmt.Println(bus.Publish(context.Background(), eventbus.Event{Message: "no type"}))
	fmt.Println(bus.Publish(context.Background(), eventbus.Event{Type: eventbus.ToolCalled}))
	// Output:
	// eventbus: invalid event: empty Type
	// <nil>
}

func ExampleBus_PublishAndWait() {
	bus := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()

	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("handled", e.Type)
		return nil
	})
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		return errors.New("warehouse unreachable")
	}, eventbus.WithName("loader"))

	err := bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.StepStarted})
	var he *eventbus.HandlerError
	if errors.As(err, &he) {
		fmt.Println("failed:", he.SubscriptionID, he.Err)
	}
	// Output:
	// handled step_started
	// failed: sub-2 warehouse unreachable
}

func ExampleBus_Drain() {
	bus := eventbus.New(eventbus.WithMaxWorkers(2))
	defer bus.Close()

	var mu sync.Mutex
	var done []string
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, e.Message)
		return nil
	})
	for _, step := range []string{"extract", "transform", "load"} {
		_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepCompleted, Message: step})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bus.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	slices.Sort(done) // the pool runs them in any order
	fmt.Println(done)
	// Output:
	// [extract load transform]
}

func ExampleBus_Close() {
	bus := eventbus.New(eventbus.WithMaxWorkers(1))
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("finished", e.Message)
		return nil
	})
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepCompleted, Message: "queued before Close"})

	fmt.Println(bus.Close()) // waits for the queued event
	fmt.Println(bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepCompleted}))
	fmt.Println(bus.Close())
	// Output:
	// finished queued before Close
	// <nil>
	// eventbus: bus closed
	// <nil>
}

func ExampleWithMaxWorkers() {
	// With no workers, Publish runs sync handlers inline, in subscription
	// order, before it returns: deterministic, handy in tests.
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	for _, name := range []string{"first", "second", "third"} {
		_, _ = bus.Subscribe(func(eventbus.Event) error {
			fmt.Println(name)
			return nil
		})
	}
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.AgentMessage})
	fmt.Println("Publish returned")
	// Output:
	// first
	// second
	// third
	// Publish returned
}

func ExampleOnce() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("first failure:", e.Message)
		return nil
	}, eventbus.Once(), eventbus.Filter{Types: []eventbus.EventType{eventbus.StepFailed}})

	for _, m := range []string{"timeout", "schema mismatch"} {
		_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepFailed, Message: m})
	}
	fmt.Println("subscribers left:", bus.Metrics().Subscribers)
	// Output:
	// first failure: timeout
	// subscribers left: 0
}

func ExampleWithQueueLimit() {
	bus := eventbus.New(eventbus.WithMaxWorkers(1), eventbus.WithQueueLimit(1, eventbus.OverflowReject))
	defer bus.Close()

	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, _ = bus.Subscribe(func(eventbus.Event) error {
		started <- struct{}{}
		<-release
		return nil
	})
	ctx := context.Background()
	e := eventbus.Event{Type: eventbus.ToolCalled}
	fmt.Println(bus.Publish(ctx, e)) // the worker takes it
	<-started
	fmt.Println(bus.Publish(ctx, e)) // waits in the queue
	fmt.Println(bus.Publish(ctx, e)) // no room
	close(release)
	_ = bus.Drain(ctx)
	fmt.Println("rejected:", bus.Metrics().Rejected)
	// Output:
	// <nil>
	// <nil>
	// eventbus: queue full
	// rejected: 1
}

func ExampleWithLogger() {
	// Every handler run is logged: Debug on success, Error on failure. Time
	// and duration are dropped here to keep the output stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "event_id":
				return slog.Attr{}
			}
			return a
		},
	}))
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithLogger(logger))
	defer bus.Close()

	_, _ = bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("timeline"))
	_, _ = bus.Subscribe(func(eventbus.Event) error { return errors.New("disk full") })
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepCompleted, ADWID: "adw-3"})
	// Output:
	// level=DEBUG msg="handler finished" subscription_id=sub-1 subscription_name=timeline event_type=step_completed adw_id=adw-3
	// level=ERROR msg="handler failed" subscription_id=sub-2 event_type=step_completed adw_id=adw-3 error="eventbus: handler sub-2 on step_completed for adw-3: disk full"
}

func ExampleBus_Metrics() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()

	_, _ = bus.Subscribe(func(eventbus.Event) error { return nil })
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		if e.Severity == eventbus.SeverityCritical {
			panic("unexpected state")
		}
		return nil
	})
	ctx := context.Background()
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepCompleted})
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepFailed, Severity: eventbus.SeverityCritical})

	m := bus.Metrics()
	fmt.Printf("published=%d delivered=%d failed=%d panics=%d\n", m.Published, m.Delivered, m.Failed, m.Panics)
	// Output:
	// published=2 delivered=3 failed=1 panics=1
}

func ExampleSeverity_MarshalText() {
	text, _ := eventbus.SeverityWarning.MarshalText()
	fmt.Println(string(text))

	var s eventbus.Severity
	fmt.Println(s.UnmarshalText([]byte("critical")), s)
	fmt.Println(s.UnmarshalText([]byte("LOUD")))
	// Output:
	// WARNING
	// <nil> CRITICAL
	// eventbus: invalid event: unknown severity "LOUD"
}

func ExampleOrdered() {
	bus := eventbus.New(eventbus.WithMaxWorkers(4))
	defer bus.Close()

	// Without Ordered, the four workers could run these steps in any order.
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println(e.ADWID, e.Message)
		return nil
	}, eventbus.Ordered())

	ctx := context.Background()
	for _, step := range []string{"extract", "transform", "load"} {
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepCompleted, ADWID: "adw-1", Message: step})
	}
	_ = bus.Drain(ctx)
	// Output:
	// adw-1 extract
	// adw-1 transform
	// adw-1 load
}

func ExampleOrderedBy() {
	bus := eventbus.New(eventbus.WithMaxWorkers(4))
	defer bus.Close()

	// One agent's tool calls in order, whatever workflow they belong to.
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println(e.Source, e.Message)
		return nil
	}, eventbus.OrderedBy(func(e eventbus.Event) string { return e.Source }),
		eventbus.Filter{Sources: []string{"coder-agent"}})

	ctx := context.Background()
	for i, tool := range []string{"git.clone", "python.run", "git.push"} {
		adw := fmt.Sprintf("adw-%d", i)
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.ToolCalled, ADWID: adw, Source: "coder-agent", Message: tool})
	}
	_ = bus.Drain(ctx)
	// Output:
	// coder-agent git.clone
	// coder-agent python.run
	// coder-agent git.push
}

func ExampleWithSlowHandlerThreshold() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "elapsed", "event_id":
				return slog.Attr{}
			}
			return a
		},
	}))
	bus := eventbus.New(eventbus.WithLogger(logger), eventbus.WithSlowHandlerThreshold(10*time.Millisecond))
	defer bus.Close()

	_, _ = bus.Subscribe(func(eventbus.Event) error {
		time.Sleep(300 * time.Millisecond) // a warehouse that is slow today
		return nil
	}, eventbus.WithName("loader"))
	_ = bus.PublishAndWait(context.Background(), eventbus.Event{Type: eventbus.StepStarted, ADWID: "adw-9"})
	fmt.Println("slow runs:", bus.Metrics().Slow)
	// Output:
	// level=WARN msg="handler slow" subscription_id=sub-1 subscription_name=loader event_type=step_started adw_id=adw-9 threshold=10ms
	// slow runs: 1
}

func ExampleBus_Unsubscribe() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0))
	defer bus.Close()

	id, _ := bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("got", e.Message)
		return nil
	})
	ctx := context.Background()
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted, Message: "before"})
	fmt.Println(bus.Unsubscribe(id))
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted, Message: "after"})
	fmt.Println(bus.Unsubscribe(id)) // already gone
	// Output:
	// got before
	// true
	// false
}

func ExampleBus_Shutdown() {
	bus := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	started := make(chan struct{})
	_, _ = bus.SubscribeAsync(func(ctx context.Context, _ eventbus.Event) error {
		close(started)
		<-ctx.Done() // a handler that stops only when told to
		return ctx.Err()
	})
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.WorkflowStarted})
	<-started

	// Shutdown waits for running handlers until its ctx ends; then it
	// cancels the async handlers' ctx and returns the ctx's error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(bus.Shutdown(ctx))
	fmt.Println(bus.Close()) // waits for the cancelled handler to return
	fmt.Println(bus.Metrics().Failed)
	// Output:
	// context deadline exceeded
	// <nil>
	// 1
}

func ExampleBus_Subscriptions() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	defer bus.Close()

	_, _ = bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("timeline"))
	_, _ = bus.Subscribe(func(eventbus.Event) error { return errors.New("webhook down") },
		eventbus.WithName("webhook"), eventbus.Filter{Types: []eventbus.EventType{eventbus.WorkflowFailed}})
	ctx := context.Background()
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkflowStarted})
	_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.WorkflowFailed})

	for _, s := range bus.Subscriptions() {
		fmt.Printf("%s %s filter=%q delivered=%d failed=%d\n", s.ID, s.Name, s.Filter, s.Delivered, s.Failed)
	}
	// Output:
	// sub-1 timeline filter="all" delivered=2 failed=0
	// sub-2 webhook filter="types=[workflow_failed]" delivered=0 failed=1
}

// countingObserver counts runs per subscription name; an Observer must be
// safe for concurrent use.
type countingObserver struct {
	mu   sync.Mutex
	runs map[string]int
}

func (o *countingObserver) Published(context.Context, eventbus.PublishInfo) {}

func (o *countingObserver) HandlerDone(_ context.Context, r eventbus.RunInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs[r.Name]++
}

func ExampleWithObserver() {
	obs := &countingObserver{runs: map[string]int{}}
	bus := eventbus.New(eventbus.WithObserver(obs))
	_, _ = bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("timeline"))
	_, _ = bus.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil }, eventbus.WithName("archive"))
	for range 3 {
		_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepCompleted})
	}
	_ = bus.Close() // every run has been observed once Close returns

	fmt.Println(obs.runs)
	// Output:
	// map[archive:3 timeline:3]
}

// runIDs is an Observer that is also a RunStarter: it gives every run a
// ctx with an id of its own, as a tracer gives it a span.
type runIDs struct{ next int }

type runIDKey struct{}

func (o *runIDs) HandlerStart(ctx context.Context, r eventbus.RunInfo) context.Context {
	o.next++ // WithMaxWorkers(0): one run at a time
	return context.WithValue(ctx, runIDKey{}, fmt.Sprintf("run-%d", o.next))
}

func (o *runIDs) Published(context.Context, eventbus.PublishInfo) {}

func (o *runIDs) HandlerDone(ctx context.Context, r eventbus.RunInfo) {
	fmt.Println("done:", ctx.Value(runIDKey{}), r.Name)
}

func ExampleRunStarter() {
	bus := eventbus.New(eventbus.WithMaxWorkers(0), eventbus.WithObserver(&runIDs{}))
	defer bus.Close()
	_, _ = bus.SubscribeContext(func(ctx context.Context, e eventbus.Event) error {
		fmt.Println("handler sees:", ctx.Value(runIDKey{}))
		return nil
	}, eventbus.WithName("indexer"))
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepCompleted})
	// Output:
	// handler sees: run-1
	// done: run-1 indexer
}

func ExampleWithMaxAsync() {
	// At most 2 async runs at once: the others wait for one of the 2
	// goroutines, counted in Metrics.Queued.
	bus := eventbus.New(eventbus.WithMaxAsync(2))
	started, release := make(chan struct{}, 5), make(chan struct{})
	_, _ = bus.SubscribeAsync(func(context.Context, eventbus.Event) error {
		started <- struct{}{}
		<-release
		return nil
	})
	for range 5 {
		_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.ToolCalled})
	}
	<-started
	<-started // both goroutines are busy
	fmt.Println("waiting:", bus.Metrics().Queued)
	close(release)
	_ = bus.Close()
	fmt.Println("delivered:", bus.Metrics().Delivered)
	// Output:
	// waiting: 3
	// delivered: 5
}

func ExampleEvent_Validate() {
	fmt.Println(eventbus.Event{Type: eventbus.StepStarted}.Validate())
	fmt.Println(eventbus.Event{}.Validate())
	fmt.Println(eventbus.Event{Type: eventbus.StepStarted, Severity: 42}.Validate())
	// Output:
	// <nil>
	// eventbus: invalid event: empty Type
	// eventbus: invalid event: unknown severity 42
}
