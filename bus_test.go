package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/eventbustest"
)

func TestSeverityText(t *testing.T) {
	for _, tt := range []struct {
		s    eventbus.Severity
		text string
	}{
		{eventbus.SeverityDebug, "DEBUG"},
		{eventbus.SeverityInfo, "INFO"},
		{eventbus.SeverityWarning, "WARNING"},
		{eventbus.SeverityError, "ERROR"},
		{eventbus.SeverityCritical, "CRITICAL"},
	} {
		t.Run(tt.text, func(t *testing.T) {
			assert.Equal(t, tt.text, tt.s.String())
			got, err := tt.s.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, tt.text, string(got))
			var back eventbus.Severity = -1
			require.NoError(t, back.UnmarshalText([]byte(strings.ToLower(tt.text))))
			assert.Equal(t, tt.s, back, "UnmarshalText is case-insensitive")
		})
	}
}

func TestSeverityTextInvalid(t *testing.T) {
	assert.Equal(t, "Severity(9)", eventbus.Severity(9).String())
	_, err := eventbus.Severity(9).MarshalText()
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)

	s := eventbus.SeverityError
	err = s.UnmarshalText([]byte("LOUD"))
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
	assert.ErrorContains(t, err, `"LOUD"`)
	assert.Equal(t, eventbus.SeverityError, s, "a failed UnmarshalText leaves the value alone")

	require.NoError(t, s.UnmarshalText([]byte("warn")))
	assert.Equal(t, eventbus.SeverityWarning, s)
}

