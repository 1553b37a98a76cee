package natsbridge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A schema is the part of JSON Schema (draft 2020-12) that event.schema.json
// uses. validate refuses any other keyword, so the check can never silently
// skip a rule that the file states.
type schema map[string]any

func loadSchema(t *testing.T) schema {
	t.Helper()
	data, err := os.ReadFile("event.schema.json")
	require.NoError(t, err)
	var s schema
	require.NoError(t, json.Unmarshal(data, &s))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", s["$schema"])
	return s
}

// validate returns the ways v breaks s, empty when it conforms.
func (s schema) validate(path string, v any) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	for kw, rule := range s {
		switch kw {
		case "$schema", "$id", "title", "description", "examples", "$comment":
			// annotations
		case "type":
			types, ok := rule.([]any)
			if !ok {
				types = []any{rule}
			}
			if !slices.ContainsFunc(types, func(t any) bool { return isType(v, t.(string)) }) {
				fail("%v is not of type %v", v, rule)
			}
		case "required":
			m, _ := v.(map[string]any)
			for _, name := range rule.([]any) {
				if _, ok := m[name.(string)]; !ok && m != nil {
					fail("missing required property %q", name)
				}
			}
		case "properties":
			m, _ := v.(map[string]any)
			for name, sub := range rule.(map[string]any) {
				if pv, ok := m[name]; ok {
					errs = append(errs, schema(sub.(map[string]any)).validate(path+"."+name, pv)...)
				}
			}
		case "enum":
			if !slices.Contains(rule.([]any), v) {
				fail("%v is not one of %v", v, rule)
			}
		case "minLength":
			if str, ok := v.(string); ok && len([]rune(str)) < int(rule.(float64)) {
				fail("%q is shorter than %v", str, rule)
			}
		case "pattern":
			if str, ok := v.(string); ok && !regexp.MustCompile(rule.(string)).MatchString(str) {
				fail("%q does not match %s", str, rule)
			}
		case "format":
			str, ok := v.(string)
			if !ok {
				break
			}
			switch rule {
			case "date-time":
				if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
					fail("%q is not a date-time: %v", str, err)
				}
			case "uuid":
				if _, err := uuid.Parse(str); err != nil || len(str) != 36 {
					fail("%q is not a uuid", str)
				}
			default:
				fail("unsupported format %q", rule)
			}
		default:
			fail("the test's validator does not support keyword %q", kw)
		}
	}
	slices.Sort(errs)
	return errs
}

func isType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "null":
		return v == nil
	case "array":
		_, ok := v.([]any)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false
}

// TestWireFormatMatchesSchema captures what a real exporting Bridge publishes
// and checks every message against event.schema.json: required properties,
// types, the severity enum, the uuid and date-time formats. It also checks
// that Go writes no property the schema does not describe, that every
// message carries the bridge's origin, and that its subject encodes its type
// and workflow id.
func TestWireFormatMatchesSchema(t *testing.T) {
	s := loadSchema(t)
	props := s["properties"].(map[string]any)
	es := startServer(t)
	bus := newBus(t)
	br := newBridge(t, bus, connect(t, es, "a"), natsbridge.WithExport())
	raw := connect(t, es, "raw")
	sub, err := raw.SubscribeSync(natsbridge.DefaultSubjectPrefix + ".>")
	require.NoError(t, err)
	require.NoError(t, raw.Flush())

	var sent []eventbus.Event
	for i, sev := range []eventbus.Severity{eventbus.SeverityDebug, eventbus.SeverityInfo, eventbus.SeverityWarning, eventbus.SeverityError, eventbus.SeverityCritical} {
		e := event(eventbus.StepFailed, fmt.Sprintf("adw-%d", i), i)
		e.Severity = sev
		if i%2 == 0 {
			e.ADWID = ""
			e.Data = map[string]any{"attempt": i, "tables": []string{"orders"}, "ok": false, "nested": map[string]any{"x": nil}}
		}
		if i == 3 {
			e.Timestamp = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("", -7*3600))
		}
		require.NoError(t, bus.PublishAndWait(ctxFor(t), e))
		sent = append(sent, e)
	}
	require.Equal(t, uint64(len(sent)), br.Stats().Exported)

	for _, want := range sent {
		m, err := sub.NextMsgWithContext(ctxFor(t))
		require.NoError(t, err)
		var doc any
		require.NoError(t, json.Unmarshal(m.Data, &doc), "%s", m.Data)
		assert.Empty(t, s.validate("$", doc), "%s", m.Data)
		for name := range doc.(map[string]any) {
			assert.Contains(t, props, name, "property not in the schema")
		}
		assert.Equal(t, br.Origin(), m.Header.Get(natsbridge.HeaderOrigin))
		got, err := natsbridge.Decode(m.Data)
		require.NoError(t, err)
		assert.Equal(t, want.ID, got.ID)
		assert.Equal(t, natsbridge.Subject(natsbridge.DefaultSubjectPrefix, want), m.Subject)
	}
}

// TestSchemaExamples checks that the schema's own examples conform to it and
// that Decode reads them.
func TestSchemaExamples(t *testing.T) {
	s := loadSchema(t)
	examples := s["examples"].([]any)
	require.NotEmpty(t, examples)
	for _, ex := range examples {
		assert.Empty(t, s.validate("$", ex))
		data, err := json.Marshal(ex)
		require.NoError(t, err)
		_, err = natsbridge.Decode(data)
		assert.NoError(t, err, "%s", data)
	}
}

// TestSchemaRejects checks that the validator and the schema catch what
// Decode refuses, so that a passing TestWireFormatMatchesSchema means
// something.
func TestSchemaRejects(t *testing.T) {
	s := loadSchema(t)
	valid := `"id":"0b7e6f0e-3c1d-4d2a-9a43-5b0f1c2d3e4f","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"`
	for _, doc := range []string{
		`{"event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`,
		`{` + valid + `,"severity":"LOUD"}`,
		`{` + valid + `,"timestamp":"yesterday"}`,
		`{` + valid + `,"id":"42"}`,
		`{` + valid + `,"event_type":""}`,
		`{` + valid + `,"data":[1]}`,
		`{` + valid + `,"message":7}`,
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(doc), &v))
		assert.NotEmpty(t, s.validate("$", v), "schema accepts %s", doc)
		_, err := natsbridge.Decode([]byte(doc))
		assert.ErrorIs(t, err, natsbridge.ErrMalformed, "Decode accepts %s", doc)
	}
}
