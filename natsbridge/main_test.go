package natsbridge_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: the bridge's,
// the buses', the clients' and the embedded servers'.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
