package dashboard

import (
	"sync"
	"testing"
	"time"

	"github.com/adws/eventbus"
)

// BenchmarkIntakeHandle times the dashboard's bus handler alone, with a
// goroutine taking the buffered events every millisecond as the pump does.
// The bus's own cost per handler run comes on top (see bench_test.go).
func BenchmarkIntakeHandle(b *testing.B) {
	in := newIntake(defaultIntake)
	done := make(chan struct{})
	var taker sync.WaitGroup
	taker.Go(func() {
		prev := make([]eventbus.Event, 0, defaultIntake)
		tick := time.NewTicker(batchWindow)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			prev, _ = in.take(prev)
		}
	})
	e := eventbus.Event{ADWID: "adw-42", Type: eventbus.StepCompleted, Source: "planner", Message: "step done"}
	b.ReportAllocs()
	for b.Loop() {
		_ = in.handle(e)
	}
	b.StopTimer()
	close(done)
	taker.Wait()
}
