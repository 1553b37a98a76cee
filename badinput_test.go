package eventbus_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// Every exported entry point given its edge values returns a documented
// error (or panics with a documented message, see TestOptionPanics), and the
// bus goes on working afterwards.
func TestBadInputLeavesBusWorking(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(workers), nil) // a nil Option is ignored
			var got []eventbus.Event
			_, err := b.Subscribe(func(e eventbus.Event) error { got = append(got, e); return nil }, nil, eventbus.WithName(""))
			require.NoError(t, err)
			bg := context.Background()

			for _, tt := range []struct {
				name string
				err  error
				call func() error
			}{
				//lint:ignore SA1012 a nil ctx is the case under test
				{"Publish nil ctx", eventbus.ErrNilContext, func() error { return b.Publish(nil, ev("x")) }}, //nolint:staticcheck
				//lint:ignore SA1012 a nil ctx is the case under test
				{"PublishAndWait nil ctx", eventbus.ErrNilContext, func() error { return b.PublishAndWait(nil, ev("x")) }}, //nolint:staticcheck
				//lint:ignore SA1012 a nil ctx is the case under test
				{"Drain nil ctx", eventbus.ErrNilContext, func() error { return b.Drain(nil) }}, //nolint:staticcheck
				//lint:ignore SA1012 a nil ctx is the case under test
				{"Shutdown nil ctx", eventbus.ErrNilContext, func() error { return b.Shutdown(nil) }}, //nolint:staticcheck
				{"zero Event", eventbus.ErrInvalidEvent, func() error { return b.Publish(bg, eventbus.Event{}) }},
				{"severity above the set", eventbus.ErrInvalidEvent, func() error {
					return b.Publish(bg, eventbus.Event{Type: "x", Severity: eventbus.SeverityCritical + 1})
				}},
				{"negative severity", eventbus.ErrInvalidEvent, func() error {
					return b.PublishAndWait(bg, eventbus.Event{Type: "x", Severity: -1})
				}},
				{"nil handler", eventbus.ErrNilHandler, func() error { _, err := b.Subscribe(nil); return err }},
				{"nil async handler", eventbus.ErrNilHandler, func() error { _, err := b.SubscribeAsync(nil); return err }},
			} {
				assert.ErrorIs(t, tt.call(), tt.err, tt.name)
			}
			assert.False(t, b.Unsubscribe(""), "empty id")
			assert.False(t, b.Unsubscribe("sub-999"), "unknown id")
			assert.Empty(t, got, "no refused event reached a handler")
			assert.Zero(t, b.Metrics().Published)
			assert.Equal(t, 1, b.Metrics().Subscribers)

			// Huge Data is handed over as is, without a copy.
			huge := make(map[string]any, 1<<18)
			for i := range 1 << 18 {
				huge[strconv.Itoa(i)] = i
			}
			e := ev(eventbus.AgentMessage)
			e.Data = huge
			require.NoError(t, b.PublishAndWait(bg, e))
			require.Len(t, got, 1)
			assert.Len(t, got[0].Data, 1<<18)
			got[0].Data["sentinel"] = true
			assert.Equal(t, true, huge["sentinel"], "handlers share the publisher's Data map")

			// Empty but non-nil filter fields constrain nothing.
			var filtered int
			_, err = b.Subscribe(func(eventbus.Event) error { filtered++; return nil },
				eventbus.Filter{Types: []eventbus.EventType{}, ADWIDs: []string{}})
			require.NoError(t, err)
			require.NoError(t, b.PublishAndWait(bg, ev(eventbus.StepStarted)))
			assert.Equal(t, 1, filtered)
			assert.Len(t, got, 2)
		})
	}
}

// After Close every entry point still answers, none panics, and the closed
// bus stays consistent.
func TestBadInputAfterClose(t *testing.T) {
	b := eventbus.New(quiet)
	id, err := b.Subscribe(func(eventbus.Event) error { return nil })
	require.NoError(t, err)
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close twice")

	bg := context.Background()
	assert.ErrorIs(t, b.Publish(bg, ev("x")), eventbus.ErrClosed)
	assert.ErrorIs(t, b.PublishAndWait(bg, ev("x")), eventbus.ErrClosed)
	assert.ErrorIs(t, b.Publish(bg, eventbus.Event{}), eventbus.ErrInvalidEvent, "validation comes first")
	_, err = b.Subscribe(func(eventbus.Event) error { return nil })
	assert.ErrorIs(t, err, eventbus.ErrClosed)
	assert.NoError(t, b.Drain(bg))
	assert.NoError(t, b.Shutdown(bg))
	assert.True(t, b.Unsubscribe(id), "Unsubscribe works after Close")
	assert.False(t, b.Unsubscribe(id), "Unsubscribe twice")
	assert.Equal(t, eventbus.Metrics{}, b.Metrics())
	assert.Equal(t, 10, b.MaxWorkers())
}
