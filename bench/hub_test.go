package bench

import (
	"sync"
	"testing"

	"github.com/leandro-lugaresi/hub"
)

// hubFields is the data of every published message, built once.
var hubFields = hub.Fields{"event": peerEv}

// newHub returns a hub with n blocking subscriptions of capacity 10, as in
// its README, each drained by a goroutine, and a stop func that closes the
// hub and waits for those goroutines. stop also runs at cleanup.
func newHub(b *testing.B, t *tally, n int) (*hub.Hub, func()) {
	h := hub.New()
	var consumers sync.WaitGroup
	for range n {
		sub := h.Subscribe(10, topic)
		consumers.Go(func() {
			for range sub.Receiver {
				t.hit()
			}
		})
	}
	stop := sync.OnceFunc(func() {
		h.Close()
		consumers.Wait()
	})
	b.Cleanup(stop)
	return h, stop
}

func hubPublish(h *hub.Hub) { h.Publish(hub.Message{Name: topic, Fields: hubFields}) }

// hubMany is S1 and S2: Publish returns once every subscription's channel
// took the message, so it waits, timed, on the handlers' count.
func hubMany(b *testing.B, n int) {
	t := newTally(b)
	h, stop := newHub(b, t, n)
	b.ResetTimer()
	for range b.N {
		hubPublish(h)
	}
	t.expect(b, b.N*n)
	b.StopTimer()
	stop()
	t.verify(b, b.N*n)
}

func hubS3(b *testing.B, n int) {
	t := newTally(b)
	h, stop := newHub(b, t, n)
	ops := 0
	for b.Loop() {
		hubPublish(h)
		ops++
		t.expect(b, ops*n)
	}
	stop()
	t.verify(b, ops*n)
}

func hubS4(b *testing.B) {
	t := newTally(b)
	h, stop := newHub(b, t, s4Subs)
	b.ResetTimer()
	ops := parallelOps(b, func() error { hubPublish(h); return nil })
	t.expect(b, ops*s4Subs)
	b.StopTimer()
	stop()
	t.verify(b, ops*s4Subs)
}
