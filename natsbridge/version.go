package natsbridge

import (
	"strconv"
	"strings"
)

// This file holds what the Bridge does differently by server version.
// JetStream mode needs nats-server 2.9.0 or later: nats.go's jetstream
// package, which the Bridge uses, "requires nats-server >= 2.9.0 to work
// correctly" (its README). Features of later servers are used only when
// the connected server says it has them.

// termReason is the reason given for terminating a message that does not
// decode. It appears in the server's MSG_TERMINATED advisory, on servers
// that take a reason.
const termReason = "malformed"

// termReasonVersion is the first nats-server that honours a reason given
// with a termination (+TERM reason). Earlier servers ignore such a
// message altogether, as nats.go's TermWithReason documents: the message
// is not terminated, and comes back after AckWait.
var termReasonVersion = version{2, 10, 4}

// A version is a server's major, minor and patch number.
type version [3]int

// parseVersion reads "2.10.4", "v2.10.4" or "2.11.0-RC.1" (a pre-release,
// which comes before 2.11.0). It reports false for anything else, such as
// the empty version of a connection that is not connected.
func parseVersion(s string) (v version, prerelease, ok bool) {
	s = strings.TrimPrefix(s, "v")
	s, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return version{}, false, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return version{}, false, false
		}
		v[i] = n
	}
	return v, hasPre && pre != "", true
}

// atLeast reports whether the server version s is min or later. A version
// that does not parse is not.
func atLeast(s string, min version) bool {
	v, pre, ok := parseVersion(s)
	if !ok {
		return false
	}
	for i := range v {
		if v[i] != min[i] {
			return v[i] > min[i]
		}
	}
	return !pre // 2.10.4-RC.1 comes before 2.10.4
}
