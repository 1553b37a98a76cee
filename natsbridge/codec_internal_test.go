package natsbridge

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/google/uuid"
)

// sameEvent reports whether a and b are equal, timestamps compared as
// instants with the same zone offset.
func sameEvent(a, b eventbus.Event) bool {
	_, oa := a.Timestamp.Zone()
	_, ob := b.Timestamp.Zone()
	if !a.Timestamp.Equal(b.Timestamp) || oa != ob {
		return false
	}
	a.Timestamp, b.Timestamp = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// checkEncode fails t unless Encode(e) is exactly what json.Marshal makes,
// or both fail.
func checkEncode(t *testing.T, e eventbus.Event) {
	t.Helper()
	got, err := Encode(e)
	want, wantErr := json.Marshal(e)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Encode() error = %v, json.Marshal error = %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode() = %s\njson.Marshal = %s", got, want)
	}
}

// checkDecode fails t unless Decode and the encoding/json reference agree.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	got, err := Decode(data)
	want, wantErr := decodeSlow(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Decode(%q) error = %v, reference error = %v", data, err, wantErr)
	}
	if err == nil && !sameEvent(got, want) {
		t.Fatalf("Decode(%q) = %+v\nreference = %+v", data, got, want)
	}
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	tests := []struct {
		name string
		e    eventbus.Event
	}{
		{"zero data", eventbus.Event{ID: uuid.New(), Type: "t", Timestamp: ts}},
		{"all fields", eventbus.Event{ID: uuid.New(), ADWID: "adw-1", Type: eventbus.StepFailed, Source: "loader",
			Severity: eventbus.SeverityCritical, Message: "boom", Timestamp: ts,
			Data: map[string]any{"rows": 12, "ratio": 0.5, "ok": true, "none": nil, "name": "x",
				"nested": map[string]any{"b": []any{1.0, "two", false}, "a": []string{"p", "q"}}}}},
		{"escapes", eventbus.Event{ID: uuid.New(), Type: "a\"b\\c", Message: "<tag> & \n\t\r\b\f\x01 \u2028\u2029 é \xff",
			Timestamp: ts}},
		{"zone", eventbus.Event{ID: uuid.New(), Type: "t", Timestamp: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("x", -(5*3600+30*60)))}},
		{"floats", eventbus.Event{ID: uuid.New(), Type: "t", Timestamp: ts, Data: map[string]any{
			"a": 1e-7, "b": 1e21, "c": 123456789.125, "d": -0.0, "e": 1e-6, "f": 5e-324, "g": math.MaxFloat64, "h": int64(-9)}}},
		{"unknown severity", eventbus.Event{ID: uuid.New(), Type: "t", Severity: 9, Timestamp: ts}},
		{"year 10000", eventbus.Event{ID: uuid.New(), Type: "t", Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"NaN", eventbus.Event{ID: uuid.New(), Type: "t", Timestamp: ts, Data: map[string]any{"x": math.NaN()}}},
		{"other type", eventbus.Event{ID: uuid.New(), Type: "t", Timestamp: ts, Data: map[string]any{"x": uint8(3), "y": []int{1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkEncode(t, tt.e) })
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	id := uuid.New()
	valid := `{"id":"` + id.String() + `","adw_id":"adw-1","event_type":"step_failed","source":"s","severity":"ERROR","message":"m","timestamp":"2025-03-04T05:06:07.00000089Z","data":{"rows":12,"x":[1,"a",null,true,{}]}}`
	tests := []struct {
		name  string
		input string
	}{
		{"valid", valid},
		{"spaces", " {\n\"id\" : \"" + id.String() + "\" , \"event_type\":\"t\",\"severity\":\"info\",\"timestamp\":\"2025-03-04T05:06:07+01:00\" } "},
		{"escapes", `{"id":"` + id.String() + `","event_type":"a\"b\\\/\u00e9\ud83d\ude00\ud800x","message":"\n\t","severity":"WARN","timestamp":"2025-03-04T05:06:07Z"}`},
		{"null data", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z","data":null}`},
		{"missing severity", `{"id":"` + id.String() + `","event_type":"t","timestamp":"2025-03-04T05:06:07Z"}`},
		{"missing id", `{"event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`},
		{"missing timestamp", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO"}`},
		{"null id", `{"id":null,"event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`},
		{"upper-case key", `{"ID":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`},
		{"key differing in case", `{"id":"` + id.String() + `","Message":{"x":1},"ID":"x","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`},
		{"lower-case t and z", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"2025-03-04t05:06:07.5z"}`},
		{"number beyond a double", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z","data":{"n":1e400,"m":[-1e400,1e-400]}}`},
		{"number beyond a double, slow path", `{"id":"` + id.String() + `","event_type":"t","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z","data":{"n":1e400}}`},
		{"nil id", `{"id":"00000000-0000-0000-0000-000000000000","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`},
		{"null document", `null`},
		{"unknown key", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z","extra":[1,2]}`},
		{"repeated key", `{"id":"` + id.String() + `","event_type":"t","event_type":"u","severity":"INFO","timestamp":"2025-03-04T05:06:07Z"}`},
		{"bad severity", `{"id":"` + id.String() + `","event_type":"t","severity":"LOUD","timestamp":"2025-03-04T05:06:07Z"}`},
		{"bad timestamp", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"yesterday"}`},
		{"bad number", `{"id":"` + id.String() + `","event_type":"t","severity":"INFO","timestamp":"2025-03-04T05:06:07Z","data":{"n":01}}`},
		{"trailing", valid + "x"},
		{"truncated", valid[:len(valid)-3]},
		{"not an object", `[1]`},
		{"empty", ``},
		{"garbage", "\x00\xff not json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkDecode(t, []byte(tt.input)) })
	}
}

// FuzzDecode checks that the fast decoder agrees with encoding/json on any
// input, valid or not, and never panics.
func FuzzDecode(f *testing.F) {
	e := eventbus.Event{ID: uuid.New(), ADWID: "adw-1", Type: "step_failed", Severity: eventbus.SeverityError,
		Message: "m\n\"q\"", Timestamp: time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC),
		Data: map[string]any{"a": 1.5, "b": []any{"x", nil, true}, "c": map[string]any{}}}
	seed, _ := json.Marshal(e)
	f.Add(seed)
	f.Add([]byte(`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","event_type":"\ud800","severity":"warn","timestamp":"2025-01-01T00:00:00.5-07:00","data":{"k":-1.5e+3}}`))
	f.Add([]byte(`{}`))
	// Odd text the core decodes as encoding/json does (doc.go): the bridge
	// must decode it the same way.
	f.Add([]byte("{\"event_type\":\"x\",\"message\":\"a\xffb\",\"source\":\"\\udcff\"}"))
	f.Add([]byte(`{"event_type":"a","event_type":"b","severity":"INFO","severity":null}`))
	f.Add([]byte(`{"event_type":"x","data":{"a":[[[[{"b":[]}]]]]}}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// FuzzEncode checks that Encode writes exactly what json.Marshal writes, and
// that Decode reads it back.
func FuzzEncode(f *testing.F) {
	f.Add("adw-1", "step_failed", "src", "msg <&>", int8(1), int64(1741064767000000008), int32(0), "k", "v", 1.5)
	f.Add("", "t\x00", "\xff", "\u2028", int8(7), int64(-1), int32(3600), "", "\"", 1e-9)
	f.Fuzz(func(t *testing.T, adw, typ, src, msg string, sev int8, nanos int64, offset int32, key, sval string, fval float64) {
		e := eventbus.Event{
			ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(msg)), ADWID: adw, Type: eventbus.EventType(typ), Source: src,
			Severity: eventbus.Severity(sev), Message: msg,
			Timestamp: time.Unix(0, nanos).In(time.FixedZone("z", int(offset%(30*3600)))),
			Data:      map[string]any{key: sval, key + "f": fval, key + "m": map[string]any{sval: []any{fval, nil}}},
		}
		checkEncode(t, e)
		data, err := Encode(e)
		if err != nil {
			return
		}
		checkDecode(t, data)
	})
}

func BenchmarkEncode(b *testing.B) {
	e := eventbus.Event{ID: uuid.New(), ADWID: "adw-42", Type: eventbus.StepCompleted, Source: "loader",
		Severity: eventbus.SeverityInfo, Message: "loaded orders into the warehouse", Timestamp: time.Now(),
		Data: map[string]any{"rows": 1200, "table": "orders"}}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Encode(e)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(e)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	e := eventbus.Event{ID: uuid.New(), ADWID: "adw-42", Type: eventbus.StepCompleted, Source: "loader",
		Severity: eventbus.SeverityInfo, Message: "loaded orders into the warehouse", Timestamp: time.Now(),
		Data: map[string]any{"rows": 1200, "table": "orders"}}
	data, _ := Encode(e)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Decode(data)
		}
	})
	b.Run("slow-path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = decodeSlow(data)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e eventbus.Event
			_ = json.Unmarshal(data, &e)
		}
	})
}
