package bench

import (
	"context"
	"testing"
	"time"

	"github.com/kelindar/event"
)

// A kelindarEvent is peerEv with the event type kelindar dispatches on.
type kelindarEvent struct{ *peerEvent }

func (kelindarEvent) Type() uint32 { return 1 }

var kelindarEv = kelindarEvent{peerEv}

// newKelindar returns a dispatcher with n subscribers. kelindar delivers
// asynchronously only: each subscriber has a goroutine and a queue, woken by
// the dispatcher's ticker.
func newKelindar(b *testing.B, t *tally, n int) *event.Dispatcher {
	d := event.NewDispatcher()
	cancels := make([]context.CancelFunc, n)
	for i := range cancels {
		cancels[i] = event.Subscribe(d, func(kelindarEvent) { t.hit() })
	}
	b.Cleanup(func() {
		for _, cancel := range cancels {
			cancel()
		}
		// Close stops only the ticker; a cancelled subscriber's goroutine
		// exits at the next tick (every 500µs), so let two pass first.
		// Teardown only: no measurement or check depends on this sleep.
		time.Sleep(time.Millisecond)
		if err := d.Close(); err != nil {
			b.Error(err)
		}
	})
	return d
}

// kelindarMany is S1 and S2: publish b.N events, then wait, timed, until
// every handler has run for every one of them.
func kelindarMany(b *testing.B, n int) {
	t := newTally(b)
	d := newKelindar(b, t, n)
	b.ResetTimer()
	for range b.N {
		event.Publish(d, kelindarEv)
	}
	t.expect(b, b.N*n)
	b.StopTimer()
	t.verify(b, b.N*n)
}

func kelindarS3(b *testing.B, n int) {
	t := newTally(b)
	d := newKelindar(b, t, n)
	ops := 0
	for b.Loop() {
		event.Publish(d, kelindarEv)
		ops++
		t.expect(b, ops*n)
	}
	t.verify(b, ops*n)
}

func kelindarS4(b *testing.B) {
	t := newTally(b)
	d := newKelindar(b, t, s4Subs)
	b.ResetTimer()
	ops := parallelOps(b, func() error { event.Publish(d, kelindarEv); return nil })
	t.expect(b, ops*s4Subs)
	b.StopTimer()
	t.verify(b, ops*s4Subs)
}
