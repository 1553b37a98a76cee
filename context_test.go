package eventbus_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// A SubscribeContext handler runs where sync handlers run (inline with
// WithMaxWorkers(0), before Publish returns) and gets a ctx by the async
// rules: the publisher's values without its cancellation via Publish, the
// caller's ctx via PublishAndWait, and one that Drain and Shutdown
// recognise.
func TestSubscribeContext(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(workers))
			type seen struct {
				trace    any
				err      error
				inHandle error
			}
			got := make(chan seen, 2)
			release := make(chan struct{})
			if workers == 0 {
				close(release) // inline, the caller runs the handler: it must return
			}
			_, err := b.SubscribeContext(func(ctx context.Context, e eventbus.Event) error {
				if e.Message == "wait" {
					<-ctx.Done() // the caller's ctx: it ends
					defer func() { <-release }()
				}
				got <- seen{ctx.Value(traceKey{}), ctx.Err(), b.Drain(ctx)}
				return nil
			})
			require.NoError(t, err)

			pctx, cancel := context.WithCancel(context.WithValue(context.Background(), traceKey{}, "t-1"))
			require.NoError(t, b.Publish(pctx, msg("publish")))
			cancel() // the publisher's cancellation does not reach its handlers
			s := recv(t, got)
			assert.Equal(t, "t-1", s.trace)
			assert.NoError(t, s.err)
			assert.ErrorIs(t, s.inHandle, eventbus.ErrInHandler)

			wctx, wcancel := context.WithTimeout(context.WithValue(context.Background(), traceKey{}, "t-2"), 50*time.Millisecond)
			defer wcancel()
			err = b.PublishAndWait(wctx, msg("wait"))
			if workers > 0 {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			} else {
				assert.NoError(t, err, "inline, the caller ran the handler to its end")
			}
			s = recv(t, got)
			assert.Equal(t, "t-2", s.trace)
			assert.ErrorIs(t, s.err, context.DeadlineExceeded, "via PublishAndWait it is the caller's ctx")
			if workers > 0 {
				close(release)
			}
		})
	}
}

// SubscribeContext refuses a nil handler, like Subscribe.
func TestSubscribeContextNil(t *testing.T) {
	b := newBus(t)
	_, err := b.SubscribeContext(nil)
	assert.ErrorIs(t, err, eventbus.ErrNilHandler)
}

// A Detached handler's ctx keeps the caller's values but not its deadline:
// a request's timeout does not cancel an archive. PublishAndWait still
// waits for it until its own ctx ends and reports it pending; Shutdown's
// deadline is what cancels it.
func TestDetached(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run("async="+strconv.FormatBool(async), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := eventbus.New(quiet)
				type seen struct {
					trace      any
					errAtFirst error
					deadline   bool
					cause      error
				}
				got := make(chan seen, 1)
				archive := func(ctx context.Context, e eventbus.Event) error {
					_, hasDeadline := ctx.Deadline()
					first := ctx.Err()
					<-ctx.Done() // until Shutdown gives up
					got <- seen{ctx.Value(traceKey{}), first, hasDeadline, context.Cause(ctx)}
					return nil
				}
				var id eventbus.SubscriptionID
				var err error
				if async {
					id, err = b.SubscribeAsync(archive, eventbus.Detached(), eventbus.WithName("archive"))
				} else {
					id, err = b.SubscribeContext(archive, eventbus.Detached(), eventbus.WithName("archive"))
				}
				require.NoError(t, err)

				errReq := errors.New("request finished")
				rctx, rcancel := context.WithCancelCause(context.WithValue(context.Background(), traceKey{}, "t-3"))
				tctx, tcancel := context.WithTimeout(rctx, 200*time.Millisecond)
				defer tcancel()
				err = b.PublishAndWait(tctx, ev(eventbus.WorkflowCompleted))
				require.ErrorIs(t, err, context.DeadlineExceeded)
				var pending *eventbus.PendingError
				require.ErrorAs(t, err, &pending)
				assert.Equal(t, []eventbus.PendingRun{{SubscriptionID: id, Name: "archive", Async: async}}, pending.Runs)
				rcancel(errReq)
				synctest.Wait()
				select {
				case <-got:
					t.Fatal("the caller's cancellation reached a Detached handler")
				default:
				}

				sctx, scancel := context.WithTimeout(context.Background(), time.Second)
				defer scancel()
				require.ErrorIs(t, b.Shutdown(sctx), context.DeadlineExceeded)
				s := <-got
				assert.Equal(t, "t-3", s.trace)
				assert.NoError(t, s.errAtFirst)
				assert.False(t, s.deadline)
				assert.NotErrorIs(t, s.cause, errReq)
				require.NoError(t, b.Close())
			})
		})
	}
}

// startingObserver hands each run a ctx of its own, as otelbus does with a
// span, and records the ctx HandlerDone gets.
type startingObserver struct {
	recordingObserver
	mu     sync.Mutex
	starts []eventbus.RunInfo
}

type runKey struct{}

func (o *startingObserver) HandlerStart(ctx context.Context, r eventbus.RunInfo) context.Context {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.starts = append(o.starts, r)
	return context.WithValue(ctx, runKey{}, string(r.SubscriptionID))
}

// A RunStarter hears of each run before it starts, and the ctx it returns
// is the handler's, for every kind that takes one, and HandlerDone's.
func TestRunStarter(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			obs := &startingObserver{}
			b := newBus(t, eventbus.WithMaxWorkers(workers), eventbus.WithObserver(obs))
			var mu sync.Mutex
			handlerSaw := map[eventbus.SubscriptionID]any{}
			see := func(id *eventbus.SubscriptionID) func(context.Context, eventbus.Event) error {
				return func(ctx context.Context, _ eventbus.Event) error {
					mu.Lock()
					defer mu.Unlock()
					handlerSaw[*id] = ctx.Value(runKey{})
					return nil
				}
			}
			var ctxID, asyncID eventbus.SubscriptionID
			var err error
			ctxID, err = b.SubscribeContext(see(&ctxID))
			require.NoError(t, err)
			asyncID, err = b.SubscribeAsync(see(&asyncID))
			require.NoError(t, err)
			plainID, err := b.Subscribe(func(eventbus.Event) error { return nil })
			require.NoError(t, err)

			require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
			mu.Lock()
			assert.Equal(t, map[eventbus.SubscriptionID]any{ctxID: string(ctxID), asyncID: string(asyncID)}, handlerSaw)
			mu.Unlock()
			obs.mu.Lock()
			assert.Len(t, obs.starts, 3)
			for _, s := range obs.starts {
				assert.Zero(t, s.Duration)
				assert.False(t, s.Start.IsZero())
			}
			obs.mu.Unlock()
			_, runs, ctxs := obs.snapshot()
			require.Len(t, runs, 3)
			for i, r := range runs {
				assert.Equal(t, string(r.SubscriptionID), ctxs[i].Value(runKey{}), "HandlerDone gets the ctx HandlerStart returned")
			}
			_ = plainID
		})
	}
}
