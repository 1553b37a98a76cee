//go:build !unix

package natstest

import "os"

// terminate stops the server; without SIGTERM, it kills it.
func terminate(p *os.Process) error { return p.Kill() }
