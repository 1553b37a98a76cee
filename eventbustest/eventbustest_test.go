package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// fakeT records what New and NewRecorder do with a test.
type fakeT struct {
	mu       sync.Mutex
	cleanups []func()
	logs     []string
	errs     []string
}

func (f *fakeT) Cleanup(fn func()) { f.mu.Lock(); f.cleanups = append(f.cleanups, fn); f.mu.Unlock() }
func (f *fakeT) Helper()           {}
func (f *fakeT) Log(args ...any) {
	f.mu.Lock()
	f.logs = append(f.logs, fmt.Sprint(args...))
	f.mu.Unlock()
}
func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// finish runs the cleanups, last registered first, as testing does.
func (f *fakeT) finish() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestNewLogsToTestAndClosesOnCleanup(t *testing.T) {
	ft := &fakeT{}
	b := New(ft, eventbus.WithMaxWorkers(0))
	_, err := b.Subscribe(func(eventbus.Event) error { return errors.New("boom") }, eventbus.WithName("failing"))
	require.NoError(t, err)
	_ = b.Publish(context.Background(), eventbus.Event{Type: eventbus.StepFailed})
	ft.finish()

	assert.Empty(t, ft.errs)
	require.Len(t, ft.logs, 1)
	assert.Contains(t, ft.logs[0], `msg="handler failed"`)
	assert.Contains(t, ft.logs[0], "subscription_name=failing")
	assert.NotContains(t, ft.logs[0], "\n")
	assert.ErrorIs(t, b.Publish(context.Background(), eventbus.Event{Type: "x"}), eventbus.ErrClosed, "closed by Cleanup")
}

func TestNewFailsTestWhenBusDoesNotShutDown(t *testing.T) {
	defer func(d time.Duration) { closeTimeout = d }(closeTimeout)
	closeTimeout = 10 * time.Millisecond
	ft := &fakeT{}
	b := New(ft)
	release := make(chan struct{})
	_, err := b.Subscribe(func(eventbus.Event) error { <-release; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x"}))
	ft.finish()
	require.Len(t, ft.errs, 1)
	assert.Contains(t, ft.errs[0], "did not shut down")
	close(release)
	require.NoError(t, b.Close())
}

func TestRecorder(t *testing.T) {
	b := New(t)
	steps := NewRecorder(t, b, eventbus.Filter{Types: []eventbus.EventType{eventbus.StepStarted, eventbus.StepCompleted}})
	all := NewRecorder(t, b)
	assert.NotEmpty(t, steps.ID())

	const publishers, each = 4, 50
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for i := range each {
				typ := eventbus.StepStarted
				if i%2 == 1 {
					typ = eventbus.ToolCalled
				}
				assert.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: typ}))
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, steps.WaitFor(ctx, publishers*each/2))
	require.NoError(t, all.WaitFor(ctx, publishers*each))
	wg.Wait()
	assert.Equal(t, publishers*each/2, steps.Len())
	for _, typ := range steps.Types() {
		assert.Equal(t, eventbus.StepStarted, typ)
	}
	assert.Len(t, all.Events(), publishers*each)

	all.Reset()
	assert.Zero(t, all.Len())
}

func TestRecorderKeepsOrderInline(t *testing.T) {
	b := New(t, eventbus.WithMaxWorkers(0))
	rec := NewRecorder(t, b)
	for _, typ := range []eventbus.EventType{eventbus.WorkflowStarted, eventbus.StepStarted, eventbus.WorkflowCompleted} {
		require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: typ}))
	}
	assert.Equal(t, []eventbus.EventType{eventbus.WorkflowStarted, eventbus.StepStarted, eventbus.WorkflowCompleted}, rec.Types())
	events := rec.Events()
	events[0].Type = "changed"
	assert.Equal(t, eventbus.WorkflowStarted, rec.Types()[0], "Events returns a copy")
}

func TestRecorderWaitForTimesOut(t *testing.T) {
	b := New(t)
	rec := NewRecorder(t, b)
	require.NoError(t, b.PublishAndWait(context.Background(), eventbus.Event{Type: "x"}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := rec.WaitFor(ctx, 2)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "recorded 1 of 2 events")
}

func TestRecorderUnsubscribesOnCleanup(t *testing.T) {
	b := New(t)
	ft := &fakeT{}
	NewRecorder(ft, b)
	assert.Equal(t, 1, b.Metrics().Subscribers)
	ft.finish()
	assert.Zero(t, b.Metrics().Subscribers)
}

func TestRecorderOnClosedBus(t *testing.T) {
	b := eventbus.New()
	require.NoError(t, b.Close())
	ft := &fakeT{}
	rec := NewRecorder(ft, b)
	require.Len(t, ft.errs, 1)
	assert.True(t, strings.Contains(ft.errs[0], eventbus.ErrClosed.Error()))
	assert.Zero(t, rec.Len())
}

// New logs at Info by default: a failed run, not a successful one; with
// LogDebug, every run.
func TestNewLogLevel(t *testing.T) {
	for _, debug := range []bool{false, true} {
		ft := &fakeT{}
		var opts []eventbus.Option
		if debug {
			opts = append(opts, LogDebug())
		}
		b := New(ft, append(opts, eventbus.WithMaxWorkers(0))...)
		_, err := b.Subscribe(func(e eventbus.Event) error {
			if e.Type == eventbus.StepFailed {
				return errors.New("boom")
			}
			return nil
		})
		require.NoError(t, err)
		_ = b.Publish(context.Background(), eventbus.Event{Type: eventbus.StepStarted})
		_ = b.Publish(context.Background(), eventbus.Event{Type: eventbus.StepFailed})
		ft.finish()
		logs := strings.Join(ft.logs, "\n")
		assert.Contains(t, logs, `msg="handler failed"`)
		if debug {
			assert.Contains(t, logs, `msg="handler finished"`)
		} else {
			assert.NotContains(t, logs, `msg="handler finished"`, "a successful run is not logged by default")
		}
	}
}

// A Recorder subscribed with Ordered records each workflow's events in the
// order they were published, even on a pool of workers, so Types can be
// compared.
func TestRecorderOrdered(t *testing.T) {
	b := New(t, eventbus.WithMaxWorkers(8))
	rec := NewRecorder(t, b, eventbus.Ordered(), eventbus.Filter{ADWIDs: []string{"wf-1"}})
	types := []eventbus.EventType{eventbus.WorkflowStarted, eventbus.StepStarted, eventbus.StepCompleted}
	var want []eventbus.EventType
	for i := range 300 {
		typ := types[i%len(types)]
		want = append(want, typ)
		require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: typ, ADWID: "wf-1"}))
		require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: typ, ADWID: "wf-2"}))
	}
	require.NoError(t, rec.WaitFor(t.Context(), len(want)))
	assert.Equal(t, want, rec.Types())
}