func TestEventJSON(t *testing.T) {
	e := eventbus.Event{
		ID:        uuid.MustParse("6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11"),
		ADWID:     "adw-42",
		Type:      eventbus.StepFailed,
		Source:    "planner",
		Severity:  eventbus.SeverityError,
		Message:   "step 3 failed",
		Timestamp: time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
		Data:      map[string]any{"step": "load"},
	}
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11",
		"adw_id": "adw-42",
		"event_type": "step_failed",
		"source": "planner",
		"severity": "ERROR",
		"message": "step 3 failed",
		"timestamp": "2026-11-26T09:30:00.000000000Z",
		"data": {"step": "load"}
	}`, string(raw))

	var back eventbus.Event
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, e, back)

	err = json.Unmarshal([]byte(`{"event_type":"x","severity":"NOISY"}`), &back)
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
}

func TestEventValidate(t *testing.T) {
	assert.NoError(t, eventbus.Event{Type: eventbus.WorkflowStarted}.Validate())
	err := eventbus.Event{}.Validate()
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
	assert.ErrorContains(t, err, "empty Type")
	err = eventbus.Event{Type: "x", Severity: 5}.Validate()
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
	assert.ErrorContains(t, err, "severity")
}

func TestFilterMatches(t *testing.T) {
	e := eventbus.Event{Type: eventbus.StepFailed, Severity: eventbus.SeverityError, ADWID: "adw-1", Source: "planner"}
	for _, tt := range []struct {
		name string
		f    eventbus.Filter
		want bool
	}{
		{"zero filter matches all", eventbus.Filter{}, true},
		{"type listed", eventbus.Filter{Types: []eventbus.EventType{eventbus.StepStarted, eventbus.StepFailed}}, true},
		{"type not listed", eventbus.Filter{Types: []eventbus.EventType{eventbus.StepStarted}}, false},
		{"severity listed", eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError}}, true},
		{"severity not listed", eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityCritical}}, false},
		{"adw id listed", eventbus.Filter{ADWIDs: []string{"adw-1"}}, true},
		{"adw id not listed", eventbus.Filter{ADWIDs: []string{"adw-2"}}, false},
		{"source listed", eventbus.Filter{Sources: []string{"planner"}}, true},
		{"source not listed", eventbus.Filter{Sources: []string{"loader"}}, false},
		{"match true", eventbus.Filter{Match: func(eventbus.Event) bool { return true }}, true},
		{"match false", eventbus.Filter{Match: func(eventbus.Event) bool { return false }}, false},
		{"every set field must match", eventbus.Filter{
			Types:   []eventbus.EventType{eventbus.StepFailed},
			Sources: []string{"loader"},
		}, false},
		{"all fields match", eventbus.Filter{
			Types:      []eventbus.EventType{eventbus.StepFailed},
			Severities: []eventbus.Severity{eventbus.SeverityError},
			ADWIDs:     []string{"adw-1"},
			Sources:    []string{"planner"},
			Match:      func(e eventbus.Event) bool { return e.Message == "" },
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Matches(e); got != tt.want {
				t.Errorf("Matches() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterString(t *testing.T) {
	assert.Equal(t, "all", eventbus.Filter{}.String())
	assert.Equal(t, "types=[workflow_failed step_failed] severities=[ERROR CRITICAL] match=func", eventbus.Filter{
		Types:      []eventbus.EventType{eventbus.WorkflowFailed, eventbus.StepFailed},
		Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical},
		Match:      func(eventbus.Event) bool { return true },
	}.String())
	assert.Equal(t, "adw_ids=[a] sources=[s]", eventbus.Filter{ADWIDs: []string{"a"}, Sources: []string{"s"}}.String())
}

func TestSubscribeFilter(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	types := []eventbus.EventType{eventbus.WorkflowFailed}
	rec := eventbustest.NewRecorder(t, b, eventbus.Filter{Types: types})
	types[0] = eventbus.WorkflowStarted // Subscribe copied the slice

	for _, typ := range []eventbus.EventType{eventbus.WorkflowStarted, eventbus.WorkflowFailed, eventbus.StepFailed} {
		require.NoError(t, b.Publish(context.Background(), ev(typ)))
	}
	assert.Equal(t, []eventbus.EventType{eventbus.WorkflowFailed}, rec.Types())
}

func TestSubscribeSeveralFiltersAllMustMatch(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	rec := eventbustest.NewRecorder(t, b,
		eventbus.Filter{Types: []eventbus.EventType{eventbus.StepFailed}}, eventbus.Filter{ADWIDs: []string{"b"}})
	for _, id := range []string{"a", "b"} {
		e := ev(eventbus.StepFailed)
		e.ADWID = id
		require.NoError(t, b.Publish(context.Background(), e))
	}
	require.Equal(t, 1, rec.Len())
	assert.Equal(t, "b", rec.Events()[0].ADWID)
}

func TestPublishFillsIDAndTimestamp(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	rec := eventbustest.NewRecorder(t, b)

	before := time.Now()
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.WorkflowStarted)))
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.WorkflowStarted)))
	given := ev(eventbus.WorkflowCompleted)
	given.ID = uuid.New()
	given.Timestamp = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, b.Publish(context.Background(), given))

	got := rec.Events()
	require.Len(t, got, 3)
	for _, e := range got[:2] {
		assert.NotEqual(t, uuid.Nil, e.ID)
		assert.Equal(t, uuid.Version(4), e.ID.Version())
		assert.Equal(t, uuid.RFC4122, e.ID.Variant())
		assert.False(t, e.Timestamp.Before(before))
		assert.True(t, e.Timestamp == e.Timestamp.Round(0), "a stamped Timestamp carries no monotonic reading")
	}
	assert.NotEqual(t, got[0].ID, got[1].ID)
	assert.Equal(t, given.ID, got[2].ID, "a given ID is kept")
	assert.True(t, given.Timestamp.Equal(got[2].Timestamp), "a given Timestamp is kept")
}

func TestOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 4} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(workers))
			var mu sync.Mutex
			var got []string
			_, err := b.Subscribe(func(e eventbus.Event) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, e.Message)
				return nil
			}, eventbus.Once(), eventbus.Filter{Types: []eventbus.EventType{eventbus.StepCompleted}})
			require.NoError(t, err)
			require.Equal(t, 1, b.Metrics().Subscribers)

			require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
			assert.Equal(t, 1, b.Metrics().Subscribers, "a non-matching event does not use up Once")
			for _, msg := range []string{"first", "second", "third"} {
				e := ev(eventbus.StepCompleted)
				e.Message = msg
				require.NoError(t, b.Publish(context.Background(), e))
			}
			drain(t, b)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{"first"}, got)
			assert.Equal(t, 0, b.Metrics().Subscribers)
		})
	}
}

// Publishers that all match a Once subscription at the same moment still
// deliver it one event: its filter holds each of them until all have
// matched, so they all race to claim it.
func TestOnceConcurrentPublishers(t *testing.T) {
	const publishers = 8
	b := newBus(t)
	var runs atomic.Int64
	var matched atomic.Int64
	all := make(chan struct{})
	_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error {
		runs.Add(1)
		return nil
	}, eventbus.Once(), eventbus.Filter{Match: func(eventbus.Event) bool {
		if matched.Add(1) == publishers {
			close(all)
		}
		<-all
		return true
	}})
	require.NoError(t, err)
	within(t, func() {
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				for range 50 {
					assert.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
				}
			})
		}
		wg.Wait()
		drain(t, b)
	})
	assert.Equal(t, int64(1), runs.Load())
	assert.GreaterOrEqual(t, matched.Load(), int64(publishers))
}

func TestSubscribeErrors(t *testing.T) {
	b := newBus(t)
	_, err := b.Subscribe(nil)
	assert.ErrorIs(t, err, eventbus.ErrNilHandler)
	_, err = b.SubscribeAsync(nil)
	assert.ErrorIs(t, err, eventbus.ErrNilHandler)
	assert.Equal(t, 0, b.Metrics().Subscribers)

	id1, err := b.Subscribe(func(eventbus.Event) error { return nil }, nil)
	require.NoError(t, err, "nil options are ignored")
	id2, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, eventbus.SubscriptionID("sub-1"), id1)
	assert.Equal(t, eventbus.SubscriptionID("sub-2"), id2)
}

func TestUnsubscribe(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	n := 0
	id, err := b.Subscribe(func(eventbus.Event) error { n++; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	assert.True(t, b.Unsubscribe(id))
	require.NoError(t, b.Publish(context.Background(), ev(eventbus.StepStarted)))
	assert.Equal(t, 1, n, "no event published after Unsubscribe returns reaches the handler")
	assert.False(t, b.Unsubscribe(id), "second Unsubscribe")
	assert.False(t, b.Unsubscribe("sub-999"), "unknown id")
	assert.Equal(t, 0, b.Metrics().Subscribers)
}

func TestPublishInvalid(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	called := false
	_, err := b.Subscribe(func(eventbus.Event) error { called = true; return nil })
	require.NoError(t, err)

	for _, publish := range []func(context.Context, eventbus.Event) error{b.Publish, b.PublishAndWait} {
		err = publish(context.Background(), eventbus.Event{})
		assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
		assert.ErrorContains(t, err, "empty Type")
		err = publish(context.Background(), eventbus.Event{Type: "x", Severity: 42})
		assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
		//lint:ignore SA1012 a nil ctx is the case under test
		err = publish(nil, ev(eventbus.StepStarted)) //nolint:staticcheck
		assert.ErrorIs(t, err, eventbus.ErrNilContext)
	}
	assert.False(t, called)
	assert.Zero(t, b.Metrics().Published)
	//lint:ignore SA1012 a nil ctx is the case under test
	assert.ErrorIs(t, b.Drain(nil), eventbus.ErrNilContext) //nolint:staticcheck
	//lint:ignore SA1012 a nil ctx is the case under test
	assert.ErrorIs(t, b.Shutdown(nil), eventbus.ErrNilContext) //nolint:staticcheck
}

func TestPublishDoneContext(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	called := false
	_, err := b.Subscribe(func(eventbus.Event) error { called = true; return nil })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, b.Publish(ctx, ev(eventbus.StepStarted)), context.Canceled)
	assert.ErrorIs(t, b.PublishAndWait(ctx, ev(eventbus.StepStarted)), context.Canceled)
	assert.False(t, called)
	assert.Zero(t, b.Metrics().Published)
}

func TestOptionPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"negative workers", func() { eventbus.WithMaxWorkers(-1) }, "eventbus: WithMaxWorkers: negative worker count"},
		{"zero queue limit", func() { eventbus.WithQueueLimit(0, eventbus.OverflowBlock) }, "eventbus: WithQueueLimit: limit must be at least 1"},
		{"unknown policy", func() { eventbus.WithQueueLimit(1, 7) }, "eventbus: WithQueueLimit: unknown overflow policy"},
		{"nil logger", func() { eventbus.WithLogger(nil) }, "eventbus: WithLogger: nil logger"},
		{"zero async limit", func() { eventbus.WithMaxAsync(0) }, "eventbus: WithMaxAsync: limit must be at least 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.msg, tt.f)
		})
	}
}

func TestMaxWorkers(t *testing.T) {
	assert.Equal(t, 10, newBus(t).MaxWorkers())
	assert.Equal(t, 0, newBus(t, eventbus.WithMaxWorkers(0)).MaxWorkers())
	assert.Equal(t, 3, newBus(t, eventbus.WithMaxWorkers(3)).MaxWorkers())
}

func TestDefault(t *testing.T) {
	// Default is never closed, so this test only compares pointers: it must
	// not start the default bus's workers.
	got := make([]*eventbus.Bus, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = eventbus.Default() })
	}
	wg.Wait()
	require.NotNil(t, got[0])
	for _, b := range got {
		assert.Same(t, got[0], b)
	}
	assert.Equal(t, 10, got[0].MaxWorkers())
}

// SetDefault replaces the bus Default returns, and refuses nil.
func TestSetDefault(t *testing.T) {
	prev := eventbus.Default()
	t.Cleanup(func() { eventbus.SetDefault(prev) })
	b := newBus(t, eventbus.WithMaxWorkers(0))
	eventbus.SetDefault(b)
	assert.Same(t, b, eventbus.Default())
	assert.PanicsWithValue(t, "eventbus: SetDefault: nil bus", func() { eventbus.SetDefault(nil) })
	assert.Same(t, b, eventbus.Default())
}

// PublishAndWait joins one *HandlerError per failed run, whether the runs
// were inline, on the pool or async, and the other handlers still run.
func TestHandlerErrors(t *testing.T) {
	for _, tc := range []struct {
		workers int
		async   bool
	}{{0, false}, {0, true}, {2, false}, {2, true}} {
		t.Run(fmt.Sprintf("workers=%d/async=%v", tc.workers, tc.async), func(t *testing.T) {
			rec := &logRecorder{level: slog.LevelDebug}
			b := newBus(t, eventbus.WithMaxWorkers(tc.workers), eventbus.WithLogger(slog.New(rec)))
			errBoom := errors.New("boom")
			var mu sync.Mutex
			ran := map[string]bool{}
			mark := func(name string) {
				mu.Lock()
				ran[name] = true
				mu.Unlock()
			}
			ok, _ := b.Subscribe(func(eventbus.Event) error { mark("ok"); return nil }, eventbus.WithName("ok"))
			fails, _ := b.Subscribe(func(eventbus.Event) error { mark("fails"); return errBoom })
			panicsString, _ := b.Subscribe(func(eventbus.Event) error { mark("panics-string"); panic("kaboom") })
			panicsErr, _ := b.Subscribe(func(eventbus.Event) error { mark("panics-error"); panic(io.ErrUnexpectedEOF) })
			want := map[string]bool{"ok": true, "fails": true, "panics-string": true, "panics-error": true, "after": true}
			var asyncFails eventbus.SubscriptionID
			if tc.async {
				asyncFails, _ = b.SubscribeAsync(func(context.Context, eventbus.Event) error { mark("async"); return errBoom })
				want["async"] = true
			}
			after, _ := b.Subscribe(func(eventbus.Event) error { mark("after"); return nil })

			err := b.PublishAndWait(context.Background(), ev(eventbus.StepFailed))
			require.Error(t, err)
			assert.Equal(t, want, ran, "a failing or panicking handler does not stop the others")

			byID := map[eventbus.SubscriptionID]*eventbus.HandlerError{}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var he *eventbus.HandlerError
				require.ErrorAs(t, e, &he)
				assert.Equal(t, eventbus.StepFailed, he.EventType)
				byID[he.SubscriptionID] = he
			}
			failures := []string{string(fails), string(panicsString), string(panicsErr)}
			if tc.async {
				failures = append(failures, string(asyncFails))
				assert.ErrorIs(t, byID[asyncFails], errBoom)
			}
			require.Len(t, byID, len(failures))
			assert.NotContains(t, byID, ok)
			assert.NotContains(t, byID, after)
			assert.ErrorIs(t, byID[fails], errBoom)
			assert.Nil(t, byID[fails].Panic)
			assert.Equal(t, "kaboom", byID[panicsString].Panic)
			assert.ErrorContains(t, byID[panicsString], "panic: kaboom")
			assert.NotEmpty(t, byID[panicsString].Stack)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "a panic with an error unwraps to it")
			assert.Equal(t, io.ErrUnexpectedEOF, byID[panicsErr].Panic)
			assert.Equal(t, "eventbus: handler "+string(fails)+" on step_failed for adw-1: boom", byID[fails].Error())

			m := b.Metrics()
			assert.Equal(t, uint64(1), m.Published)
			assert.Equal(t, uint64(2), m.Delivered)
			assert.Equal(t, uint64(len(failures)), m.Failed)
			assert.Equal(t, uint64(2), m.Panics)

			// Each failure is logged once, at Error, with its duration.
			var errorsLogged []string
			for _, r := range rec.records() {
				a := attrs(r)
				assert.Contains(t, a, "duration")
				if r.Level == slog.LevelError {
					errorsLogged = append(errorsLogged, a["subscription_id"].String())
				}
			}
			assert.ElementsMatch(t, failures, errorsLogged)
		})
	}
}

func TestLogging(t *testing.T) {
	rec := &logRecorder{level: slog.LevelDebug}
	b := newBus(t, eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(rec)))
	okID, _ := b.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("timeline"))
	badID, _ := b.Subscribe(func(eventbus.Event) error { return errors.New("nope") })
	e := ev(eventbus.StepCompleted)
	e.ID = uuid.New()
	require.Error(t, b.PublishAndWait(context.Background(), e))

	recs := rec.records()
	require.Len(t, recs, 2)
	ok, bad := attrs(recs[0]), attrs(recs[1])
	assert.Equal(t, slog.LevelDebug, recs[0].Level)
	assert.Equal(t, "handler finished", recs[0].Message)
	assert.Equal(t, string(okID), ok["subscription_id"].String())
	assert.Equal(t, "timeline", ok["subscription_name"].String())
	assert.Equal(t, "step_completed", ok["event_type"].String())
	assert.Equal(t, e.ID.String(), ok["event_id"].String())
	assert.Equal(t, "adw-1", ok["adw_id"].String())
	assert.Equal(t, slog.KindDuration, ok["duration"].Kind())

	assert.Equal(t, slog.LevelError, recs[1].Level)
	assert.Equal(t, "handler failed", recs[1].Message)
	assert.Equal(t, string(badID), bad["subscription_id"].String())
	assert.NotContains(t, bad, "subscription_name")
	assert.Contains(t, bad["error"].String(), "nope")
	assert.Equal(t, slog.KindDuration, bad["duration"].Kind())
}

func TestLoggingDisabledLevelFormatsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	// At Info, a successful run is not logged: the inline path must not
	// allocate at all, which it would if it built the Debug record's values.
	rec := &logRecorder{level: slog.LevelInfo}
	b := newBus(t, eventbus.WithMaxWorkers(0), eventbus.WithLogger(slog.New(rec)))
	_, err := b.Subscribe(func(eventbus.Event) error { return nil })
	require.NoError(t, err)
	ctx := context.Background()
	e := ev(eventbus.StepStarted)
	allocs := testing.AllocsPerRun(1000, func() { _ = b.Publish(ctx, e) })
	assert.Zero(t, allocs)
	assert.Empty(t, rec.records())
	assert.Equal(t, uint64(1001), b.Metrics().Delivered)
}

func TestMetricsAddUp(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(3))
	for i := range 6 {
		var h eventbus.Handler
		switch i % 3 {
		case 0:
			h = func(eventbus.Event) error { return nil }
		case 1:
			h = func(eventbus.Event) error { return errors.New("no") }
		case 2:
			h = func(e eventbus.Event) error {
				if e.Severity == eventbus.SeverityCritical {
					panic("critical")
				}
				return nil
			}
		}
		_, err := b.Subscribe(h)
		require.NoError(t, err)
	}
	_, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil })
	require.NoError(t, err)

	const events = 50
	for i := range events {
		e := ev(eventbus.StepStarted)
		if i%5 == 0 {
			e.Severity = eventbus.SeverityCritical
		}
		require.NoError(t, b.Publish(context.Background(), e))
	}
	drain(t, b)
	m := b.Metrics()
	assert.Equal(t, uint64(events), m.Published)
	assert.Equal(t, uint64(events*7), m.Delivered+m.Failed, "every run is Delivered or Failed")
	assert.Equal(t, uint64(events*2+events/5*2), m.Failed)
	assert.Equal(t, uint64(events/5*2), m.Panics, "a panic counts in Failed and in Panics")
	assert.Zero(t, m.Queued)
	assert.Zero(t, m.InFlight)
	assert.Equal(t, 7, m.Subscribers)
}
