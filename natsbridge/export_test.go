package natsbridge

// TermReasonFor returns the reason that a Bridge connected to a server of
// the given version gives when it terminates a message: "" when it sends
// a plain Term.
func TermReasonFor(serverVersion string) string {
	if atLeast(serverVersion, termReasonVersion) {
		return termReason
	}
	return ""
}
