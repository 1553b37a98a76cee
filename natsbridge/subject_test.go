package natsbridge_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEscapeToken(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"adw-7", "adw-7"},
		{"step_failed", "step_failed"},
		{"", "_"},
		{"_", "%5F"},
		{"__", "__"},
		{"a.b", "a%2Eb"},
		{"*", "%2A"},
		{">", "%3E"},
		{"a b\tc\nd", "a%20b%09c%0Ad"},
		{"100%", "100%25"},
		{"%2E", "%252E"},
		{"\x00\x7f", "%00%7F"},
		{"é✓", "é✓"},
		{"no\u00a0break", "no%C2%A0break"}, // Unicode space
		{"bad\xffutf8", "bad%FFutf8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := natsbridge.EscapeToken(tt.in)
			assert.Equal(t, tt.want, got, "EscapeToken(%q)", tt.in)
			back, err := natsbridge.UnescapeToken(got)
			require.NoError(t, err)
			assert.Equal(t, tt.in, back, "UnescapeToken(%q)", got)
		})
	}
}

func TestUnescapeTokenRejects(t *testing.T) {
	for _, token := range []string{"", "a.b", "*", ">", "a b", "%", "%4", "%GG", "50%", "%2e",
		// Escapes EscapeToken never writes: each would be a second subject
		// for a value that already has one.
		"%41dw-7", "%5Fx", "x%5F", "%C3%A9", "%2D", "%5F%5F"} {
		_, err := natsbridge.UnescapeToken(token)
		assert.ErrorIs(t, err, natsbridge.ErrMalformed, "UnescapeToken(%q)", token)
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		typ  eventbus.EventType
		adw  string
		want string
	}{
		{eventbus.StepFailed, "adw-7", "adws.events.step_failed.adw-7"},
		{eventbus.StepFailed, "", "adws.events.step_failed._"},
		{"billing.invoice", "run 1", "adws.events.billing%2Einvoice.run%201"},
	}
	for _, tt := range tests {
		got := natsbridge.Subject(natsbridge.DefaultSubjectPrefix, eventbus.Event{Type: tt.typ, ADWID: tt.adw})
		assert.Equal(t, tt.want, got)
		typ, adw, err := natsbridge.ParseSubject(natsbridge.DefaultSubjectPrefix, got)
		require.NoError(t, err)
		assert.Equal(t, tt.typ, typ)
		assert.Equal(t, tt.adw, adw)
	}
	for _, bad := range []string{"other.step_failed._", "adws.events.step_failed", "adws.events.a.b.c", "adws.events.a.%"} {
		_, _, err := natsbridge.ParseSubject(natsbridge.DefaultSubjectPrefix, bad)
		assert.True(t, errors.Is(err, natsbridge.ErrMalformed), "ParseSubject(%q) = %v", bad, err)
	}
}

// FuzzEscapeToken checks that EscapeToken always makes one valid token
// without wildcards or whitespace, that UnescapeToken reverses it, and so
// that two values never share a token.
func FuzzEscapeToken(f *testing.F) {
	for _, s := range []string{"", "_", "a.b", "*", ">", "%", "% 2", "\xff", "\u2028", "adw-7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		token := natsbridge.EscapeToken(s)
		if token == "" || strings.ContainsAny(token, ".*>") || strings.IndexFunc(token, unicode.IsSpace) >= 0 {
			t.Fatalf("EscapeToken(%q) = %q, not a plain token", s, token)
		}
		back, err := natsbridge.UnescapeToken(token)
		if err != nil || back != s {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", s, back, err)
		}
	})
}

// FuzzUnescapeToken checks the other half of the bijection: any token that
// UnescapeToken accepts is the one EscapeToken makes of its value, so no
// two subjects name the same (type, workflow id) pair.
func FuzzUnescapeToken(f *testing.F) {
	for _, s := range []string{"_", "%5F", "%5Fx", "%41dw-7", "%C3%A9", "a%2Eb", "%25", "adw-7", "%FF", "%C2%A0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		s, err := natsbridge.UnescapeToken(token)
		if err != nil {
			return
		}
		if canonical := natsbridge.EscapeToken(s); canonical != token {
			t.Fatalf("UnescapeToken(%q) = %q, but EscapeToken(%q) = %q", token, s, s, canonical)
		}
	})
}

