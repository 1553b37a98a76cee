package bench

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
)

// A contender is this bus in one configuration, a peer, or a baseline. A nil
// scenario means it cannot run that scenario; cmd/benchtable says why in a
// footnote.
type contender struct {
	name       string
	s1, s2, s3 func(b *testing.B, n int)
	s4         func(b *testing.B)
}

// contenders are benchmarked, and listed in the tables, in this order.
var contenders = []contender{
	{name: "eventbus", s1: eventbusS1(infoLogger), s2: eventbusS2(infoLogger, false), s3: eventbusS3(infoLogger, false), s4: eventbusS4(infoLogger)},
	{name: "eventbus-debug", s1: eventbusS1(debugLogger), s2: eventbusS2(debugLogger, false), s3: eventbusS3(debugLogger, false), s4: eventbusS4(debugLogger)},
	{name: "eventbus-async", s2: eventbusS2(infoLogger, true), s3: eventbusS3(infoLogger, true)},
	{name: "asaskevich", s1: asaskevichS1, s2: asaskevichS2, s3: asaskevichS3, s4: asaskevichS4},
	{name: "gookit", s1: gookitS1, s2: gookitS2, s3: gookitS3, s4: gookitS4},
	{name: "mustafaturan", s1: mustafaturanS1, s4: mustafaturanS4},
	{name: "kelindar", s1: kelindarMany, s2: kelindarMany, s3: kelindarS3, s4: kelindarS4},
	{name: "watermill", s1: watermillMany, s2: watermillMany, s3: watermillS3, s4: watermillS4},
	{name: "cskr", s1: cskrMany, s2: cskrMany, s3: cskrS3, s4: cskrS4},
	{name: "hub", s1: hubMany, s2: hubMany, s3: hubS3, s4: hubS4},
	{name: "baseline-direct", s1: directS1(false), s4: directS4(false)},
	{name: "baseline-direct-clock", s1: directS1(true), s4: directS4(true)},
	{name: "baseline-slog-debug", s1: slogS1, s4: slogS4},
	{name: "baseline-channel", s2: channelS2, s3: channelS3},
	{name: "baseline-workerpool", s2: workerPoolS2, s3: workerPoolS3},
	{name: "baseline-goroutine", s2: goroutineS2, s3: goroutineS3},
}

// BenchmarkS1 is inline fan-out: one event to n sync subscribers.
func BenchmarkS1(b *testing.B) {
	runScenario(b, []int{1, 10, 100}, func(c contender) func(*testing.B, int) { return c.s1 })
}

// BenchmarkS2 is async throughput: b.N events to n background subscribers,
// then a wait for every delivery.
func BenchmarkS2(b *testing.B) {
	runScenario(b, []int{1, 10}, func(c contender) func(*testing.B, int) { return c.s2 })
}

// BenchmarkS3 is publish-and-wait latency: one event to n background
// subscribers, and a wait for all of them, per operation.
func BenchmarkS3(b *testing.B) {
	runScenario(b, []int{1, 10}, func(c contender) func(*testing.B, int) { return c.s3 })
}

// BenchmarkS4 is parallel publishers: b.RunParallel publishing to s4Subs sync
// subscribers.
func BenchmarkS4(b *testing.B) {
	for _, c := range contenders {
		if c.s4 == nil {
			continue
		}
		b.Run("lib="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			c.s4(b)
		})
	}
}

func runScenario(b *testing.B, subs []int, scenario func(contender) func(*testing.B, int)) {
	for _, c := range contenders {
		run := scenario(c)
		if run == nil {
			continue
		}
		b.Run("lib="+c.name, func(b *testing.B) {
			for _, n := range subs {
				b.Run("subs="+strconv.Itoa(n), func(b *testing.B) {
					b.ReportAllocs()
					run(b, n)
				})
			}
		})
	}
}

// s4Subs is the number of subscribers in S4.
const s4Subs = 10

// topic is the topic, event name or pattern every peer publishes on.
const topic = "step.completed"

