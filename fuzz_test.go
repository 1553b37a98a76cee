package eventbus_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/adws/eventbus"
)

// FuzzEventJSON feeds arbitrary bytes to the Event decoder: it must never
// panic, and whatever it accepts as a valid event must survive a round trip
// through the encoder unchanged.
func FuzzEventJSON(f *testing.F) {
	f.Add([]byte(`{"id":"6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11","adw_id":"adw-1","event_type":"step_failed","source":"loader","severity":"ERROR","message":"boom","timestamp":"2026-11-26T09:30:00Z","data":{"step":"load","attempt":3}}`))
	f.Add([]byte(`{"event_type":"workflow_started","severity":"info","timestamp":"2026-01-02T03:04:05.123456789+01:00"}`))
	f.Add([]byte(`{"event_type":"x","severity":"LOUD"}`))
	f.Add([]byte(`{"event_type":"x","severity":3}`))
	f.Add([]byte(`{"data":{"nested":{"a":[1,2,{"b":null}]}},"event_type":"t"}`))
	f.Add([]byte(`{"id":"not-a-uuid"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e eventbus.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return
		}
		if e.Validate() != nil {
			return
		}
		raw, err := json.Marshal(e)
		if err != nil {
			// Only a timestamp outside the years 0 to 9999 cannot be encoded.
			if y := e.Timestamp.Year(); y >= 0 && y <= 9999 {
				t.Fatalf("Marshal(%+v) = %v", e, err)
			}
			return
		}
		var back eventbus.Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("Unmarshal(Marshal(e)) = %v for %s", err, raw)
		}
		assertSameEvent(t, e, back)
	})
}

// FuzzEventRoundTrip builds events field by field: every valid event with
// valid UTF-8 text is encoded and decoded back to itself.
func FuzzEventRoundTrip(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "adw-1", "step_started", "planner", int8(0), "hello", int64(1764149400123456789), "key", "value")
	f.Add([]byte{}, "", "x", "", int8(12), "", int64(0), "", "")
	f.Add([]byte("short"), "a.b*c>d e", "TOOL_CALLED", "ünïcode", int8(9), "line\nbreak", int64(-1), "k", "")
	f.Fuzz(func(t *testing.T, id []byte, adwID, typ, source string, sev int8, msg string, nanos int64, key, value string) {
		e := eventbus.Event{
			ADWID:     adwID,
			Type:      eventbus.EventType(typ),
			Source:    source,
			Severity:  eventbus.Severity(sev),
			Message:   msg,
			Timestamp: time.Unix(0, nanos).UTC(),
		}
		copy(e.ID[:], id)
		if key != "" {
			e.Data = map[string]any{key: value}
		}
		for _, s := range []string{adwID, typ, source, msg, key, value} {
			if !utf8.ValidString(s) {
				return // JSON replaces invalid UTF-8: not identity, by design of encoding/json
			}
		}
		raw, err := json.Marshal(e)
		if e.Validate() != nil {
			if _, known := severityNames[e.Severity]; err == nil && !known {
				t.Fatalf("Marshal accepted unknown severity %d", sev)
			}
			return
		}
		if err != nil {
			t.Fatalf("Marshal(%+v) = %v", e, err)
		}
		var back eventbus.Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("Unmarshal(%s) = %v", raw, err)
		}
		e.Type = canonical(e.Type) // built-in types decode in their canonical form
		assertSameEvent(t, e, back)
	})
}

// severityNames are the defined severities, by value: the reference the
// fuzz tests check Severity's text against.
var severityNames = map[eventbus.Severity]string{
	eventbus.SeverityDebug: "DEBUG", eventbus.SeverityInfo: "INFO", eventbus.SeverityWarning: "WARNING",
	eventbus.SeverityError: "ERROR", eventbus.SeverityCritical: "CRITICAL",
}

// canonical is the reference for how an event type decodes: a built-in
// type in any case becomes its canonical form, anything else stays as is
// (EventType.Canonical).
func canonical(t eventbus.EventType) eventbus.EventType {
	for _, b := range []eventbus.EventType{
		eventbus.WorkflowStarted, eventbus.WorkflowCompleted, eventbus.WorkflowFailed,
		eventbus.StepStarted, eventbus.StepCompleted, eventbus.StepFailed,
		eventbus.AgentMessage, eventbus.ToolCalled, eventbus.ToolReturned,
	} {
		if strings.EqualFold(string(t), string(b)) {
			return b
		}
	}
	return t
}

func assertSameEvent(t *testing.T, want, got eventbus.Event) {
	t.Helper()
	if !want.Timestamp.Equal(got.Timestamp) {
		t.Fatalf("Timestamp = %v, want %v", got.Timestamp, want.Timestamp)
	}
	want.Timestamp, got.Timestamp = time.Time{}, time.Time{}
	if len(want.Data) == 0 && len(got.Data) == 0 { // "data" is omitted when empty
		want.Data, got.Data = nil, nil
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, want)
	}
}

// FuzzSeverityText: UnmarshalText never panics, accepts exactly the five
// names (any case) and "WARN", and round-trips through MarshalText.
func FuzzSeverityText(f *testing.F) {
	for _, s := range []string{"DEBUG", "info", "Warning", "WARN", "ERROR", "critical", "", "LOUD", "INFO+2", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var s eventbus.Severity = -7
		err := s.UnmarshalText([]byte(text))
		var want eventbus.Severity
		ok := false
		for sev, name := range severityNames {
			if strings.EqualFold(text, name) { // "in any case": Unicode simple folding
				want, ok = sev, true
			}
		}
		if strings.EqualFold(text, "WARN") {
			want, ok = eventbus.SeverityWarning, true
		}
		switch {
		case err == nil && !ok:
			t.Fatalf("UnmarshalText(%q) accepted an unknown name as %v", text, s)
		case err != nil && ok:
			t.Fatalf("UnmarshalText(%q) = %v", text, err)
		case err != nil:
			if !errors.Is(err, eventbus.ErrInvalidEvent) {
				t.Fatalf("UnmarshalText(%q) error %v does not wrap ErrInvalidEvent", text, err)
			}
			if s != -7 {
				t.Fatalf("a failed UnmarshalText changed the value to %d", s)
			}
			return
		}
		if s != want {
			t.Fatalf("UnmarshalText(%q) = %v, want %v", text, s, want)
		}
		out, err := s.MarshalText()
		if err != nil || string(out) != s.String() {
			t.Fatalf("MarshalText(%v) = %q, %v", s, out, err)
		}
		var back eventbus.Severity
		if err := back.UnmarshalText(out); err != nil || back != s {
			t.Fatalf("round trip of %v gave %v, %v", s, back, err)
		}
	})
}

// FuzzFilterMatches compares Filter.Matches with a plain reference
// implementation. Each list is given as a comma-separated string.
func FuzzFilterMatches(f *testing.F) {
	f.Add("step_started,step_failed", "\x01\x03", "adw-1", "", "step_failed", int8(3), "adw-1", "loader", uint8(0))
	f.Add("", "", "", "", "x", int8(0), "", "", uint8(1))
	f.Add("a,,b", "\x00\x04", ",", "src", "", int8(-1), "", "src", uint8(2))
	f.Fuzz(func(t *testing.T, types, sevs, adwIDs, sources, typ string, sev int8, adwID, source string, match uint8) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		var flt eventbus.Filter
		for _, s := range split(types) {
			flt.Types = append(flt.Types, eventbus.EventType(s))
		}
		for _, c := range []byte(sevs) {
			flt.Severities = append(flt.Severities, eventbus.Severity(int8(c)))
		}
		flt.ADWIDs = split(adwIDs)
		flt.Sources = split(sources)
		switch match % 3 {
		case 1:
			flt.Match = func(e eventbus.Event) bool { return len(e.Source)%2 == 0 }
		case 2:
			flt.Match = func(eventbus.Event) bool { return false }
		}
		e := eventbus.Event{Type: eventbus.EventType(typ), Severity: eventbus.Severity(sev), ADWID: adwID, Source: source}
		if got, want := flt.Matches(e), referenceMatches(flt, e); got != want {
			t.Fatalf("Matches(%+v) = %v, reference says %v (filter %v)", e, got, want, flt)
		}
	})
}

// referenceMatches is Filter.Matches written as plainly as possible.
func referenceMatches(f eventbus.Filter, e eventbus.Event) bool {
	in := func(n int, eq func(int) bool) bool {
		if n == 0 {
			return true
		}
		for i := range n {
			if eq(i) {
				return true
			}
		}
		return false
	}
	ok := in(len(f.Types), func(i int) bool { return f.Types[i] == e.Type }) &&
		in(len(f.Severities), func(i int) bool { return f.Severities[i] == e.Severity }) &&
		in(len(f.ADWIDs), func(i int) bool { return f.ADWIDs[i] == e.ADWID }) &&
		in(len(f.Sources), func(i int) bool { return f.Sources[i] == e.Source })
	if ok && f.Match != nil {
		ok = f.Match(e)
	}
	return ok
}
