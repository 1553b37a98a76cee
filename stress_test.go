package eventbus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// The stress test runs for -stress.duration, or $EVENTBUS_STRESS when the
// flag is not given: CI uses 15s, a run by hand 60s (go test -race -run
// TestStress -stress.duration=60s .). The regular suite runs it for 2s.
var stressDuration = flag.Duration("stress.duration", 0, "how long TestStress runs (default $EVENTBUS_STRESS or 2s)")

func stressTime(t *testing.T) time.Duration {
	if *stressDuration > 0 {
		return *stressDuration
	}
	if env := os.Getenv("EVENTBUS_STRESS"); env != "" {
		d, err := time.ParseDuration(env)
		require.NoError(t, err, "EVENTBUS_STRESS")
		return d
	}
	return 2 * time.Second
}

const (
	stressPublishers  = 4
	stressMaxPerPub   = 1 << 20 // events one publisher may send
	stressTypes       = 4
	stressSubscribers = 20
)

var stressTypeNames = [stressTypes]eventbus.EventType{
	eventbus.StepStarted, eventbus.StepCompleted, eventbus.ToolCalled, eventbus.AgentMessage,
}

// stressEvent derives every property of event seq of publisher p from (p,
// seq), so that a subscription's expected events can be recomputed. The ID
// carries p, seq and ticket, taken before Publish was called.
func stressEvent(p, seq int, ticket uint64) eventbus.Event {
	var id uuid.UUID
	id[0] = byte(p)
	binary.LittleEndian.PutUint32(id[1:5], uint32(seq))
	binary.LittleEndian.PutUint64(id[8:16], ticket)
	return eventbus.Event{
		ID:       id,
		ADWID:    "adw-" + string(rune('a'+p)),
		Type:     stressTypeNames[seq%stressTypes],
		Severity: stressSeverities[seq%len(stressSeverities)],
		Source:   "stress",
	}
}

var stressSeverities = [...]eventbus.Severity{
	eventbus.SeverityDebug, eventbus.SeverityInfo, eventbus.SeverityWarning, eventbus.SeverityError, eventbus.SeverityCritical,
}

func stressDecode(e eventbus.Event) (p, seq int, ticket uint64) {
	return int(e.ID[0]), int(binary.LittleEndian.Uint32(e.ID[1:5])), binary.LittleEndian.Uint64(e.ID[8:16])
}

// seenSet records which events of each publisher a subscription received,
// and how many it received more than once.
type seenSet struct {
	bits [stressPublishers][]atomic.Uint64
	dups atomic.Int64
	runs atomic.Int64
}

func newSeenSet() *seenSet {
	s := new(seenSet)
	for p := range s.bits {
		s.bits[p] = make([]atomic.Uint64, stressMaxPerPub/64)
	}
	return s
}

func (s *seenSet) add(p, seq int) {
	s.runs.Add(1)
	if s.bits[p][seq/64].Or(1<<(seq%64))&(1<<(seq%64)) != 0 {
		s.dups.Add(1)
	}
}

func (s *seenSet) has(p, seq int) bool { return s.bits[p][seq/64].Load()&(1<<(seq%64)) != 0 }

