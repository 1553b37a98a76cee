package eventbus

// This file holds the slow-handler watchdog. Each watchShard.mu guards its
// shard's lists of runs; the watchdog goroutine scans them.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// WithSlowHandlerThreshold makes the bus report handler runs that take long:
// a run still going after d is logged once at Warn ("handler slow", with
// subscription_id, subscription_name when set, event_type, event_id, adw_id,
// elapsed and threshold) and counted in Metrics.Slow. The run is not
// interrupted. One watchdog goroutine per bus, started with the first run,
// notices slow runs within a quarter of d (at least 1ms, at most 1s); no
// timer or goroutine is started per run, and each run takes a lock to enter
// and leave the watchdog's list while it is on. It panics if d <= 0.
func WithSlowHandlerThreshold(d time.Duration) Option {
	if d <= 0 {
		panic("eventbus: WithSlowHandlerThreshold: threshold must be positive")
	}
	return optionFunc(func(c *config) { c.slowAfter = d })
}

// A watchdog keeps the runs in progress, in one list per shard, and one
// goroutine scans them periodically for runs older than the threshold.
type watchdog struct {
	after    time.Duration
	shards   []watchShard
	start    sync.Once
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

type watchShard struct {
	mu   sync.Mutex
	head *runRecord // runs in progress
	free *runRecord // records to reuse, linked by next
	_    [64]byte
}

// A runRecord is one run in progress, with what a report needs of its event
// (copied: keeping a pointer would move every published event to the heap).
type runRecord struct {
	s          *subscription
	typ        EventType
	id         uuid.UUID
	adwID      string
	start      int64 // mono
	warned     bool  // guarded by the shard's mu
	shard      int
	prev, next *runRecord
}

func (w *watchdog) init(after time.Duration, shards int) {
	w.after = after
	w.shards = make([]watchShard, shards)
	w.stop = make(chan struct{})
}

// on reports whether the watchdog is on (WithSlowHandlerThreshold).
func (w *watchdog) on() bool { return w.after > 0 }

// watchStart records c, a run that starts now, in shard sh, and starts the
// watchdog with the first one. The caller holds an accepted event, so
// Shutdown is not yet waiting for the watchdog.
func (b *Bus) watchStart(c *call, sh int) *runRecord {
	w := &b.watch
	w.start.Do(func() { w.done.Go(b.watchLoop) })
	ws := &w.shards[sh]
	e := &c.ref.d.e
	ws.mu.Lock()
	r := ws.free
	if r != nil {
		ws.free = r.next
	} else {
		r = new(runRecord)
	}
	*r = runRecord{s: c.slot.s, typ: e.Type, id: e.ID, adwID: e.ADWID, start: c.start, shard: sh}
	r.next = ws.head
	if ws.head != nil {
		ws.head.prev = r
	}
	ws.head = r
	ws.mu.Unlock()
	return r
}

// watchEnd removes a finished run's record.
func (b *Bus) watchEnd(r *runRecord) {
	w := &b.watch
	ws := &w.shards[r.shard]
	ws.mu.Lock()
	if r.prev == nil {
		ws.head = r.next
	} else {
		r.prev.next = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	}
	*r = runRecord{next: ws.free}
	ws.free = r
	ws.mu.Unlock()
}

// A slowRun is what the watchdog reports of a slow run.
type slowRun struct {
	s       *subscription
	typ     EventType
	id      uuid.UUID
	adwID   string
	elapsed time.Duration
}

// watchLoop is the watchdog goroutine. It exits when Shutdown stops it, or
// on its own once the bus is closed and every accepted event has finished
// (after a Shutdown that gave up waiting, say).
func (b *Bus) watchLoop() {
	w := &b.watch
	tick := min(max(w.after/4, time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var slow []slowRun
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		now, live := b.clock.mono(), false
		slow = slow[:0]
		for i := range w.shards {
			ws := &w.shards[i]
			ws.mu.Lock()
			for r := ws.head; r != nil; r = r.next {
				live = true
				if elapsed := time.Duration(now - r.start); !r.warned && elapsed >= w.after {
					r.warned = true
					slow = append(slow, slowRun{s: r.s, typ: r.typ, id: r.id, adwID: r.adwID, elapsed: elapsed})
				}
			}
			ws.mu.Unlock()
		}
		for i := range slow {
			b.reportSlow(&slow[i])
			slow[i] = slowRun{}
		}
		if !live && b.life.closed.Load() && b.life.finished() {
			return
		}
	}
}

// reportSlow counts and logs one slow run.
func (b *Bus) reportSlow(r *slowRun) {
	b.m.slow.Add(1)
	ctx := context.Background()
	if !b.enabled(ctx, slog.LevelWarn) {
		return
	}
	defer func() { _ = recover() }() // a logger's own failure loses the line only
	var buf [8]slog.Attr
	attrs := append(runAttrs(buf[:0], r.s, r.typ, r.id, r.adwID),
		slog.Duration("elapsed", r.elapsed),
		slog.Duration("threshold", b.watch.after),
	)
	b.log.LogAttrs(ctx, slog.LevelWarn, "handler slow", attrs...)
}

// stopWatchdog stops the watchdog, if it was started, and waits for it.
// Shutdown calls it once every accepted event has finished.
func (b *Bus) stopWatchdog() {
	if b.watch.stop == nil {
		return
	}
	b.watch.start.Do(func() {}) // never start it after this
	b.watch.stopOnce.Do(func() { close(b.watch.stop) })
	b.watch.done.Wait()
}
