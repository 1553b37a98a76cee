package bench

import (
	"context"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mustafaturan/bus/v3"
)

// newMustafaturan returns a bus with topic registered and n handlers
// matching it. Its README takes event IDs from any unique generator (it shows
// monoton); a counter is the cheapest.
func newMustafaturan(b *testing.B, t *tally, n int) *bus.Bus {
	var seq atomic.Uint64
	next := bus.Next(func() string { return strconv.FormatUint(seq.Add(1), 10) })
	mb, err := bus.NewBus(next)
	if err != nil {
		b.Fatal(err)
	}
	mb.RegisterTopics(topic)
	for i := range n {
		mb.RegisterHandler("h"+strconv.Itoa(i), bus.Handler{
			Handle:  func(context.Context, bus.Event) { t.hit() },
			Matcher: "^" + regexp.QuoteMeta(topic) + "$",
		})
	}
	return mb
}

func mustafaturanS1(b *testing.B, n int) {
	t := newTally(b)
	mb := newMustafaturan(b, t, n)
	ctx := context.Background()
	ops := 0
	for b.Loop() {
		if err := mb.Emit(ctx, topic, peerEv); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	t.verify(b, ops*n)
}

func mustafaturanS4(b *testing.B) {
	t := newTally(b)
	mb := newMustafaturan(b, t, s4Subs)
	ctx := context.Background()
	b.ResetTimer()
	ops := parallelOps(b, func() error { return mb.Emit(ctx, topic, peerEv) })
	b.StopTimer()
	t.verify(b, ops*s4Subs)
}