// TestStress attacks one bus from every side at once: 4 publishers (Publish,
// and PublishAndWait with a ctx that never ends, one that can end, and one
// that ends while it waits), 20 long-lived subscriptions (sync and async,
// filtered and not, Once, some failing), 2 ordered ones, 2 whose handler
// ends its goroutine with runtime.Goexit now and then (on a worker, and on
// an async goroutine), an observer, and a goroutine that subscribes and
// unsubscribes throughout. The pool is saturated most of the time. It then
// accounts for every event exactly.
func TestStress(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test skipped in -short mode")
	}
	d := stressTime(t)
	obs := &tallyObserver{}
	b := newBus(t, eventbus.WithMaxWorkers(4), eventbus.WithObserver(obs))
	ctx := context.Background()

	type sub struct {
		name   string
		filter eventbus.Filter
		once   bool
		fails  bool // returns an error for events of severity ERROR
		seen   *seenSet
	}
	errStress := errors.New("stress failure")
	var subs []*sub
	for i := range stressSubscribers {
		s := &sub{name: fmt.Sprintf("s%02d", i), seen: newSeenSet()}
		switch i % 5 {
		case 1:
			s.filter = eventbus.Filter{Types: []eventbus.EventType{stressTypeNames[i%stressTypes]}}
		case 2:
			s.filter = eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical}}
		case 3:
			s.filter = eventbus.Filter{ADWIDs: []string{"adw-b"}, Match: func(e eventbus.Event) bool { return e.Severity != eventbus.SeverityDebug }}
		case 4:
			s.once = true
		}
		s.fails = i%7 == 0
		subs = append(subs, s)
		opts := []eventbus.SubscribeOption{s.filter, eventbus.WithName(s.name)}
		if s.once {
			opts = append(opts, eventbus.Once())
		}
		handle := func(e eventbus.Event) error {
			p, seq, _ := stressDecode(e)
			s.seen.add(p, seq)
			if s.fails && e.Severity == eventbus.SeverityError {
				return errStress
			}
			return nil
		}
		var err error
		if i%2 == 0 {
			_, err = b.Subscribe(handle, opts...)
		} else {
			_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return handle(e) }, opts...)
		}
		require.NoError(t, err)
	}

	// Two ordered subscriptions: each publisher owns one workflow (ADWID),
	// so each must see every event of a publisher in sequence.
	var orderedRuns atomic.Int64
	for i, async := range []bool{false, true} {
		var next [stressPublishers]atomic.Int64
		h := func(e eventbus.Event) error {
			p, seq, _ := stressDecode(e)
			if want := next[p].Load(); int64(seq) != want {
				t.Errorf("ordered subscription %d: publisher %d's event %d arrived when %d was due", i, p, seq, want)
			}
			next[p].Store(int64(seq) + 1)
			orderedRuns.Add(1)
			if e.Severity == eventbus.SeverityError && i == 0 {
				return errStress
			}
			return nil
		}
		var err error
		if async {
			_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return h(e) }, eventbus.Ordered())
		} else {
			_, err = b.Subscribe(h, eventbus.Ordered())
		}
		require.NoError(t, err)
	}

	// Two subscriptions whose handler calls runtime.Goexit on every 97th
	// event of a publisher, except on the events a PublishAndWait caller
	// runs itself (seq%16 == 0), whose goroutine it would end.
	var goexitRuns, goexits atomic.Int64
	var cancels sync.Map // the ctx of PublishAndWait calls to end while they wait, by event ID
	for _, async := range []bool{false, true} {
		h := func(_ context.Context, e eventbus.Event) error {
			goexitRuns.Add(1)
			if cancel, ok := cancels.LoadAndDelete(e.ID); ok {
				cancel.(context.CancelFunc)()
			}
			if _, seq, _ := stressDecode(e); seq%97 == 5 && seq%16 != 0 {
				goexits.Add(1)
				runtime.Goexit()
			}
			return nil
		}
		_, err := subscribeAs(b, async, h)
		require.NoError(t, err)
	}

	var tickets atomic.Uint64 // taken before each Publish
	var churnRuns, churnLate atomic.Int64
	var churned atomic.Int64
	stop := make(chan struct{})
	var churner, publishers sync.WaitGroup

	// Churn: subscribe, let some events through, unsubscribe, and from then
	// on no event whose ticket was taken after Unsubscribe returned may reach
	// the subscription.
	churner.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var cut atomic.Uint64
			cut.Store(^uint64(0))
			h := func(e eventbus.Event) error {
				churnRuns.Add(1)
				if _, _, ticket := stressDecode(e); ticket > cut.Load() {
					churnLate.Add(1)
				}
				return nil
			}
			var id eventbus.SubscriptionID
			var err error
			if i%2 == 0 {
				id, err = b.Subscribe(h)
			} else {
				id, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return h(e) })
			}
			if !assert.NoError(t, err) {
				return
			}
			for from := tickets.Load(); tickets.Load() < from+20; { // let some events through
				select {
				case <-stop:
				default:
					runtime.Gosched()
					continue
				}
				break
			}
			if !assert.True(t, b.Unsubscribe(id)) {
				return
			}
			cut.Store(tickets.Load())
			churned.Add(1)
		}
	})

	var published [stressPublishers]atomic.Int64
	deadline := time.Now().Add(d)
	for p := range stressPublishers {
		publishers.Go(func() {
			for seq := 0; seq < stressMaxPerPub && time.Now().Before(deadline); seq++ {
				e := stressEvent(p, seq, tickets.Add(1))
				err := stressPublish(ctx, b, e, &cancels)
				var he *eventbus.HandlerError
				if errors.As(err, &he) {
					err = nil // failing handlers: counted below
				}
				if !assert.NoError(t, err) {
					return
				}
				published[p].Store(int64(seq + 1))
			}
		})
	}
	publishers.Wait() // each stops at the deadline
	close(stop)
	churner.Wait()
	drain(t, b)

	// Every long-lived subscription saw exactly the events it matches.
	var total, runs, failures int64
	for p := range stressPublishers {
		total += published[p].Load()
	}
	for _, s := range subs {
		want, got := 0, 0
		for p := range stressPublishers {
			for seq := range int(published[p].Load()) {
				e := stressEvent(p, seq, 0)
				matches := s.filter.Matches(e)
				if matches {
					want++
				}
				if s.seen.has(p, seq) {
					got++
					assert.True(t, matches, "%s got event %d/%d, which its filter rejects", s.name, p, seq)
					if s.fails && e.Severity == eventbus.SeverityError {
						failures++
					}
				} else if matches && !s.once {
					t.Errorf("%s lost event %d/%d", s.name, p, seq)
				}
			}
		}
		assert.Zero(t, s.seen.dups.Load(), "%s received duplicates", s.name)
		if s.once {
			assert.Equal(t, 1, got, "%s is Once", s.name)
		} else {
			assert.Equal(t, want, got, "%s", s.name)
		}
		runs += s.seen.runs.Load()
	}
	assert.Zero(t, churnLate.Load(), "a churned subscription received an event published after its Unsubscribe")

	m := b.Metrics()
	assert.Equal(t, uint64(total), m.Published)
	assert.Equal(t, 2*total, orderedRuns.Load(), "the ordered subscriptions saw every event")
	var orderedFailures int64
	for p := range stressPublishers {
		for seq := range int(published[p].Load()) {
			if stressEvent(p, seq, 0).Severity == eventbus.SeverityError {
				orderedFailures++
			}
		}
	}
	runs += orderedRuns.Load() + goexitRuns.Load()
	failures += orderedFailures + goexits.Load()
	assert.Equal(t, 2*total, goexitRuns.Load(), "runtime.Goexit ended one run each time, and no other")
	assert.Equal(t, uint64(runs+churnRuns.Load()), m.Delivered+m.Failed, "every handler run is counted")
	assert.Equal(t, uint64(failures), m.Failed)
	assert.Zero(t, m.Panics)
	assert.Zero(t, m.Queued)
	assert.Zero(t, m.InFlight)
	assert.Equal(t, stressSubscribers-4+2+2, m.Subscribers, "the four Once subscriptions retired")
	assert.Equal(t, total, obs.published.Load(), "the observer heard of every publish")
	assert.Equal(t, int64(m.Delivered+m.Failed), obs.runs.Load(), "the observer heard of every run")
	t.Logf("%v: %d events, %d subscriptions, %d churned, %d handler runs, %d Goexits, lost=0 duplicated=0",
		d, total, stressSubscribers+4, churned.Load(), runs+churnRuns.Load(), goexits.Load())
}

// stressPublish publishes e, event seq of its publisher: every 16th with
// PublishAndWait and a ctx that never ends (the caller runs the sync
// handlers itself), every 16th but 8 with a ctx that can end but does not,
// every 16th but 4 with a ctx that a handler ends while the caller waits
// (which returns ctx.Err(), or nil if every run finished first; the
// handlers run either way), and the rest with Publish.
func stressPublish(ctx context.Context, b *eventbus.Bus, e eventbus.Event, cancels *sync.Map) error {
	_, seq, _ := stressDecode(e)
	switch seq % 16 {
	case 0:
		return b.PublishAndWait(ctx, e)
	case 8:
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return b.PublishAndWait(ctx, e)
	case 4:
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancels.Store(e.ID, cancel)
		if err := b.PublishAndWait(ctx, e); !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	return b.Publish(ctx, e)
}

// tallyObserver counts what it is told.
type tallyObserver struct{ published, runs atomic.Int64 }

func (o *tallyObserver) Published(context.Context, eventbus.PublishInfo) { o.published.Add(1) }
func (o *tallyObserver) HandlerDone(context.Context, eventbus.RunInfo)   { o.runs.Add(1) }
