package eventbus

import (
	"context"
	"log/slog"
	"testing"
)

// A lane that never goes idle, because each run publishes the next event of
// its own key (a workflow driving itself step by step), keeps its parked
// list short: memory follows the runs waiting, not the events seen.
func TestLaneStaysSmallWhenNeverIdle(t *testing.T) {
	b := New(WithLogger(slog.New(slog.DiscardHandler)), WithMaxWorkers(2))
	defer b.Close()
	const steps = 20000
	done := make(chan struct{})
	var sub *subscription
	var maxCap, n int
	id, err := b.Subscribe(func(e Event) error {
		n++ // ordered: never two runs at once
		sub.lanes.mu.Lock()
		if l := sub.lanes.busy["wf"]; l != nil {
			maxCap = max(maxCap, cap(l.parked))
		}
		sub.lanes.mu.Unlock()
		if n == steps {
			close(done)
			return nil
		}
		return b.Publish(context.Background(), Event{Type: "step", ADWID: "wf"})
	}, Ordered())
	if err != nil {
		t.Fatal(err)
	}
	b.subsMu.Lock()
	sub = b.byID[id]
	b.subsMu.Unlock()
	if err := b.Publish(context.Background(), Event{Type: "step", ADWID: "wf"}); err != nil {
		t.Fatal(err)
	}
	<-done
	if maxCap > 128 {
		t.Errorf("after %d chained events, the lane's parked list has room for %d", steps, maxCap)
	}
}
