package natsbridge

import "testing"

// TestTermReasonOnlyWhereHonoured holds the choice between TermWithReason
// and Term to the servers' versions: a reason only for 2.10.4 and later,
// which honour it; older servers, and a version that cannot be told (not
// connected), get a plain Term, which every server from 2.9 honours.
func TestTermReasonOnlyWhereHonoured(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"2.9.10", false}, // Debian bookworm
		{"2.10.3", false},
		{"2.10.4-RC.1", false},
		{"2.10.4", true},
		{"v2.10.4", true},
		{"2.10.10", true}, // numbers, not text: "10" > "4"
		{"2.11.0-RC.1", true},
		{"2.15.2", true}, // the embedded server
		{"3.0.0", true},
		{"", false}, // not connected
		{"2.10", false},
		{"2.10.x", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := atLeast(tt.version, termReasonVersion); got != tt.want {
			t.Errorf("atLeast(%q, %v) = %v, want %v", tt.version, termReasonVersion, got, tt.want)
		}
	}
}
