package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a benchmark leaves a goroutine behind: a
// bridge's, a bus's, a peer's, a client's or the embedded server's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
