package bench

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The tally is what decides "loses events", so it is tested on its own.

func TestTallyAwait(t *testing.T) {
	tl := newTally(t)
	const goroutines, perGoroutine = 4, 10000
	for round := 1; round <= 3; round++ {
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range perGoroutine {
					tl.hit()
				}
			})
		}
		want := int64(round * goroutines * perGoroutine)
		if !tl.await(want) {
			t.Fatalf("round %d: await(%d) = false after %d runs", round, want, tl.runs.Load())
		}
		if got := tl.runs.Load(); got != want {
			t.Fatalf("round %d: await returned at %d runs, want %d", round, got, want)
		}
		wg.Wait()
	}
}

func TestTallyAwaitOneAtATime(t *testing.T) {
	// As in S3: the target moves up by n per event and a stale wake-up from
	// an earlier event must not end a later wait early.
	tl := newTally(t)
	const n = 3
	for op := 1; op <= 1000; op++ {
		go func() {
			for range n {
				tl.hit()
			}
		}()
		if !tl.await(int64(op * n)) {
			t.Fatalf("op %d: await = false", op)
		}
		if got := tl.runs.Load(); got < int64(op*n) {
			t.Fatalf("op %d: await returned at %d runs, want %d", op, got, op*n)
		}
	}
}

// TestTallyStall and TestTallyNoTarget run in a synctest bubble, where the
// watchdog's ticker runs on fake time: no real waiting.

func TestTallyStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tl := newTally(t)
		tl.hit()
		tl.hit()
		start := time.Now()
		if tl.await(3) {
			t.Fatal("await(3) after 2 runs = true, want false")
		}
		if waited := time.Since(start); waited < stallTimeout {
			t.Errorf("await gave up after %v, before stallTimeout %v", waited, stallTimeout)
		}
		tl.hit()
		if !tl.await(3) {
			t.Error("await(3) after 3 runs = false, want true")
		}
	})
}

func TestTallyNoTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tl := newTally(t)
		tl.hit()
		time.Sleep(10 * stallTimeout) // fake time: the watchdog must not fire while nobody waits
		select {
		case v := <-tl.done:
			t.Errorf("done got %v with no target set", v)
		default:
		}
	})
}
