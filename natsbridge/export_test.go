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

// AwaitingAck returns how many JetStream exports of b await their
// acknowledgement now.
func (b *Bridge) AwaitingAck() int { return len(b.window) }

// PublishWindow is the most JetStream exports that await their
// acknowledgement at once.
const PublishWindow = publishWindow
