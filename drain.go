package eventbus

import (
	"context"
	"sync/atomic"
)

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

func closedGeneration(shards int) *generation {
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
func (b *Bus) acquire(sh int) *generation {
	for {
		g := b.gen.Load()
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

// sealLocked installs next as the current generation and drops the old one's
// tokens. b.lifeMu must be held.
func (b *Bus) sealLocked(next *generation) {
	old := b.gen.Swap(next)
	b.sealed = append(b.sealed, old)
	for sh := range old.shards {
		old.release(sh)
	}
}

// unfinishedLocked forgets the sealed generations that have finished and
// returns the others, oldest first. b.lifeMu must be held.
func (b *Bus) unfinishedLocked() []*generation {
	live := b.sealed[:0]
	for _, g := range b.sealed {
		select {
		case <-g.done:
		default:
			live = append(live, g)
		}
	}
	clear(b.sealed[len(live):])
	b.sealed = live
	return append([]*generation(nil), live...)
}

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
