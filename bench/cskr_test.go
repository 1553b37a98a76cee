package bench

import (
	"sync"
	"testing"

	"github.com/cskr/pubsub/v2"
)

// newCskr returns a PubSub with n subscriber channels of capacity 0, as in
// the package example, each drained by a goroutine, and a stop func that
// shuts the PubSub down and waits for those goroutines. stop also runs at
// cleanup.
func newCskr(b *testing.B, t *tally, n int) (*pubsub.PubSub[string, *peerEvent], func()) {
	ps := pubsub.New[string, *peerEvent](0)
	var consumers sync.WaitGroup
	for range n {
		ch := ps.Sub(topic)
		consumers.Go(func() {
			for range ch {
				t.hit()
			}
		})
	}
	stop := sync.OnceFunc(func() {
		ps.Shutdown()
		consumers.Wait()
	})
	b.Cleanup(stop)
	return ps, stop
}

// cskrMany is S1 and S2: Pub hands the message to the PubSub's goroutine and
// returns, so it waits, timed, on the handlers' count.
func cskrMany(b *testing.B, n int) {
	t := newTally(b)
	ps, stop := newCskr(b, t, n)
	b.ResetTimer()
	for range b.N {
		ps.Pub(peerEv, topic)
	}
	t.expect(b, b.N*n)
	b.StopTimer()
	stop()
	t.verify(b, b.N*n)
}

func cskrS3(b *testing.B, n int) {
	t := newTally(b)
	ps, stop := newCskr(b, t, n)
	ops := 0
	for b.Loop() {
		ps.Pub(peerEv, topic)
		ops++
		t.expect(b, ops*n)
	}
	stop()
	t.verify(b, ops*n)
}

func cskrS4(b *testing.B) {
	t := newTally(b)
	ps, stop := newCskr(b, t, s4Subs)
	b.ResetTimer()
	ops := parallelOps(b, func() error { ps.Pub(peerEv, topic); return nil })
	t.expect(b, ops*s4Subs)
	b.StopTimer()
	stop()
	t.verify(b, ops*s4Subs)
}
