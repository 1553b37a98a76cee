package eventbus

// This file holds an Event's JSON: what the bus writes, and the forms of
// timestamps, event types and severities it reads, among them those that
// Python services write.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// eventJSON is an Event's JSON shape, with the timestamp as text.
type eventJSON struct {
	ID        uuid.UUID      `json:"id"`
	ADWID     string         `json:"adw_id"`
	Type      EventType      `json:"event_type"`
	Source    string         `json:"source"`
	Severity  Severity       `json:"severity"`
	Message   string         `json:"message"`
	Timestamp jsonTime       `json:"timestamp"`
	Data      map[string]any `json:"data,omitempty"`
}

// MarshalJSON writes e as a JSON object with the keys id, adw_id,
// event_type, source, severity (its name, such as "INFO"), message,
// timestamp (RFC 3339 in UTC with nine fractional digits, such as
// "2026-12-04T21:52:15.123456000Z") and, when Data is not empty, data. It
// returns an error wrapping ErrInvalidEvent for an unknown severity.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{
		ID: e.ID, ADWID: e.ADWID, Type: e.Type, Source: e.Source, Severity: e.Severity,
		Message: e.Message, Timestamp: jsonTime(e.Timestamp), Data: e.Data,
	})
}

// UnmarshalJSON reads the JSON that MarshalJSON writes, and the forms that
// producers in other languages use (Python's json, pydantic):
//
//   - timestamp: RFC 3339 with a zone ("...Z", "...+02:00"), ISO 8601
//     without a zone ("2026-12-04T21:52:15.123456", what Python's
//     datetime.isoformat writes for a naive datetime), read as UTC, and
//     either with a space instead of the "T" (what str(datetime) writes);
//     any number of fractional digits;
//   - event_type: the built-in types (WorkflowStarted and the others) in any
//     case, such as the Python enum name "WORKFLOW_STARTED", become their
//     canonical form, "workflow_started"; other types are kept exactly as
//     they are, and match filters exactly;
//   - severity: a name in any case, "WARN" too; missing or null is INFO.
//
// Unknown keys are ignored. Anything else returns an error wrapping
// ErrInvalidEvent that says which field is wrong, and leaves e unchanged.
func (e *Event) UnmarshalJSON(data []byte) error {
	var j eventJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return invalidJSON(err)
	}
	*e = Event{
		ID: j.ID, ADWID: j.ADWID, Type: j.Type, Source: j.Source, Severity: j.Severity,
		Message: j.Message, Timestamp: time.Time(j.Timestamp), Data: j.Data,
	}
	return nil
}

// invalidJSON makes err, from decoding an event's JSON, wrap ErrInvalidEvent
// and name the field in the event's own JSON terms: encoding/json's type
// errors name the decoder's internal struct.
func invalidJSON(err error) error {
	if errors.Is(err, ErrInvalidEvent) {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("%w: an event is a JSON object, not a JSON %s", ErrInvalidEvent, te.Value)
		}
		return fmt.Errorf("%w: %s: cannot hold a JSON %s", ErrInvalidEvent, te.Field, te.Value)
	}
	return fmt.Errorf("%w: %v", ErrInvalidEvent, err)
}

// builtinTypes are the event types that decode case-insensitively.
var builtinTypes = [...]EventType{
	WorkflowStarted, WorkflowCompleted, WorkflowFailed,
	StepStarted, StepCompleted, StepFailed,
	AgentMessage, ToolCalled, ToolReturned,
}

// Canonical returns the built-in event type (WorkflowStarted and the
// others) that t names in any case, such as the Python enum name
// "WORKFLOW_STARTED" for "workflow_started", and t itself otherwise.
func (t EventType) Canonical() EventType {
	for _, b := range builtinTypes {
		if t == b {
			return b
		}
	}
	for _, b := range builtinTypes {
		if strings.EqualFold(string(t), string(b)) {
			return b
		}
	}
	return t
}

// UnmarshalText implements [encoding.TextUnmarshaler]: it sets t to the
// Canonical form of text, so that JSON from other languages names the
// built-in types as the constants do. Custom types are kept exactly.
func (t *EventType) UnmarshalText(text []byte) error {
	*t = EventType(text).Canonical()
	return nil
}

// jsonTime is a timestamp in an Event's JSON.
type jsonTime time.Time

// wireLayout is how the bus writes timestamps: RFC 3339 in UTC with
// nanoseconds, fixed width.
const wireLayout = "2006-01-02T15:04:05.000000000Z07:00"

// MarshalJSON writes t in UTC, as wireLayout. Years outside 0 to 9999 are
// an error, as time.Time.MarshalJSON has it.
func (t jsonTime) MarshalJSON() ([]byte, error) {
	u := time.Time(t).UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: timestamp year %d outside [0,9999]", ErrInvalidEvent, y)
	}
	b := make([]byte, 0, len(wireLayout)+2)
	b = append(b, '"')
	b = u.AppendFormat(b, wireLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a timestamp in one of the forms Event.UnmarshalJSON
// lists. A JSON null leaves t unchanged.
func (t *jsonTime) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: timestamp %s is not a string", ErrInvalidEvent, data)
	}
	parsed, err := ParseTimestamp(s)
	if err != nil {
		return err
	}
	*t = jsonTime(parsed)
	return nil
}

// ParseTimestamp reads a timestamp as an Event's JSON may hold it: RFC 3339
// with a zone ("2026-12-04T21:52:15.123456Z", "...+02:00"), or ISO 8601
// without one ("2026-12-04T21:52:15.123456", read as UTC), with a "T", a
// "t" or a space between date and time and any number of fractional
// digits. A timestamp in no such form returns an error wrapping
// ErrInvalidEvent. Package natsbridge decodes with it, so that the bus and
// the bridge read the same documents.
func ParseTimestamp(s string) (time.Time, error) {
	norm := s
	if len(norm) > 10 && (norm[10] == ' ' || norm[10] == 't') {
		norm = norm[:10] + "T" + norm[11:]
	}
	if strings.HasSuffix(norm, "z") {
		norm = norm[:len(norm)-1] + "Z"
	}
	if t, err := time.Parse(time.RFC3339Nano, norm); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05", norm, time.UTC); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: timestamp %q: want RFC 3339 (2026-12-04T21:52:15.123456Z) or ISO 8601 without a zone, read as UTC (2026-12-04T21:52:15.123456)", ErrInvalidEvent, s)
}
