package eventbus

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// An EventType names what happened. The set is open: the constants below cover
// the life of an agentic data workflow, and callers may define their own.
type EventType string

// Event types emitted by agentic data workflows: a workflow runs steps, a step
// runs an agent, and an agent calls tools.
const (
	WorkflowStarted   EventType = "workflow_started"
	WorkflowCompleted EventType = "workflow_completed"
	WorkflowFailed    EventType = "workflow_failed"
	StepStarted       EventType = "step_started"
	StepCompleted     EventType = "step_completed"
	StepFailed        EventType = "step_failed"
	AgentMessage      EventType = "agent_message"
	ToolCalled        EventType = "tool_called"
	ToolReturned      EventType = "tool_returned"
)

// A Severity is the importance of an Event. Its values are those of
// [log/slog]'s levels, so slog.Level(sev) is the matching log level, and
// the zero Severity is SeverityInfo: an event built without one is INFO.
type Severity int8

// Severities, from least to most important.
const (
	SeverityDebug    Severity = -4 // slog.LevelDebug
	SeverityInfo     Severity = 0  // slog.LevelInfo
	SeverityWarning  Severity = 4  // slog.LevelWarn
	SeverityError    Severity = 8  // slog.LevelError
	SeverityCritical Severity = 12
)

// severities lists the defined severities with their names, in order.
var severities = [...]struct {
	s    Severity
	name string
}{
	{SeverityDebug, "DEBUG"},
	{SeverityInfo, "INFO"},
	{SeverityWarning, "WARNING"},
	{SeverityError, "ERROR"},
	{SeverityCritical, "CRITICAL"},
}

// name returns the name of s, or false for a value outside the defined set.
func (s Severity) name() (string, bool) {
	for _, d := range severities {
		if d.s == s {
			return d.name, true
		}
	}
	return "", false
}

// String returns the name of s: "DEBUG", "INFO", "WARNING", "ERROR" or
// "CRITICAL", and "Severity(n)" for a value outside that set.
func (s Severity) String() string {
	if name, ok := s.name(); ok {
		return name
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText implements [encoding.TextMarshaler] by returning s.String(). It
// returns an error wrapping [ErrInvalidEvent] for a value outside the defined set,
// so an unknown severity never reaches the wire.
func (s Severity) MarshalText() ([]byte, error) {
	name, ok := s.name()
	if !ok {
		return nil, fmt.Errorf("%w: unknown severity %d", ErrInvalidEvent, int8(s))
	}
	return []byte(name), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts the names that
// String returns, in any case, and "WARN" for SeverityWarning, as Python's
// logging writes it. Any other text returns an error wrapping
// [ErrInvalidEvent] and leaves s unchanged. (In an Event's JSON, a missing or
// null severity leaves the zero value: INFO.)
func (s *Severity) UnmarshalText(text []byte) error {
	name := string(text)
	for _, d := range severities {
		if strings.EqualFold(name, d.name) {
			*s = d.s
			return nil
		}
	}
	if strings.EqualFold(name, "WARN") {
		*s = SeverityWarning
		return nil
	}
	return fmt.Errorf("%w: unknown severity %q", ErrInvalidEvent, text)
}

// valid reports whether s is one of the defined severities.
func (s Severity) valid() bool {
	_, ok := s.name()
	return ok
}

// An Event is one thing that happened in a workflow. It is a value: the bus
// hands each handler its own copy of the struct, but Data is a map that all
// handlers of the event share, so handlers must treat it as read-only.
//
// Its JSON, which the Python services of the same workflow system exchange,
// is described at [Event.MarshalJSON] and [Event.UnmarshalJSON].
type Event struct {
	ID        uuid.UUID      `json:"id"`         // assigned on publish when zero
	ADWID     string         `json:"adw_id"`     // workflow id
	Type      EventType      `json:"event_type"` // required
	Source    string         `json:"source"`
	Severity  Severity       `json:"severity"` // JSON text: "INFO"
	Message   string         `json:"message"`
	Timestamp time.Time      `json:"timestamp"` // assigned on publish when zero
	Data      map[string]any `json:"data,omitempty"`
}

// Validate reports whether e can be published: it returns an error wrapping
// [ErrInvalidEvent] when Type is empty or Severity is outside the defined set,
// and nil otherwise. A zero ID or Timestamp is valid; Publish fills them in.
func (e Event) Validate() error {
	if e.Type == "" {
		return fmt.Errorf("%w: empty Type", ErrInvalidEvent)
	}
	if !e.Severity.valid() {
		return fmt.Errorf("%w: unknown severity %d", ErrInvalidEvent, int8(e.Severity))
	}
	return nil
}

// NewEvent returns an event of type t for workflow adwID with a fresh ID,
// the current time and severity INFO, so that its ID is known before it is
// published; set the other fields on the result. Publish keeps an ID and a
// Timestamp that are set.
func NewEvent(t EventType, adwID string) Event {
	return Event{ID: newID(), ADWID: adwID, Type: t, Severity: SeverityInfo, Timestamp: time.Now()}
}

// newID returns a random (version 4) UUID without allocating. Its 122 random
// bits come from the runtime's per-thread ChaCha8 generator behind
// math/rand/v2, which the runtime seeds from the operating system: IDs are
// unique, not secret. Set Event.ID yourself when it must be unpredictable.
func newID() uuid.UUID {
	var id uuid.UUID
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant RFC 4122
	return id
}
