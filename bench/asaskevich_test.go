package bench

import (
	"testing"

	asaskevich "github.com/asaskevich/EventBus"
)

// newAsaskevich returns a bus with n handlers on topic; async subscribes them
// with SubscribeAsync(topic, fn, false), as in its README.
func newAsaskevich(b *testing.B, t *tally, n int, async bool) asaskevich.Bus {
	bus := asaskevich.New()
	for range n {
		handler := func(*peerEvent) { t.hit() }
		var err error
		if async {
			err = bus.SubscribeAsync(topic, handler, false)
		} else {
			err = bus.Subscribe(topic, handler)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(bus.WaitAsync)
	return bus
}

func asaskevichS1(b *testing.B, n int) {
	t := newTally(b)
	bus := newAsaskevich(b, t, n, false)
	ops := 0
	for b.Loop() {
		bus.Publish(topic, peerEv)
		ops++
	}
	t.verify(b, ops*n)
}

func asaskevichS2(b *testing.B, n int) {
	t := newTally(b)
	bus := newAsaskevich(b, t, n, true)
	b.ResetTimer()
	for range b.N {
		bus.Publish(topic, peerEv)
	}
	bus.WaitAsync()
	b.StopTimer()
	t.verify(b, b.N*n)
}

func asaskevichS3(b *testing.B, n int) {
	t := newTally(b)
	bus := newAsaskevich(b, t, n, true)
	ops := 0
	for b.Loop() {
		bus.Publish(topic, peerEv)
		bus.WaitAsync()
		ops++
	}
	t.verify(b, ops*n)
}

func asaskevichS4(b *testing.B) {
	t := newTally(b)
	bus := newAsaskevich(b, t, s4Subs, false)
	b.ResetTimer()
	ops := parallelOps(b, func() error { bus.Publish(topic, peerEv); return nil })
	b.StopTimer()
	t.verify(b, ops*s4Subs)
}
