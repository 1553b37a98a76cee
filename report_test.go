package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// A PublishAndWait that times out reports what it collected: ctx.Err(), the
// failure that had already happened, and the runs still going, sync and
// async, by name.
func TestPublishAndWaitTimeoutReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		release := make(chan struct{})
		errDown := errors.New("warehouse unreachable")
		_, err := b.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("fast"))
		require.NoError(t, err)
		failing, err := b.Subscribe(func(eventbus.Event) error { return errDown }, eventbus.WithName("webhook"))
		require.NoError(t, err)
		slow, err := b.Subscribe(func(eventbus.Event) error { <-release; return nil }, eventbus.WithName("warehouse"))
		require.NoError(t, err)
		archive, err := b.SubscribeAsync(func(context.Context, eventbus.Event) error { <-release; return nil })
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		e := eventbus.Event{ID: uuid.New(), Type: eventbus.WorkflowFailed, ADWID: "wf-001"}
		err = b.PublishAndWait(ctx, e)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		hes := eventbus.HandlerErrors(err)
		require.Len(t, hes, 1)
		assert.Equal(t, failing, hes[0].SubscriptionID)
		assert.Equal(t, "webhook", hes[0].Name)
		assert.Equal(t, e.ID, hes[0].EventID)
		assert.Equal(t, "wf-001", hes[0].ADWID)
		assert.ErrorIs(t, hes[0], errDown)
		assert.Equal(t, `eventbus: handler "webhook" (`+string(failing)+`) on workflow_failed for wf-001: warehouse unreachable`, hes[0].Error())

		var pending *eventbus.PendingError
		require.ErrorAs(t, err, &pending)
		assert.Equal(t, []eventbus.PendingRun{
			{SubscriptionID: slow, Name: "warehouse"},
			{SubscriptionID: archive, Async: true},
		}, pending.Runs)
		assert.Equal(t, `eventbus: 2 handler runs not finished: "warehouse" (`+string(slow)+`), `+string(archive)+` (async)`, pending.Error())

		close(release)
		require.NoError(t, b.Drain(context.Background()))
		assert.Equal(t, uint64(3), b.Metrics().Delivered, "the pending runs went on")
	})
}

// A PublishAndWait that finishes in time reports no PendingError, and a
// ctx that ends with nothing pending and nothing failed gives ctx.Err()
// alone.
func TestPublishAndWaitReportShapes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		release := make(chan struct{})
		_, err := b.Subscribe(func(e eventbus.Event) error {
			if e.Message == "block" {
				<-release
			}
			return nil
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, b.PublishAndWait(ctx, ev(eventbus.StepStarted)))
		err = b.PublishAndWait(ctx, msg("block"))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Empty(t, eventbus.HandlerErrors(err))
		var pending *eventbus.PendingError
		require.ErrorAs(t, err, &pending)
		assert.Len(t, pending.Runs, 1)
		assert.Equal(t, "eventbus: 1 handler run not finished: sub-1", pending.Error())
		close(release)
	})
}

// HandlerError's text names the subscription by name when it has one, and
// the workflow when the event has one.
func TestHandlerErrorText(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		he   eventbus.HandlerError
		want string
	}{
		{eventbus.HandlerError{SubscriptionID: "sub-1", EventType: "x", Err: boom}, "eventbus: handler sub-1 on x: boom"},
		{eventbus.HandlerError{SubscriptionID: "sub-1", EventType: "x", ADWID: "wf", Err: boom}, "eventbus: handler sub-1 on x for wf: boom"},
		{eventbus.HandlerError{SubscriptionID: "sub-3", Name: "webhook", EventType: "x", Err: boom}, `eventbus: handler "webhook" (sub-3) on x: boom`},
	} {
		assert.Equal(t, tt.want, tt.he.Error())
	}
}

// HandlerErrors finds every HandlerError in a tree of joined and wrapped
// errors, inside a HandlerError's own error too, in order.
func TestHandlerErrorsTree(t *testing.T) {
	he := func(id string, err error) *eventbus.HandlerError {
		return &eventbus.HandlerError{SubscriptionID: eventbus.SubscriptionID(id), EventType: "x", Err: err}
	}
	inner := he("sub-3", errors.New("inner"))
	tree := errors.Join(
		context.DeadlineExceeded,
		he("sub-1", errors.New("a")),
		fmt.Errorf("wrapped: %w", errors.Join(he("sub-2", inner), errors.New("plain"))),
	)
	var ids []eventbus.SubscriptionID
	for _, h := range eventbus.HandlerErrors(tree) {
		ids = append(ids, h.SubscriptionID)
	}
	assert.Equal(t, []eventbus.SubscriptionID{"sub-1", "sub-2", "sub-3"}, ids)
	assert.Nil(t, eventbus.HandlerErrors(nil))
	assert.Nil(t, eventbus.HandlerErrors(errors.New("plain")))
}
