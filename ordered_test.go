package eventbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// sequenceChecker records, for one ordered subscription, that each
// workflow's events arrive strictly in sequence, with no gap, and never two
// at once.
type sequenceChecker struct {
	t       *testing.T
	name    string
	running []atomic.Bool  // per workflow
	next    []atomic.Int64 // per workflow: the sequence number expected next
	runs    atomic.Int64
}

func newSequenceChecker(t *testing.T, name string, workflows int) *sequenceChecker {
	return &sequenceChecker{t: t, name: name, running: make([]atomic.Bool, workflows), next: make([]atomic.Int64, workflows)}
}

func (c *sequenceChecker) handle(e eventbus.Event) error {
	wf, seq := workflowSeq(e)
	if !c.running[wf].CompareAndSwap(false, true) {
		c.t.Errorf("%s: two events of workflow %d at once", c.name, wf)
		return nil
	}
	defer c.running[wf].Store(false)
	if want := c.next[wf].Load(); int64(seq) != want {
		c.t.Errorf("%s: workflow %d got event %d, want %d", c.name, wf, seq, want)
	}
	c.next[wf].Store(int64(seq) + 1)
	c.runs.Add(1)
	if seq%7 == 0 {
		runtime.Gosched() // let other runs interleave
	}
	return nil
}

func workflowEvent(wf, seq int) eventbus.Event {
	return eventbus.Event{
		Type: eventbus.StepCompleted, ADWID: "wf-" + strconv.Itoa(wf), Source: "src-" + strconv.Itoa(wf%3),
		Message: strconv.Itoa(seq),
	}
}

func workflowSeq(e eventbus.Event) (wf, seq int) {
	wf, _ = strconv.Atoi(e.ADWID[len("wf-"):])
	seq, _ = strconv.Atoi(e.Message)
	return wf, seq
}

// Ordered: 4 publishers, each owning some of 50 workflows, publish 10,000
// events carrying a per-workflow sequence number; every ordered
// subscription, sync and async, sees each workflow's sequence strictly
// increasing with no gap and never two events of one workflow at once.
func TestOrderedPerWorkflow(t *testing.T) {
	const workflows, events, publishers = 50, 10000, 4
	for _, workers := range []int{0, 1, 4, 10} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(workers))
			syncC := newSequenceChecker(t, "sync", workflows)
			asyncC := newSequenceChecker(t, "async", workflows)
			_, err := b.Subscribe(syncC.handle, eventbus.Ordered())
			require.NoError(t, err)
			_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return asyncC.handle(e) }, eventbus.Ordered())
			require.NoError(t, err)
			var unordered atomic.Int64 // an unordered subscription alongside
			_, err = b.Subscribe(func(eventbus.Event) error { unordered.Add(1); return nil })
			require.NoError(t, err)

			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					var owned []int // the workflows wf%4 == p belong to publisher p
					for wf := p; wf < workflows; wf += publishers {
						owned = append(owned, wf)
					}
					seq := make(map[int]int)
					for i := range events / publishers {
						wf := owned[i%len(owned)]
						e := workflowEvent(wf, seq[wf])
						seq[wf]++
						var err error
						if i%10 == 0 {
							err = b.PublishAndWait(context.Background(), e)
						} else {
							err = b.Publish(context.Background(), e)
						}
						if !assert.NoError(t, err) {
							return
						}
					}
				})
			}
			wg.Wait()
			within(t, func() { drain(t, b) })
			assert.Equal(t, int64(events), syncC.runs.Load())
			assert.Equal(t, int64(events), asyncC.runs.Load())
			assert.Equal(t, int64(events), unordered.Load())
			m := b.Metrics()
			assert.Equal(t, uint64(3*events), m.Delivered)
			assert.Zero(t, m.Queued)
		})
	}
}