// benchEvent is what this bus and the baselines publish: the event of the
// library's own benchmarks, without an ID or timestamp, so that each Publish
// of this bus assigns both.
var benchEvent = eventbus.Event{
	ADWID:    "adw-42",
	Type:     eventbus.StepCompleted,
	Source:   "planner",
	Severity: eventbus.SeverityInfo,
	Message:  "step done",
}

// A peerEvent carries benchEvent's fields to the peers. They get a pointer,
// which fits in an interface value without an allocation.
type peerEvent struct {
	ADWID, Type, Source, Message string
	Severity                     int
}

var peerEv = &peerEvent{ADWID: "adw-42", Type: string(eventbus.StepCompleted), Source: "planner", Message: "step done", Severity: 1}

// stallTimeout is how long a wait for deliveries may see no handler run
// before the contender is declared to lose events.
const stallTimeout = 3 * time.Second

// A tally counts handler runs. Every handler in every scenario does exactly
// one thing: tally.hit. A waiter sets a target with await and is woken, over
// a channel, by the handler run that reaches it; nothing polls.
type tally struct {
	runs atomic.Int64
	want atomic.Int64  // -1 while nobody waits
	done chan bool     // true: a handler reached want; false: no progress for stallTimeout
	stop chan struct{} // closed at cleanup to end the watchdog
}

// newTally returns a tally whose watchdog ends when tb's run does.
func newTally(tb testing.TB) *tally {
	t := &tally{done: make(chan bool, 1), stop: make(chan struct{})}
	t.want.Store(-1)
	var watchdog sync.WaitGroup
	period := stallTimeout / 2
	watchdog.Go(func() { t.watch(period) })
	tb.Cleanup(func() {
		close(t.stop)
		watchdog.Wait()
	})
	return t
}

// hit records one handler run and wakes the waiter if it reaches the target.
func (t *tally) hit() {
	if t.runs.Add(1) == t.want.Load() {
		select {
		case t.done <- true:
		default: // a stale wake-up is still buffered; await re-checks runs
		}
	}
}

// watch wakes a waiter with false when handlers owe runs and none has
// happened for two periods. It only reads the counters.
func (t *tally) watch(period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	last, idle := int64(-1), 0
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		runs := t.runs.Load()
		if runs >= t.want.Load() || runs != last {
			last, idle = runs, 0
			continue
		}
		if idle++; idle >= 2 {
			select {
			case t.done <- false:
			default:
			}
		}
	}
}

// await waits until the handlers have run want times in all. It reports
// false if they stop short of that for stallTimeout.
func (t *tally) await(want int64) bool {
	t.want.Store(want)
	for t.runs.Load() < want {
		if !<-t.done {
			return t.runs.Load() >= want
		}
	}
	return true
}

// expect waits like await and fails b if events were lost.
func (t *tally) expect(b *testing.B, want int) {
	if !t.await(int64(want)) {
		b.Fatalf("loses events: handlers ran %d times, want %d (no progress for %v)", t.runs.Load(), want, stallTimeout)
	}
}

// verify fails b unless the handlers ran exactly want times. Call it when
// no more runs can come: after the contender was drained or closed.
func (t *tally) verify(b *testing.B, want int) {
	switch got := t.runs.Load(); {
	case got < int64(want):
		b.Fatalf("loses events: handlers ran %d times, want %d", got, want)
	case got > int64(want):
		b.Fatalf("duplicates events: handlers ran %d times, want %d", got, want)
	}
}

// parallelOps runs publish under b.RunParallel and returns how many times it
// ran. Each goroutine counts on its own and adds once at the end.
func parallelOps(b *testing.B, publish func() error) int {
	var ops atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		var local int64
		for pb.Next() {
			if err := publish(); err != nil {
				b.Error(err)
				break
			}
			local++
		}
		ops.Add(local)
	})
	return int(ops.Load())
}

// poolSize is the size of this bus's worker pool in S2 and S3, and of the
// worker-pool baseline.
func poolSize() int { return runtime.GOMAXPROCS(0) }
