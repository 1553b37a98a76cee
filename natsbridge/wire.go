package natsbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

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
// text, "message", "timestamp" in RFC 3339 in UTC with nine fractional
// digits, and "data" when not empty). README.md and event.schema.json describe it. Encode returns an
// error wrapping [eventbus.ErrInvalidEvent] for an unknown severity, and the
// json error for Data that does not marshal.
func Encode(e eventbus.Event) ([]byte, error) {
	size := 200 + len(e.ADWID) + len(e.Type) + len(e.Source) + len(e.Message) + 32*len(e.Data)
	if b, ok := appendEvent(make([]byte, 0, size), &e); ok {
		return b, nil
	}
	return json.Marshal(e)
}

// Decode parses the wire form of an event, as eventbus.Event.UnmarshalJSON
// reads it. It accepts what Encode produces and everything
// event.schema.json admits: the properties id (a UUID other than the nil
// UUID), event_type (not empty; a built-in type in any case becomes its
// canonical form, such as "WORKFLOW_STARTED" for "workflow_started") and
// timestamp (RFC 3339 with 'T' and 'Z' in either case, or ISO 8601 without
// a zone, read as UTC, with a space for the 'T' too, as Python writes it;
// not the zero time of Go) are required; severity (DEBUG, INFO, WARNING,
// ERROR or CRITICAL in any case, and WARN) defaults to INFO when missing or
// null; adw_id, source and message default to "", data to nil. Property names match
// exactly: unknown properties are ignored, also those that differ from a
// known one only in case ("ID"). Numbers in data become float64, as in
// JavaScript: ±Inf beyond the range of a double, 0 below it. Any other
// input returns an error wrapping [ErrMalformed]. Decode also accepts some
// input that the schema does not admit (a comma before the fraction of a
// second, a zone offset of 24 hours or more, a null adw_id), and it refuses
// data nested more than 10,000 levels deep, as encoding/json does.
func Decode(data []byte) (eventbus.Event, error) {
	e, _, ok := decodeFast(data)
	if !ok {
		return decodeSlow(data)
	}
	switch {
	case e.ID == uuid.Nil:
		return eventbus.Event{}, fmt.Errorf("%w: missing id", ErrMalformed)
	case e.Type == "":
		return eventbus.Event{}, fmt.Errorf("%w: missing event_type", ErrMalformed)
	case e.Timestamp.IsZero():
		return eventbus.Event{}, fmt.Errorf("%w: missing timestamp", ErrMalformed)
	}
	return e, nil
}

// decodeSlow is Decode through encoding/json: the reference that the fast
// path must agree with. It matches property names exactly, as the schema
// does (encoding/json alone would take "ID" or "Message" for "id" or
// "message"), and reads numbers in data as parseNumber does.
func decodeSlow(data []byte) (eventbus.Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return eventbus.Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if fields == nil {
		return eventbus.Event{}, fmt.Errorf("%w: not an object", ErrMalformed)
	}
	var e eventbus.Event
	present := func(name string) (json.RawMessage, bool) {
		raw, ok := fields[name]
		return raw, ok && string(raw) != "null"
	}
	field := func(name string, v any) error {
		if raw, ok := present(name); ok {
			if err := json.Unmarshal(raw, v); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
			}
		}
		return nil
	}
	var id, ts string
	if err := errors.Join(field("id", &id), field("adw_id", &e.ADWID), field("event_type", &e.Type),
		field("source", &e.Source), field("severity", &e.Severity), field("message", &e.Message),
		field("timestamp", &ts)); err != nil {
		return eventbus.Event{}, err
	}
	if raw, ok := present("data"); ok {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&e.Data); err != nil {
			return eventbus.Event{}, fmt.Errorf("%w: data: %w", ErrMalformed, err)
		}
		if !numbersToFloats(e.Data) {
			return eventbus.Event{}, fmt.Errorf("%w: data: bad number", ErrMalformed)
		}
	}
	if _, ok := present("id"); ok {
		var err error
		if e.ID, err = uuid.Parse(id); err != nil {
			return eventbus.Event{}, fmt.Errorf("%w: id: %w", ErrMalformed, err)
		}
	}
	if _, ok := present("timestamp"); ok {
		var ok bool
		if e.Timestamp, ok = parseTimestamp([]byte(ts)); !ok {
			return eventbus.Event{}, fmt.Errorf("%w: timestamp %q is not RFC 3339, or ISO 8601 without a zone", ErrMalformed, ts)
		}
	}
	switch {
	case e.ID == uuid.Nil:
		return eventbus.Event{}, fmt.Errorf("%w: missing id", ErrMalformed)
	case e.Type == "":
		return eventbus.Event{}, fmt.Errorf("%w: missing event_type", ErrMalformed)
	case e.Timestamp.IsZero():
		return eventbus.Event{}, fmt.Errorf("%w: missing timestamp", ErrMalformed)
	}
	return e, nil
}

// numbersToFloats replaces, in place, every json.Number in v by its float64
// (see parseNumber). It reports false for a number that does not parse.
func numbersToFloats(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if n, ok := x.(json.Number); ok {
				f, ok := parseNumber([]byte(n))
				if !ok {
					return false
				}
				v[k] = f
			} else if !numbersToFloats(x) {
				return false
			}
		}
	case []any:
		for i, x := range v {
			if n, ok := x.(json.Number); ok {
				f, ok := parseNumber([]byte(n))
				if !ok {
					return false
				}
				v[i] = f
			} else if !numbersToFloats(x) {
				return false
			}
		}
	}
	return true
}