// OrderedBy orders by another key: here the source, shared by several
// workflows.
func TestOrderedBy(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(4))
	var mu sync.Mutex
	last := map[string]int{}
	running := map[string]bool{}
	runs := 0
	_, err := b.Subscribe(func(e eventbus.Event) error {
		mu.Lock()
		runs++
		if running[e.Source] {
			t.Errorf("two events of source %s at once", e.Source)
		}
		running[e.Source] = true
		seq, _ := strconv.Atoi(e.Message)
		if seq <= last[e.Source] && last[e.Source] != 0 {
			t.Errorf("source %s: %d after %d", e.Source, seq, last[e.Source])
		}
		last[e.Source] = seq
		mu.Unlock()
		runtime.Gosched()
		mu.Lock()
		running[e.Source] = false
		mu.Unlock()
		return nil
	}, eventbus.OrderedBy(func(e eventbus.Event) string { return e.Source }))
	require.NoError(t, err)
	for i := 1; i <= 3000; i++ {
		e := workflowEvent(i%50, i) // the global counter increases per source too
		require.NoError(t, b.Publish(context.Background(), e))
	}
	drain(t, b)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, last, 3)
	assert.Equal(t, 3000, runs, "every event ran once")
}

// Events of different workflows run in parallel: workflow A's handler can
// only finish once workflow B's has started.
func TestOrderedWorkflowsRunConcurrently(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run("async="+strconv.FormatBool(async), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(2))
			bStarted := make(chan struct{})
			h := func(e eventbus.Event) error {
				if e.ADWID == "B" {
					close(bStarted)
					return nil
				}
				<-bStarted
				return nil
			}
			var err error
			if async {
				_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return h(e) }, eventbus.Ordered())
			} else {
				_, err = b.Subscribe(h, eventbus.Ordered())
			}
			require.NoError(t, err)
			within(t, func() {
				require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: "A"}))
				require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: "B"}))
				drain(t, b)
			})
		})
	}
}

// A second event of a busy workflow waits until the first is handled, even
// with idle workers, and PublishAndWait waits for it.
func TestOrderedSameWorkflowWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(4))
		release := make(chan struct{})
		var started []string
		var mu sync.Mutex
		_, err := b.Subscribe(func(e eventbus.Event) error {
			mu.Lock()
			started = append(started, e.Message)
			mu.Unlock()
			if e.Message == "1" {
				<-release
			}
			return nil
		}, eventbus.Ordered())
		require.NoError(t, err)
		bg := context.Background()
		require.NoError(t, b.Publish(bg, eventbus.Event{Type: "x", ADWID: "A", Message: "1"}))
		waited := make(chan error, 1)
		go func() { waited <- b.PublishAndWait(bg, eventbus.Event{Type: "x", ADWID: "A", Message: "2"}) }()
		synctest.Wait()
		mu.Lock()
		assert.Equal(t, []string{"1"}, started)
		mu.Unlock()
		assert.Equal(t, int64(1), b.Metrics().Queued, "event 2 is parked")
		notYet(t, waited, "PublishAndWait returned before its ordered run")
		close(release)
		synctest.Wait()
		require.NoError(t, <-waited)
		assert.Equal(t, []string{"1", "2"}, started)
	})
}

// Unsubscribe skips the runs parked in an ordered subscription's lanes.
func TestOrderedUnsubscribeSkipsParked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t, eventbus.WithMaxWorkers(2))
		release := make(chan struct{})
		var ran atomic.Int64
		id, err := b.Subscribe(func(e eventbus.Event) error {
			ran.Add(1)
			<-release
			return nil
		}, eventbus.Ordered())
		require.NoError(t, err)
		for i := range 5 {
			require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: "A", Message: strconv.Itoa(i)}))
		}
		synctest.Wait()
		require.True(t, b.Unsubscribe(id))
		close(release)
		require.NoError(t, b.Drain(context.Background()))
		assert.Equal(t, int64(1), ran.Load())
		m := b.Metrics()
		assert.Equal(t, uint64(4), m.Skipped)
		assert.Zero(t, m.Queued)
	})
}

