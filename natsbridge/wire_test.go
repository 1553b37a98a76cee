package natsbridge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A schema is the part of JSON Schema (draft 2020-12) that event.schema.json
// uses. validate refuses any other keyword, so the check can never silently
// skip a rule that the file states.
type schema map[string]any

func loadSchema(t testing.TB) schema {
	t.Helper()
	data, err := os.ReadFile("event.schema.json")
	require.NoError(t, err)
	var s schema
	require.NoError(t, json.Unmarshal(data, &s))
	require.NotContains(t, string(data), `"$ref"`, "the test's validator does not follow references")
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
		case "const":
			if v != rule {
				fail("%v is not %v", v, rule)
			}
		case "not":
			if len(schema(rule.(map[string]any)).validate(path, v)) == 0 {
				fail("%v matches %v", v, rule)
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
			// An annotation in draft 2020-12: validators need not check it,
			// so the schema must not rely on it, and neither does this one.
		default:
			fail("the test's validator does not support keyword %q", kw)
		}
	}
	slices.Sort(errs)
	return errs
}

// parseDoc parses a JSON document for validate, keeping numbers as
// json.Number: a JSON number need not fit a float64.
func parseDoc(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s", data)
	return v
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
		_, ok := v.(json.Number)
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
	br := newBridge(t, bus, es.Connect("a"), natsbridge.WithExport())
	raw := es.Connect("raw")
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
		doc := parseDoc(t, m.Data)
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
		assert.NotEmpty(t, s.validate("$", parseDoc(t, []byte(doc))), "schema accepts %s", doc)
		_, err := natsbridge.Decode([]byte(doc))
		assert.ErrorIs(t, err, natsbridge.ErrMalformed, "Decode accepts %s", doc)
	}
}

// TestSchemaAdmitsOnlyWhatDecodeAccepts holds event.schema.json and Decode
// to each other on the cases where they used to disagree: a document the
// schema admits must decode (or a bridge would terminate a conforming
// message), and the documents Decode refuses must be outside the schema.
// Draft 2020-12 treats "format" as an annotation, so the schema states its
// constraints with patterns, and this test's validator ignores "format".
func TestSchemaAdmitsOnlyWhatDecodeAccepts(t *testing.T) {
	s := loadSchema(t)
	const id = `"id":"0b7e6f0e-3c1d-4d2a-9a43-5b0f1c2d3e4f"`
	doc := func(fields string) string { return `{` + fields + `,"event_type":"t","severity":"INFO"}` }
	tests := []struct {
		name  string
		doc   string
		valid bool
	}{
		{"plain", doc(id + `,"timestamp":"2025-03-04T05:06:07Z"`), true},
		{"lower-case t and z", doc(id + `,"timestamp":"2025-03-04t05:06:07z"`), true},
		{"offset and fraction", doc(id + `,"timestamp":"2025-03-04T05:06:07.123456789-23:59"`), true},
		{"February 29 of a leap year", doc(id + `,"timestamp":"2024-02-29T00:00:00Z"`), true},
		{"February 29 of year 2000", doc(id + `,"timestamp":"2000-02-29T00:00:00Z"`), true},
		{"year 0002, offset into year 0001", doc(id + `,"timestamp":"0002-01-01T00:00:00+23:59"`), true},
		{"upper-case uuid", doc(`"id":"0B7E6F0E-3C1D-4D2A-9A43-5B0F1C2D3E4F","timestamp":"2025-03-04T05:06:07Z"`), true},
		{"number beyond a double", doc(id + `,"timestamp":"2025-03-04T05:06:07Z","data":{"big":1e400,"tiny":-1e-400}`), true},
		{"unknown property differing in case", doc(id + `,"timestamp":"2025-03-04T05:06:07Z","Message":{"text":"x"}`), true},
		{"unknown property ID", doc(id + `,"timestamp":"2025-03-04T05:06:07Z","ID":"legacy-42"`), true},
		{"Id instead of id", doc(`"Id":"0b7e6f0e-3c1d-4d2a-9a43-5b0f1c2d3e4f","timestamp":"2025-03-04T05:06:07Z"`), false},
		{"nil uuid", doc(`"id":"00000000-0000-0000-0000-000000000000","timestamp":"2025-03-04T05:06:07Z"`), false},
		{"leap second", doc(id + `,"timestamp":"2016-12-31T23:59:60Z"`), false},
		{"year 0001, Go's zero time", doc(id + `,"timestamp":"0001-01-01T00:00:00Z"`), false},
		{"year 0000, Go's zero time by its offset", doc(id + `,"timestamp":"0000-12-31T23:00:00-01:00"`), false},
		{"space instead of T (Python's str)", doc(id + `,"timestamp":"2025-03-04 05:06:07.123456+00:00"`), true},
		{"no zone (Python's naive isoformat)", doc(id + `,"timestamp":"2025-03-04T05:06:07.123456"`), true},
		{"space and no zone", doc(id + `,"timestamp":"2025-03-04 05:06:07"`), true},
		{"severity null", `{` + id + `,"event_type":"t","severity":null,"timestamp":"2025-03-04T05:06:07Z"}`, true},
		{"severity missing", `{` + id + `,"event_type":"t","timestamp":"2025-03-04T05:06:07Z"}`, true},
		{"two spaces", doc(id + `,"timestamp":"2025-03-04  05:06:07"`), false},
		{"date only", doc(id + `,"timestamp":"2025-03-04"`), false},
		{"February 30", doc(id + `,"timestamp":"2025-02-30T00:00:00Z"`), false},
		{"February 29 of 1900", doc(id + `,"timestamp":"1900-02-29T00:00:00Z"`), false},
		{"hour 24", doc(id + `,"timestamp":"2025-03-04T24:00:00Z"`), false},
		{"offset without colon", doc(id + `,"timestamp":"2025-03-04T05:06:07+0100"`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := s.validate("$", parseDoc(t, []byte(tt.doc)))
			_, err := natsbridge.Decode([]byte(tt.doc))
			if tt.valid {
				assert.Empty(t, errs, "schema refuses %s", tt.doc)
				assert.NoError(t, err, "Decode refuses %s", tt.doc)
			} else {
				assert.NotEmpty(t, errs, "schema admits %s", tt.doc)
				assert.ErrorIs(t, err, natsbridge.ErrMalformed, "Decode accepts %s", tt.doc)
			}
		})
	}
}

