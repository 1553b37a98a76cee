//go:build unix

package natstest

import (
	"os"
	"syscall"
)

// terminate asks the server to shut down, as systemd would.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