// A handler that calls runtime.Goexit does not stall its lane: the events
// parked behind it still run, in order.
func TestOrderedGoexitKeepsLaneGoing(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			b := newBus(t, eventbus.WithMaxWorkers(workers))
			var mu sync.Mutex
			var got []string
			gate, started := make(chan struct{}), make(chan struct{})
			_, err := b.Subscribe(func(e eventbus.Event) error {
				if e.Message == "0" {
					close(started)
					<-gate
					runtimeGoexit()
				}
				mu.Lock()
				got = append(got, e.Message)
				mu.Unlock()
				return nil
			}, eventbus.Ordered())
			require.NoError(t, err)
			go func() { _ = b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: "A", Message: "0"}) }()
			recv(t, started) // the others park behind it
			for i := 1; i <= 3; i++ {
				require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: "A", Message: strconv.Itoa(i)}))
			}
			close(gate)
			within(t, func() { drain(t, b) })
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{"1", "2", "3"}, got)
			assert.Equal(t, uint64(1), b.Metrics().Failed)
		})
	}
}

// An OrderedBy key function that panics is logged, and its events share the
// lane of the empty key; a nil key function panics at once.
func TestOrderedByKeyPanics(t *testing.T) {
	assert.PanicsWithValue(t, "eventbus: OrderedBy: nil key function", func() { eventbus.OrderedBy(nil) })
	rec := &logRecorder{level: slog.LevelError}
	b := newBus(t, eventbus.WithLogger(slog.New(rec)))
	var runs atomic.Int64
	_, err := b.Subscribe(func(eventbus.Event) error { runs.Add(1); return nil },
		eventbus.OrderedBy(func(e eventbus.Event) string { panic(fmt.Sprint("no key for ", e.Type)) }))
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, b.PublishAndWait(context.Background(), ev(eventbus.StepStarted)))
	}
	assert.Equal(t, int64(3), runs.Load())
	recs := rec.records()
	require.Len(t, recs, 3)
	assert.Equal(t, "order key panicked", recs[0].Message)
}

// A handler that panics hands its lane on to no one: the goroutine that ran
// it recovers and carries on with the lane itself. Were the lane also handed
// over, two goroutines would run one workflow's events at once, and the lane
// would be released twice, leaving a later workflow's events parked for good.
func TestOrderedPanicKeepsOneRunner(t *testing.T) {
	for _, async := range []bool{false, true} {
		for _, workers := range []int{0, 4} {
			t.Run(fmt.Sprintf("async=%v/workers=%d", async, workers), func(t *testing.T) {
				b := newBus(t, eventbus.WithMaxWorkers(workers))
				var mu sync.Mutex
				got := map[string][]string{}
				var active, most atomic.Int64
				gate, started := make(chan struct{}), make(chan struct{})
				handle := func(e eventbus.Event) error {
					if e.Message == "panic" {
						close(started)
						<-gate
						panic("boom")
					}
					n := active.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					mu.Lock()
					got[e.ADWID] = append(got[e.ADWID], e.Message)
					mu.Unlock()
					runtime.Gosched()
					active.Add(-1)
					return nil
				}
				var err error
				if async {
					_, err = b.SubscribeAsync(func(_ context.Context, e eventbus.Event) error { return handle(e) }, eventbus.Ordered())
				} else {
					_, err = b.Subscribe(handle, eventbus.Ordered())
				}
				require.NoError(t, err)
				publish := func(wf, msg string) {
					require.NoError(t, b.Publish(context.Background(), eventbus.Event{Type: "x", ADWID: wf, Message: msg}))
				}
				go publish("A", "panic")
				recv(t, started) // the others park behind it
				const n = 50
				var want []string
				for i := range n {
					publish("A", strconv.Itoa(i))
					want = append(want, strconv.Itoa(i))
				}
				close(gate)
				within(t, func() { drain(t, b) })
				assert.Equal(t, int64(1), most.Load(), "runs of one workflow overlapped")
				assert.Equal(t, want, got["A"])

				// Every lane was released once: later workflows, the empty
				// key's included, still get through.
				for _, wf := range []string{"B", "C", "", "B", "A", ""} {
					within(t, func() {
						require.NoError(t, b.PublishAndWait(context.Background(), eventbus.Event{Type: "x", ADWID: wf, Message: "later"}))
					})
				}
				assert.Equal(t, uint64(1), b.Metrics().Panics)
			})
		}
	}
}
