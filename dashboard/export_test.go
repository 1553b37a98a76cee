package dashboard

import "context"

// WaitRecorded waits until s has recorded the event (or loss) with
// sequence number seq, woken by the ring rather than by polling.
func WaitRecorded(ctx context.Context, s *Server, seq uint64) error {
	for {
		head, changed := s.ring.newest()
		if head >= seq {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitTaken waits until s has recorded or dropped n events in all.
func WaitTaken(ctx context.Context, s *Server, n uint64) error {
	for {
		_, changed := s.ring.newest()
		if s.recorded.Load()+s.in.dropped.Load() >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
