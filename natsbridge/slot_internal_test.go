package natsbridge

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestAcksGoOutInBatches checks when an import goroutine sends the
// acknowledgements it gathered: once a batch is full, or once nothing is
// left to import (before it fetches, which may wait), never one by one
// while messages wait their turn.
func TestAcksGoOutInBatches(t *testing.T) {
	tests := []struct {
		name        string
		acks, queue int
		want        bool
	}{
		{"nothing gathered", 0, 0, false},
		{"one, nothing left to import", 1, 0, true},
		{"one, more to import", 1, 5, false},
		{"a batch less one, more to import", ackBatch - 1, 5, false},
		{"a full batch, more to import", ackBatch, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s slot
			s.add(make([]jetstream.Msg, tt.queue))
			for range tt.acks {
				s.queueAck(nil)
			}
			if got := s.acksDue(); got != tt.want {
				t.Errorf("acksDue() = %v, want %v", got, tt.want)
			}
			if got := len(s.takeAcks()); got != tt.acks {
				t.Errorf("len(takeAcks()) = %d, want %d", got, tt.acks)
			}
			if s.acksDue() {
				t.Error("acksDue() after takeAcks")
			}
		})
	}
}

// TestFetchSizeFollowsTheHandlers checks how many messages an import
// goroutine fetches: few the first time, then as many as it imported in
// batchWork, at least one and at most fetchBatch; so fast handlers get
// large batches and slow ones leave the backlog to the other members of a
// queue group.
func TestFetchSizeFollowsTheHandlers(t *testing.T) {
	tests := []struct {
		name string
		n    int
		took time.Duration
		want int
	}{
		{"10µs each", 8, 80 * time.Microsecond, fetchBatch},
		{"1ms each", 8, 8 * time.Millisecond, 100},
		{"10ms each", 20, 200 * time.Millisecond, 10},
		{"100ms each", 5, 500 * time.Millisecond, 1},
		{"a second each", 1, time.Second, 1},
		{"no time at all", 256, 0, fetchBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := batchFor(tt.n, tt.took); got != tt.want {
				t.Errorf("batchFor(%d, %v) = %d, want %d", tt.n, tt.took, got, tt.want)
			}
		})
	}

	var f fetchSizer
	if got := f.next(); got != firstFetch {
		t.Fatalf("first next() = %d, want %d", got, firstFetch)
	}
	f.fetched(0) // nothing came: the size stays
	if got := f.next(); got != firstFetch {
		t.Errorf("next() after an empty fetch = %d, want %d", got, firstFetch)
	}
	f.fetched(firstFetch) // imported at once
	if got := f.next(); got != fetchBatch {
		t.Errorf("next() after a fast batch = %d, want %d", got, fetchBatch)
	}
}
