package eventbus_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/adws/eventbus"
)

// What Python services write for the same event, one document per way of
// serializing it. The json.dumps lines were produced by Python 3.11's own
// json, datetime, enum and uuid modules (event_type a str Enum); the
// pydantic v2 lines are what model_dump_json and model_dump(mode="json")
// write (compact, and "Z" for UTC).
var pythonDocs = []struct {
	name string
	doc  string
	ts   time.Time
	sev  eventbus.Severity
}{
	{
		name: `pydantic model_dump_json, aware datetime`,
		doc:  `{"id":"6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11","adw_id":"wf-001","event_type":"workflow_started","source":"planner","severity":"WARNING","message":"started","timestamp":"2026-12-04T21:52:15.123456Z","data":{"step":3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC), sev: eventbus.SeverityWarning,
	},
	{
		name: `pydantic model_dump_json, naive datetime`,
		doc:  `{"id":"6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11","adw_id":"wf-001","event_type":"workflow_started","source":"planner","severity":"WARNING","message":"started","timestamp":"2026-12-04T21:52:15.123456","data":{"step":3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC), sev: eventbus.SeverityWarning,
	},
	{
		name: `json.dumps(model_dump(mode="json")), severity null`,
		doc:  `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "workflow_started", "source": "planner", "severity": null, "message": "started", "timestamp": "2026-12-04T21:52:15.123456Z", "data": {"step": 3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC), sev: eventbus.SeverityInfo,
	},
	{
		name: `json.dumps(default=str), aware datetime`,
		doc:  `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "workflow_started", "source": "planner", "severity": "WARNING", "message": "started", "timestamp": "2026-12-04 21:52:15.123456+00:00", "data": {"step": 3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC), sev: eventbus.SeverityWarning,
	},
	{
		name: `json.dumps(default=str), naive datetime`,
		doc:  `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "workflow_started", "source": "planner", "severity": "WARNING", "message": "started", "timestamp": "2026-12-04 21:52:15.123456", "data": {"step": 3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC), sev: eventbus.SeverityWarning,
	},
	{
		name: `json.dumps(default=str), +02:00, no microseconds`,
		doc:  `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "workflow_started", "source": "planner", "severity": "WARNING", "message": "started", "timestamp": "2026-12-04 23:52:15+02:00", "data": {"step": 3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 0, time.UTC), sev: eventbus.SeverityWarning,
	},
	{
		name: `json.dumps, isoformat(), enum name, severity null`,
		doc:  `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "WORKFLOW_STARTED", "source": "planner", "severity": null, "message": "started", "timestamp": "2026-12-04T23:52:15.123456+02:00", "data": {"step": 3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC), sev: eventbus.SeverityInfo,
	},
	{
		name: `json.dumps, naive isoformat(), severity missing`,
		doc:  `{"id": "6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11", "adw_id": "wf-001", "event_type": "WORKFLOW_STARTED", "source": "planner", "message": "started", "timestamp": "2026-12-04T21:52:15", "data": {"step": 3}}`,
		ts:   time.Date(2026, 12, 4, 21, 52, 15, 0, time.UTC), sev: eventbus.SeverityInfo,
	},
}

// Every way a Python service writes an event decodes to the same Event:
// the timestamp in UTC, the built-in type in its canonical form, a null or
// missing severity as INFO. A filter on WorkflowStarted matches each.
func TestEventJSONFromPython(t *testing.T) {
	for _, tt := range pythonDocs {
		t.Run(tt.name, func(t *testing.T) {
			var e eventbus.Event
			require.NoError(t, json.Unmarshal([]byte(tt.doc), &e))
			assert.Equal(t, uuid.MustParse("6f1c7a52-8a3e-4a8e-9c55-0d8f5b1e2a11"), e.ID)
			assert.Equal(t, "wf-001", e.ADWID)
			assert.Equal(t, eventbus.WorkflowStarted, e.Type)
			assert.Equal(t, "planner", e.Source)
			assert.Equal(t, tt.sev, e.Severity)
			assert.Equal(t, "started", e.Message)
			assert.True(t, tt.ts.Equal(e.Timestamp), "timestamp %v, want %v", e.Timestamp, tt.ts)
			assert.Equal(t, map[string]any{"step": 3.0}, e.Data)
			assert.True(t, eventbus.Filter{Types: []eventbus.EventType{eventbus.WorkflowStarted}}.Matches(e))
		})
	}
}

// The bus writes timestamps as RFC 3339 in UTC with nine fractional digits,
// whatever the zone of the time it was given.
func TestEventJSONWritesUTC(t *testing.T) {
	cest := time.FixedZone("CEST", 2*60*60)
	e := eventbus.Event{Type: eventbus.StepStarted, Timestamp: time.Date(2026, 12, 4, 23, 52, 15, 123456789, cest)}
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"timestamp":"2026-12-04T21:52:15.123456789Z"`)
	e.Timestamp = time.Date(2026, 12, 4, 21, 52, 15, 0, time.UTC)
	raw, err = json.Marshal(e)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"timestamp":"2026-12-04T21:52:15.000000000Z"`)
	e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = json.Marshal(e)
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
}

// A timestamp in no form the bus reads is refused with a message that says
// what it wants, not a Go layout string.
func TestEventJSONBadTimestamp(t *testing.T) {
	for _, ts := range []string{`"04/12/2026"`, `"2026-12-04"`, `"yesterday"`, `"2026-12-04T25:00:00Z"`, `1764885135`} {
		var e eventbus.Event
		err := json.Unmarshal([]byte(`{"event_type":"x","timestamp":`+ts+`}`), &e)
		require.ErrorIs(t, err, eventbus.ErrInvalidEvent, ts)
		assert.NotContains(t, err.Error(), "2006", "no Go layout in the message")
		assert.Contains(t, err.Error(), "timestamp")
	}
	var e eventbus.Event
	require.NoError(t, json.Unmarshal([]byte(`{"event_type":"x","timestamp":null}`), &e))
	assert.True(t, e.Timestamp.IsZero(), "null leaves it zero: Publish fills it in")
}

// Odd but well-formed JSON decodes as doc.go says, the way encoding/json
// decodes it, and data nested too deep is an error, not a crash.
func TestEventJSONOddText(t *testing.T) {
	var e eventbus.Event
	require.NoError(t, json.Unmarshal([]byte("{\"event_type\":\"x\",\"message\":\"a\xffb\",\"source\":\"\\udcff\"}"), &e))
	assert.Equal(t, "a\uFFFDb", e.Message, "invalid UTF-8 becomes U+FFFD")
	assert.Equal(t, "\uFFFD", e.Source, "a lone surrogate becomes U+FFFD")

	require.NoError(t, json.Unmarshal([]byte(`{"event_type":"a","event_type":"b"}`), &e))
	assert.Equal(t, eventbus.EventType("b"), e.Type, "the last of a repeated key wins")

	nest := func(n int) []byte {
		return []byte(`{"event_type":"x","data":{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`)
	}
	require.NoError(t, json.Unmarshal(nest(5000), &e))
	// encoding/json refuses this while scanning, before Event.UnmarshalJSON runs.
	assert.Error(t, json.Unmarshal(nest(20000), &e), "nesting beyond encoding/json's limit")

	// A value of the wrong JSON type is ErrInvalidEvent, naming the field.
	for doc, field := range map[string]string{
		`{"event_type":"x","severity":1e400}`: "severity",
		`{"event_type":"x","data":[1]}`:       "data",
		`{"event_type":"x","message":7}`:      "message",
		`[]`:                                  "JSON object",
	} {
		err := json.Unmarshal([]byte(doc), &e)
		require.ErrorIs(t, err, eventbus.ErrInvalidEvent, doc)
		assert.Contains(t, err.Error(), field, doc)
		assert.NotContains(t, err.Error(), "eventJSON", doc)
	}
}

// Built-in event types decode in any case to their canonical form; custom
// types are kept exactly, and match filters exactly.
func TestEventJSONTypes(t *testing.T) {
	for in, want := range map[string]eventbus.EventType{
		"workflow_started": eventbus.WorkflowStarted,
		"WORKFLOW_STARTED": eventbus.WorkflowStarted,
		"Tool_Returned":    eventbus.ToolReturned,
		"ORDER_PLACED":     "ORDER_PLACED",
		"order_placed":     "order_placed",
	} {
		var e eventbus.Event
		require.NoError(t, json.Unmarshal([]byte(`{"event_type":"`+in+`"}`), &e))
		assert.Equal(t, want, e.Type, in)
	}
}

// Severity names decode in any case, WARN too; an unknown one is an error
// that says so.
func TestEventJSONSeverity(t *testing.T) {
	for in, want := range map[string]eventbus.Severity{
		`"warn"`: eventbus.SeverityWarning, `"Warning"`: eventbus.SeverityWarning, `"critical"`: eventbus.SeverityCritical,
		`null`: eventbus.SeverityInfo,
	} {
		var e eventbus.Event
		require.NoError(t, json.Unmarshal([]byte(`{"event_type":"x","severity":`+in+`}`), &e))
		assert.Equal(t, want, e.Severity, in)
	}
	var e eventbus.Event
	err := json.Unmarshal([]byte(`{"event_type":"x","severity":"LOUD"}`), &e)
	assert.ErrorIs(t, err, eventbus.ErrInvalidEvent)
	assert.True(t, strings.Contains(err.Error(), `"LOUD"`))
}

// The zero Severity is INFO, and every Severity is the slog level of the
// same name.
func TestSeverityIsSlogLevel(t *testing.T) {
	var zero eventbus.Severity
	assert.Equal(t, eventbus.SeverityInfo, zero)
	assert.NoError(t, eventbus.Event{Type: "x"}.Validate())
	assert.True(t, eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityInfo}}.Matches(eventbus.Event{Type: "x"}),
		"an event built without a severity matches an INFO filter")
	for sev, level := range map[eventbus.Severity]slog.Level{
		eventbus.SeverityDebug: slog.LevelDebug, eventbus.SeverityInfo: slog.LevelInfo,
		eventbus.SeverityWarning: slog.LevelWarn, eventbus.SeverityError: slog.LevelError,
	} {
		assert.Equal(t, level, slog.Level(sev), sev.String())
	}
	assert.Greater(t, slog.Level(eventbus.SeverityCritical), slog.LevelError)
}

// NewEvent gives an event its ID before it is published, and Publish keeps
// that ID and timestamp.
func TestNewEvent(t *testing.T) {
	b := newBus(t, eventbus.WithMaxWorkers(0))
	got := make(chan eventbus.Event, 1)
	_, err := b.Subscribe(func(e eventbus.Event) error { got <- e; return nil })
	require.NoError(t, err)
	before := time.Now()
	e := eventbus.NewEvent(eventbus.StepStarted, "wf-001")
	assert.NotEqual(t, uuid.Nil, e.ID)
	assert.Equal(t, eventbus.SeverityInfo, e.Severity)
	assert.False(t, e.Timestamp.Before(before))
	assert.NotEqual(t, e.ID, eventbus.NewEvent(eventbus.StepStarted, "wf-001").ID)
	e.Message = "load"
	require.NoError(t, b.Publish(t.Context(), e))
	h := <-got
	assert.Equal(t, e.ID, h.ID)
	assert.True(t, e.Timestamp.Equal(h.Timestamp))
	assert.Equal(t, "load", h.Message)
}

// ParseTimestamp reads every form an Event's JSON may hold, and nothing
// else.
func TestParseTimestamp(t *testing.T) {
	utc := time.Date(2026, 12, 4, 21, 52, 15, 123456000, time.UTC)
	for _, s := range []string{
		"2026-12-04T21:52:15.123456Z", "2026-12-04t21:52:15.123456z", "2026-12-04T23:52:15.123456+02:00",
		"2026-12-04 21:52:15.123456+00:00", "2026-12-04T21:52:15.123456", "2026-12-04 21:52:15.123456",
		"2026-12-04T21:52:15.123456000Z", "2026-12-04T21:52:15,123456Z",
	} {
		got, err := eventbus.ParseTimestamp(s)
		require.NoError(t, err, s)
		assert.True(t, utc.Equal(got), "%s: %v", s, got)
	}
	for _, s := range []string{"", "2026-12-04", "21:52:15", "2026-12-04T21:52:60Z", "2026-12-04T21:52:15+2", "now"} {
		_, err := eventbus.ParseTimestamp(s)
		assert.ErrorIs(t, err, eventbus.ErrInvalidEvent, s)
	}
}

// EventType.Canonical names a built-in type by its constant in any case,
// and leaves other types alone.
func TestEventTypeCanonical(t *testing.T) {
	assert.Equal(t, eventbus.StepFailed, eventbus.EventType("STEP_FAILED").Canonical())
	assert.Equal(t, eventbus.StepFailed, eventbus.EventType("step_failed").Canonical())
	assert.Equal(t, eventbus.EventType("STEP-FAILED"), eventbus.EventType("STEP-FAILED").Canonical())
	var m map[eventbus.EventType]int
	require.NoError(t, json.Unmarshal([]byte(`{"TOOL_CALLED":1,"custom":2}`), &m))
	assert.Equal(t, map[eventbus.EventType]int{eventbus.ToolCalled: 1, "custom": 2}, m, "map keys decode through UnmarshalText too")
}
