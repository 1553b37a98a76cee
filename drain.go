package eventbus

// This file holds what Drain and Shutdown wait for: the accepted events
// that have not finished, counted in generations. lifecycle.mu guards
// sealed; the current generation is read and swapped atomically, and its
// counters are atomic.

import (
	"context"
	"sync"
	"sync/atomic"
)

// A lifecycle tracks a bus from New to Shutdown.
type lifecycle struct {
	gen    atomic.Pointer[generation] // counts the events accepted since the last seal
	mu     sync.Mutex                 // guards sealed
	sealed []*generation              // generations Drain or Shutdown wait for
	closed atomic.Bool                // set by Shutdown before it seals the final generation
	shards int

	// stop is cancelled when Shutdown gives up waiting; it ends the ctx of
	// the handlers that take one.
	stop   context.Context
	giveUp context.CancelFunc
	// background is the detached ctx of context.Background, made once.
	background detached
}

func (lc *lifecycle) init(b *Bus, shards int) {
	lc.shards = shards
	lc.gen.Store(newGeneration(shards))
	lc.stop, lc.giveUp = context.WithCancel(context.Background())
	lc.background = detached{values: context.Background(), life: lc, bus: b}
}

// A generation counts accepted events that have not finished, in one counter
// per shard so that publishers on different cores do not contend. The
// current generation holds one token per shard; Drain and Shutdown seal it
// (install a new one and drop the tokens) and wait until every shard of it
// reaches zero.
type generation struct {
	shards []genShard
	left   atomic.Int32  // shards not yet at zero
	done   chan struct{} // closed when left reaches zero
	final  bool          // installed by Shutdown: accepts nothing
}

type genShard struct {
	n atomic.Int64
	_ [120]byte // a cache line (and its prefetched pair) per shard
}

func newGeneration(shards int) *generation {
	g := &generation{shards: make([]genShard, shards), done: make(chan struct{})}
	for i := range g.shards {
		g.shards[i].n.Store(1)
	}
	g.left.Store(int32(shards))
	return g
}

func finalGeneration(shards int) *generation {
	g := &generation{shards: make([]genShard, shards), done: make(chan struct{}), final: true}
	close(g.done)
	return g
}

// busy reports whether g counts any event: a scan that sees only the tokens
// proves that every event accepted before it began has finished.
func (g *generation) busy() bool {
	var n int64
	for i := range g.shards {
		n += g.shards[i].n.Load()
	}
	return n > int64(len(g.shards))
}

// acquire counts one accepted event in shard sh of the current generation;
// it returns nil once the bus is closed.
func (lc *lifecycle) acquire(sh int) *generation {
	for {
		g := lc.gen.Load()
		c := &g.shards[sh].n
		n := c.Load()
		if n == 0 {
			if g.final {
				return nil
			}
			continue // sealed and finished: its successor is already installed
		}
		if c.CompareAndSwap(n, n+1) {
			return g
		}
	}
}

// release ends one count (or the token) of shard sh. A shard's count reaches
// zero only once, after its token is dropped, and acquire never counts in a
// shard at zero.
func (g *generation) release(sh int) {
	if g.shards[sh].n.Add(-1) == 0 && g.left.Add(-1) == 0 {
		close(g.done)
	}
}

// seal starts a new generation, if the current one counts any event and the
// bus is open, and returns the generations not yet finished: what Drain
// waits for.
func (lc *lifecycle) seal() []*generation {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !lc.closed.Load() && lc.gen.Load().busy() {
		lc.sealLocked(newGeneration(lc.shards))
	}
	return lc.unfinishedLocked()
}

// close refuses every later event and subscription, and reports whether
// this call did it (the first Shutdown). subsMu is the registry's lock:
// holding it while closing makes every Subscribe either finish first or
// see the bus closed.
func (lc *lifecycle) close(subsMu *sync.Mutex) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.closed.Load() {
		return false
	}
	subsMu.Lock()
	lc.closed.Store(true)
	subsMu.Unlock()
	lc.sealLocked(finalGeneration(lc.shards))
	return true
}

// unfinished returns the sealed generations that have not finished.
func (lc *lifecycle) unfinished() []*generation {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.unfinishedLocked()
}

// finished reports whether every event accepted before the last seal has
// finished.
func (lc *lifecycle) finished() bool { return len(lc.unfinished()) == 0 }

// sealLocked installs next as the current generation and drops the old one's
// tokens. lc.mu must be held.
func (lc *lifecycle) sealLocked(next *generation) {
	old := lc.gen.Swap(next)
	lc.sealed = append(lc.sealed, old)
	for sh := range old.shards {
		old.release(sh)
	}
}

// unfinishedLocked forgets the sealed generations that have finished and
// returns the others, oldest first. lc.mu must be held.
func (lc *lifecycle) unfinishedLocked() []*generation {
	live := lc.sealed[:0]
	for _, g := range lc.sealed {
		select {
		case <-g.done:
		default:
			live = append(live, g)
		}
	}
	clear(lc.sealed[len(live):])
	lc.sealed = live
	return append([]*generation(nil), live...)
}

// waitAll waits until every generation in gens has finished, or ctx ends.
func waitAll(ctx context.Context, gens []*generation) error {
	for _, g := range gens {
		select {
		case <-g.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