// TestSubjectsOnTheServer exports events with awkward types and workflow ids
// and checks that subscribers filtering with wildcards on the server get
// exactly the events they ask for.
func TestSubjectsOnTheServer(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := newBus(t)
		br := newBridge(t, bus, es.Connect("a"), natsbridge.WithExport(), natsbridge.WithSubjectPrefix("acme.adws"))
		sub := es.Connect("sub")
		subscribe := func(pattern string) *nats.Subscription {
			s, err := sub.SubscribeSync(pattern)
			require.NoError(t, err)
			return s
		}
		all := subscribe("acme.adws.>")
		noWorkflow := subscribe("acme.adws.*._")
		dotted := subscribe("acme.adws." + natsbridge.EscapeToken("billing.invoice") + ".*")
		underscore := subscribe("acme.adws.*." + natsbridge.EscapeToken("_"))
		require.NoError(t, sub.Flush())

		events := []eventbus.Event{
			event("billing.invoice", "", 0),
			event("billing.invoice", "_", 1),
			event("billing", "invoice", 2),
			event(eventbus.StepStarted, "run *1*", 3),
			event(eventbus.StepStarted, "", 4),
		}
		for _, e := range events {
			require.NoError(t, bus.PublishAndWait(ctxFor(t), e))
		}
		require.Equal(t, uint64(len(events)), br.Stats().Exported)

		got := func(s *nats.Subscription, n int) []string {
			t.Helper()
			var subjects []string
			for range n {
				m, err := s.NextMsgWithContext(ctxFor(t))
				require.NoError(t, err)
				subjects = append(subjects, m.Subject)
				e, err := natsbridge.Decode(m.Data)
				require.NoError(t, err)
				typ, adw, err := natsbridge.ParseSubject("acme.adws", m.Subject)
				require.NoError(t, err)
				assert.Equal(t, e.Type, typ, "type from %s", m.Subject)
				assert.Equal(t, e.ADWID, adw, "workflow id from %s", m.Subject)
			}
			pending, _, err := s.Pending()
			require.NoError(t, err)
			assert.Zero(t, pending, "more messages than expected")
			return subjects
		}
		// Wildcard subscriptions see messages in publishing order; by the time
		// "all" has the last one, the others have theirs.
		assert.Equal(t, []string{
			"acme.adws.billing%2Einvoice._",
			"acme.adws.billing%2Einvoice.%5F",
			"acme.adws.billing.invoice",
			"acme.adws.step_started.run%20%2A1%2A",
			"acme.adws.step_started._",
		}, got(all, 5))
		assert.Equal(t, []string{"acme.adws.billing%2Einvoice._", "acme.adws.step_started._"}, got(noWorkflow, 2))
		assert.Equal(t, []string{"acme.adws.billing%2Einvoice._", "acme.adws.billing%2Einvoice.%5F"}, got(dotted, 2))
		assert.Equal(t, []string{"acme.adws.billing%2Einvoice.%5F"}, got(underscore, 1))
	})
}

// TestLongSubjectRefused exports an event whose escaped workflow id makes a
// subject longer than the server's control line: the export fails with
// ErrSubjectTooLong, counted, and returned to the publisher, and the
// connection, with what else travels on it, stays up.
func TestLongSubjectRefused(t *testing.T) {
	onEachServer(t, func(t *testing.T, es *natstest.Server) {
		bus := newBus(t)
		var disconnects atomic.Int64
		nc := es.Connect("a")
		nc.SetDisconnectErrHandler(func(*nats.Conn, error) { disconnects.Add(1) })
		br := newBridge(t, bus, nc, natsbridge.WithExport())
		watcher := es.Connect("watch")
		sub, err := watcher.SubscribeSync("adws.events.>")
		require.NoError(t, err)
		require.NoError(t, watcher.Flush())

		ctx := ctxFor(t)
		long := event(eventbus.StepFailed, strings.Repeat("x ", 1500), 0) // spaces become %20: 6,000 bytes
		err = bus.PublishAndWait(ctx, long)
		require.ErrorIs(t, err, natsbridge.ErrSubjectTooLong)
		assert.Equal(t, natsbridge.Stats{ExportErrors: 1}, br.Stats())

		// Just under the limit still goes through, and so does the next event.
		prefix := len(natsbridge.DefaultSubjectPrefix + ".step_failed.")
		fits := event(eventbus.StepFailed, strings.Repeat("y", natsbridge.MaxSubjectLen-prefix), 1)
		require.Len(t, natsbridge.Subject(natsbridge.DefaultSubjectPrefix, fits), natsbridge.MaxSubjectLen)
		require.NoError(t, bus.PublishAndWait(ctx, fits))
		next := event(eventbus.StepFailed, "adw-1", 2)
		require.NoError(t, bus.PublishAndWait(ctx, next))
		require.NoError(t, nc.FlushWithContext(ctx))
		for _, want := range []eventbus.Event{fits, next} {
			m, err := sub.NextMsgWithContext(ctx)
			require.NoError(t, err)
			e, err := natsbridge.Decode(m.Data)
			require.NoError(t, err)
			assert.Equal(t, want.ID, e.ID)
		}
		assert.Zero(t, disconnects.Load(), "the connection dropped")
		assert.Equal(t, uint64(2), br.Stats().Exported)
	})
}
