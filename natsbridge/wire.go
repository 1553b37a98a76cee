package natsbridge

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/adws/eventbus"
	"github.com/google/uuid"
)

// Message headers the bridge reads and writes.
const (
	// HeaderOrigin carries the origin of the Bridge that published a
	// message ([WithOrigin]). An importing Bridge drops messages that carry
	// its own origin. Messages without it are imported.
	HeaderOrigin = "Adws-Origin"
	// HeaderMsgID is the JetStream de-duplication header. In JetStream mode
	// an exporting Bridge sets it to the event id.
	HeaderMsgID = "Nats-Msg-Id"
)

// Encode returns the wire form of e: its JSON, as encoding/json marshals an
// [eventbus.Event] ("id", "adw_id", "event_type", "source", "severity" as
// text, "message", "timestamp" in RFC 3339 with nanoseconds, and "data" when
// not empty). README.md and event.schema.json describe it. Encode returns an
// error wrapping [eventbus.ErrInvalidEvent] for an unknown severity, and the
// json error for Data that does not marshal.
func Encode(e eventbus.Event) ([]byte, error) {
	size := 200 + len(e.ADWID) + len(e.Type) + len(e.Source) + len(e.Message) + 32*len(e.Data)
	if b, ok := appendEvent(make([]byte, 0, size), &e); ok {
		return b, nil
	}
	return json.Marshal(e)
}

// wireEvent is an Event whose required fields are pointers, so that Decode
// can tell a missing field from a zero one.
type wireEvent struct {
	ID        *uuid.UUID         `json:"id"`
	ADWID     string             `json:"adw_id"`
	Type      eventbus.EventType `json:"event_type"`
	Source    string             `json:"source"`
	Severity  *eventbus.Severity `json:"severity"`
	Message   string             `json:"message"`
	Timestamp *time.Time         `json:"timestamp"`
	Data      map[string]any     `json:"data"`
}

// Decode parses the wire form of an event. It accepts what Encode produces and
// what event.schema.json allows: the fields id (a UUID), event_type (not
// empty), severity (DEBUG, INFO, WARNING, ERROR or CRITICAL; any case, and
// WARN) and timestamp (RFC 3339) are required; adw_id, source and message
// default to "", data to nil; unknown fields are ignored. Any other input
// returns an error wrapping [ErrMalformed].
func Decode(data []byte) (eventbus.Event, error) {
	e, seen, ok := decodeFast(data)
	if !ok {
		return decodeSlow(data)
	}
	switch {
	case e.ID == uuid.Nil:
		return eventbus.Event{}, fmt.Errorf("%w: missing id", ErrMalformed)
	case e.Type == "":
		return eventbus.Event{}, fmt.Errorf("%w: missing event_type", ErrMalformed)
	case seen&seenSeverity == 0:
		return eventbus.Event{}, fmt.Errorf("%w: missing severity", ErrMalformed)
	case e.Timestamp.IsZero():
		return eventbus.Event{}, fmt.Errorf("%w: missing timestamp", ErrMalformed)
	}
	return e, nil
}

// decodeSlow is Decode through encoding/json: the reference that the fast
// path must agree with.
func decodeSlow(data []byte) (eventbus.Event, error) {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return eventbus.Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case w.ID == nil || *w.ID == uuid.Nil:
		return eventbus.Event{}, fmt.Errorf("%w: missing id", ErrMalformed)
	case w.Type == "":
		return eventbus.Event{}, fmt.Errorf("%w: missing event_type", ErrMalformed)
	case w.Severity == nil:
		return eventbus.Event{}, fmt.Errorf("%w: missing severity", ErrMalformed)
	case w.Timestamp == nil || w.Timestamp.IsZero():
		return eventbus.Event{}, fmt.Errorf("%w: missing timestamp", ErrMalformed)
	}
	return eventbus.Event{
		ID:        *w.ID,
		ADWID:     w.ADWID,
		Type:      w.Type,
		Source:    w.Source,
		Severity:  *w.Severity,
		Message:   w.Message,
		Timestamp: *w.Timestamp,
		Data:      w.Data,
	}, nil
}
