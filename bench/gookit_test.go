package bench

import (
	"testing"

	"github.com/gookit/event"
)

// gookitParams is the data of every fired event, built once.
var gookitParams = event.M{"event": peerEv}

// newGookit returns a manager with its default options (3 consumer
// goroutines and a channel of 100 for FireC) and n listeners on topic.
func newGookit(t *tally, n int) *event.Manager {
	em := event.NewManager("bench")
	for range n {
		em.On(topic, event.ListenerFunc(func(event.Event) error { t.hit(); return nil }))
	}
	return em
}

func gookitS1(b *testing.B, n int) {
	t := newTally(b)
	em := newGookit(t, n)
	ops := 0
	for b.Loop() {
		if err, _ := em.Fire(topic, gookitParams); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	t.verify(b, ops*n)
}

// gookitS2 queues b.N events with FireC and waits with CloseWait, the one
// wait gookit offers; it also shuts the manager down.
func gookitS2(b *testing.B, n int) {
	t := newTally(b)
	em := newGookit(t, n)
	b.ResetTimer()
	for range b.N {
		em.FireC(topic, gookitParams)
	}
	if err := em.CloseWait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	t.verify(b, b.N*n)
}

// gookitS3 has no per-event wait to call, so it waits on the handlers'
// own count after each FireC.
func gookitS3(b *testing.B, n int) {
	t := newTally(b)
	em := newGookit(t, n)
	ops := 0
	for b.Loop() {
		em.FireC(topic, gookitParams)
		ops++
		t.expect(b, ops*n)
	}
	if err := em.CloseWait(); err != nil {
		b.Fatal(err)
	}
	t.verify(b, ops*n)
}

func gookitS4(b *testing.B) {
	t := newTally(b)
	em := newGookit(t, s4Subs)
	b.ResetTimer()
	ops := parallelOps(b, func() error {
		err, _ := em.Fire(topic, gookitParams)
		return err
	})
	b.StopTimer()
	t.verify(b, ops*s4Subs)
}