// TestDecodeReadsLargeNumbersAsJavaScriptDoes checks the values of numbers
// that do not fit a double.
func TestDecodeReadsLargeNumbersAsJavaScriptDoes(t *testing.T) {
	e, err := natsbridge.Decode([]byte(`{"id":"0b7e6f0e-3c1d-4d2a-9a43-5b0f1c2d3e4f","event_type":"t","severity":"INFO",` +
		`"timestamp":"2025-03-04T05:06:07Z","data":{"big":1e400,"neg":-1e400,"tiny":1e-400,"list":[2e308]}}`))
	require.NoError(t, err)
	assert.True(t, math.IsInf(e.Data["big"].(float64), 1))
	assert.True(t, math.IsInf(e.Data["neg"].(float64), -1))
	assert.Zero(t, e.Data["tiny"])
	assert.True(t, math.IsInf(e.Data["list"].([]any)[0].(float64), 1))
}

// FuzzTimestampSchema builds timestamps from their parts and checks that
// every one the schema's pattern admits decodes, to the instant it names,
// and that every real calendar date in the pattern's years is admitted:
// with a zone, and, for a zero offset, also without one and with a space
// for the 'T', as Python writes them.
func FuzzTimestampSchema(f *testing.F) {
	f.Add(uint16(2025), uint8(3), uint8(4), uint8(5), uint8(6), uint8(7), uint8(9), int16(0), false, false)
	f.Add(uint16(2024), uint8(2), uint8(29), uint8(23), uint8(59), uint8(60), uint8(0), int16(-1439), true, true)
	f.Add(uint16(1), uint8(1), uint8(1), uint8(0), uint8(0), uint8(0), uint8(0), int16(-60), false, true)
	f.Add(uint16(1900), uint8(2), uint8(29), uint8(0), uint8(0), uint8(0), uint8(12), int16(1440), true, false)
	s := loadSchema(f)
	re := regexp.MustCompile(s["properties"].(map[string]any)["timestamp"].(map[string]any)["pattern"].(string))
	f.Fuzz(func(t *testing.T, year uint16, month, day, hour, minute, sec, frac uint8, offset int16, lowerT, lowerZ bool) {
		year %= 10000
		var b strings.Builder
		fmt.Fprintf(&b, "%04d-%02d-%02d", year, month%13, day%32)
		b.WriteString(map[bool]string{false: "T", true: "t"}[lowerT])
		fmt.Fprintf(&b, "%02d:%02d:%02d", hour%25, minute%61, sec%61)
		if frac%12 > 0 {
			b.WriteString("." + strings.Repeat("7", int(frac%12)))
		}
		off := int(offset) % 1500
		switch {
		case off == 0:
			b.WriteString(map[bool]string{false: "Z", true: "z"}[lowerZ])
		case off > 0:
			fmt.Fprintf(&b, "+%02d:%02d", off/60, off%60)
		default:
			fmt.Fprintf(&b, "-%02d:%02d", -off/60, -off%60)
		}
		forms := []string{b.String()}
		if off == 0 { // the same instant as Python writes it: no zone, a space
			naive := strings.TrimRight(b.String(), "Zz")
			forms = append(forms, naive, naive[:10]+" "+naive[11:])
		}
		parts := tsParts{int(year), int(month % 13), int(day % 32), int(hour % 25), int(minute % 61), int(sec % 61), off}
		for _, ts := range forms {
			parts.check(t, re, ts)
		}
	})
}

// tsParts are what a fuzzed timestamp was made of: each field as written,
// not necessarily valid.
type tsParts struct{ year, month, day, hour, minute, sec, off int }

// check holds the schema's pattern and Decode to each other on ts, made of
// p.
func (p tsParts) check(t *testing.T, re *regexp.Regexp, ts string) {
	doc := `{"id":"0b7e6f0e-3c1d-4d2a-9a43-5b0f1c2d3e4f","event_type":"t","severity":"INFO","timestamp":"` + ts + `"}`
	e, err := natsbridge.Decode([]byte(doc))
	if re.MatchString(ts) {
		require.NoError(t, err, "the schema admits %s", ts)
		want := time.Date(p.year, time.Month(p.month), p.day, p.hour, p.minute, p.sec, 0, time.UTC).
			Add(-time.Duration(p.off) * time.Minute)
		assert.Equal(t, want, e.Timestamp.Truncate(time.Second).UTC(), "%s", ts)
		return
	}
	real := time.Date(p.year, time.Month(p.month), p.day, 0, 0, 0, 0, time.UTC)
	if p.year >= 2 && p.month >= 1 && p.day >= 1 && real.Day() == p.day &&
		p.hour < 24 && p.minute < 60 && p.sec < 60 && p.off > -1440 && p.off < 1440 {
		t.Fatalf("the schema refuses %s, a valid timestamp that Go represents", ts)
	}
}
