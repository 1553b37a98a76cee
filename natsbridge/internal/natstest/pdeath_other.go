//go:build !linux

package natstest

import "os/exec"

// setParentDeathSignal does nothing here: only Linux kills a child when its
// parent dies. Stop still ends the server when the test ends.
func setParentDeathSignal(*exec.Cmd) {}
