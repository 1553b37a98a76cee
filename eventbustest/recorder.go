package eventbustest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/adws/eventbus"
)

// A Recorder records, in the order they arrive, the events delivered to its
// subscription. It is safe for use by many goroutines; its handler runs on
// the bus's workers, so on a pool events arrive in any order unless the
// subscription is Ordered: then the events of one workflow arrive in the
// order they were published.
type Recorder struct {
	id eventbus.SubscriptionID

	mu      sync.Mutex
	events  []eventbus.Event
	changed chan struct{} // closed and replaced on every new event
}

// NewRecorder subscribes a Recorder to b with opts: every event that passes
// all the Filters among them (every event, without one), one workflow at a
// time in publish order with eventbus.Ordered(), and so on. It is named
// "eventbustest.Recorder" unless opts name it. t.Cleanup unsubscribes it. If
// b refuses the subscription (it is closed), NewRecorder fails the test and
// returns a Recorder that records nothing.
func NewRecorder(t TB, b *eventbus.Bus, opts ...eventbus.SubscribeOption) *Recorder {
	t.Helper()
	r := &Recorder{changed: make(chan struct{})}
	opts = append([]eventbus.SubscribeOption{eventbus.WithName("eventbustest.Recorder")}, opts...)
	id, err := b.Subscribe(r.record, opts...)
	if err != nil {
		t.Errorf("eventbustest: NewRecorder: %v", err)
		return r
	}
	r.id = id
	t.Cleanup(func() { b.Unsubscribe(id) })
	return r
}

func (r *Recorder) record(e eventbus.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// ID returns the Recorder's subscription id.
func (r *Recorder) ID() eventbus.SubscriptionID { return r.id }

// WaitFor blocks until the Recorder holds at least n events, and returns
// nil; if ctx ends first it returns an error that wraps ctx.Err() and says
// how many events arrived. It does not poll.
func (r *Recorder) WaitFor(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		got, changed := len(r.events), r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("eventbustest: recorded %d of %d events: %w", got, n, ctx.Err())
		}
	}
}

// Len returns the number of events recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Events returns a copy of the events recorded so far, in arrival order.
func (r *Recorder) Events() []eventbus.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Types returns the types of the events recorded so far, in arrival order.
func (r *Recorder) Types() []eventbus.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	types := make([]eventbus.EventType, len(r.events))
	for i, e := range r.events {
		types[i] = e.Type
	}
	return types
}

// Reset forgets the events recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.events)
	r.events = r.events[:0]
}
