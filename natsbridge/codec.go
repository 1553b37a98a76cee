package natsbridge

import (
	"errors"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/adws/eventbus"
	"github.com/google/uuid"
)

// This file holds the fast paths of Encode and Decode. encoding/json costs
// several microseconds per event through reflection, more than NATS itself,
// so the bridge writes and reads the common shapes of an Event by hand. The
// output is byte for byte what json.Marshal produces, and the fast decoder
// accepts only input whose meaning is plain; for anything else (a type in
// Data it does not know, an unknown or repeated key, a null, deep nesting)
// both fall back to encoding/json, which stays the reference. Fuzz tests
// compare the two.

// maxFastDepth bounds the nesting the fast paths follow in Data; deeper
// values (and cyclic maps, which json.Marshal rejects) take the slow path.
const maxFastDepth = 32

const lowerHex = "0123456789abcdef"

// appendEvent appends the JSON of e to dst, or returns false if e needs
// encoding/json: an unknown severity, a timestamp that RFC 3339 cannot
// express, or Data holding a type the fast path does not handle.
func appendEvent(dst []byte, e *eventbus.Event) ([]byte, bool) {
	if !knownSeverity(e.Severity) {
		return dst, false // json.Marshal reports the error
	}
	dst = append(dst, `{"id":"`...)
	dst = appendUUID(dst, e.ID)
	dst = append(dst, `","adw_id":`...)
	dst = appendJSONString(dst, e.ADWID)
	dst = append(dst, `,"event_type":`...)
	dst = appendJSONString(dst, string(e.Type))
	dst = append(dst, `,"source":`...)
	dst = appendJSONString(dst, e.Source)
	dst = append(dst, `,"severity":"`...)
	dst = append(dst, e.Severity.String()...)
	dst = append(dst, `","message":`...)
	dst = appendJSONString(dst, e.Message)
	dst = append(dst, `,"timestamp":"`...)
	var ok bool
	if dst, ok = appendTimestamp(dst, e.Timestamp); !ok {
		return dst, false
	}
	dst = append(dst, '"')
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		if dst, ok = appendValue(dst, e.Data, 0); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

func appendUUID(dst []byte, id uuid.UUID) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, lowerHex[c>>4], lowerHex[c&0x0f])
	}
	return dst
}

// wireLayout is how eventbus.Event.MarshalJSON writes a timestamp: RFC 3339
// in UTC with nine fractional digits.
const wireLayout = "2006-01-02T15:04:05.000000000Z07:00"

// appendTimestamp appends t as eventbus.Event.MarshalJSON writes it, or
// returns false where MarshalJSON fails: a year outside 0..9999 in UTC.
func appendTimestamp(dst []byte, t time.Time) ([]byte, bool) {
	u := t.UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	return u.AppendFormat(dst, wireLayout), true
}

// knownSeverity reports whether s is one of eventbus's severities.
func knownSeverity(s eventbus.Severity) bool {
	switch s {
	case eventbus.SeverityDebug, eventbus.SeverityInfo, eventbus.SeverityWarning,
		eventbus.SeverityError, eventbus.SeverityCritical:
		return true
	}
	return false
}

// appendJSONString appends s as a JSON string the way json.Marshal writes
// it: '"' and '\\' escaped, control characters as \b, \f, \n, \r, \t or
// \u00XX, '<', '>' and '&' as \u003c, \u003e and \u0026, U+2028 and U+2029
// escaped, and each byte of invalid UTF-8 as \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	plain := 0 // s[plain:i] needs no escaping and is not yet appended
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[plain:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0x0f])
			}
			i++
			plain = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[plain:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[plain:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[r&0x0f])
		default:
			i += size
			continue
		}
		i += size
		plain = i
	}
	dst = append(dst, s[plain:]...)
	return append(dst, '"')
}

// appendValue appends v, a value from Data, or returns false for a type the
// fast path does not handle.
func appendValue(dst []byte, v any, depth int) ([]byte, bool) {
	if depth > maxFastDepth {
		return dst, false
	}
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendJSONString(dst, v), true
	case bool:
		return strconv.AppendBool(dst, v), true
	case float64:
		return appendFloat(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int64:
		return strconv.AppendInt(dst, v, 10), true
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), true
	case uint64:
		return strconv.AppendUint(dst, v, 10), true
	case map[string]any:
		if v == nil {
			return append(dst, "null"...), true
		}
		var small [8]string // most Data maps are small: sort their keys on the stack
		keys := small[:0]
		if len(v) > len(small) {
			keys = make([]string, 0, len(v))
		}
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, strings.Compare)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendValue(dst, v[k], depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	case []any:
		if v == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendValue(dst, x, depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case []string:
		if v == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, x)
		}
		return append(dst, ']'), true
	}
	return dst, false
}

// appendFloat writes f the way json.Marshal writes a float64: the shortest
// decimal that reads back as f, in exponent form below 1e-6 and from 1e21,
// with an exponent of at least one digit. NaN and infinities return false.
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	abs := math.Abs(f)
	if abs == 0 || abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64), true
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// strconv writes at least two exponent digits ("1e-07"); JSON writers
	// that follow ECMAScript use as few as needed ("1e-7").
	if e := slices.Index(dst[n:], 'e'); e >= 0 {
		exp := dst[n+e+2:] // the digits after "e+" or "e-"
		if len(exp) == 2 && exp[0] == '0' {
			exp[0] = exp[1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst, true
}

// A fastDecoder parses the wire form of an Event. Every method returns
// false when the input leaves what the fast path handles; Decode then asks
// encoding/json, which either decodes it or says what is wrong with it.
type fastDecoder struct {
	s []byte
	i int
}

// Bits of the top-level keys seen, so that a repeated key takes the slow path.
const (
	seenID = 1 << iota
	seenADWID
	seenType
	seenSource
	seenSeverity
	seenMessage
	seenTimestamp
	seenData
)

// decodeFast parses data into e and reports which keys it saw, or returns
// ok == false to hand the input to encoding/json.
func decodeFast(data []byte) (e eventbus.Event, seen int, ok bool) {
	d := fastDecoder{s: data}
	d.space()
	if !d.byte('{') {
		return e, 0, false
	}
	d.space()
	if d.byte('}') {
		return e, 0, d.end()
	}
	for {
		d.space()
		key, ok := d.rawString()
		if !ok || !d.colon() {
			return e, 0, false
		}
		var bit int
		switch string(key) {
		case "id":
			bit = seenID
			var raw []byte
			if raw, ok = d.rawString(); ok {
				var err error
				e.ID, err = uuid.ParseBytes(raw)
				ok = err == nil
			}
		case "adw_id":
			bit = seenADWID
			e.ADWID, ok = d.internedString()
		case "event_type":
			bit = seenType
			var t string
			t, ok = d.internedString()
			e.Type = eventbus.EventType(t).Canonical()
		case "source":
			bit = seenSource
			e.Source, ok = d.internedString()
		case "severity":
			bit = seenSeverity
			raw, rawOK := d.rawString()
			ok = rawOK && e.Severity.UnmarshalText(raw) == nil
		case "message":
			bit = seenMessage
			e.Message, ok = d.string()
		case "timestamp":
			bit = seenTimestamp
			raw, rawOK := d.rawString()
			if ok = rawOK; ok {
				e.Timestamp, ok = parseTimestamp(raw)
			}
		case "data":
			bit = seenData
			d.space()
			if d.literal("null") {
				break
			}
			if d.i >= len(d.s) || d.s[d.i] != '{' {
				return e, 0, false
			}
			var v any
			v, ok = d.value(0)
			e.Data, _ = v.(map[string]any)
		default:
			return e, 0, false // unknown keys, or keys in another case
		}
		if !ok || seen&bit != 0 {
			return e, 0, false
		}
		seen |= bit
		d.space()
		if d.byte(',') {
			continue
		}
		if d.byte('}') {
			return e, seen, d.end()
		}
		return e, 0, false
	}
}

// skipPlain returns the index of the first byte at or after i that is not
// plain ASCII (see plainASCII). A word-at-a-time (SWAR) scan was measured
// against this loop and gained nothing on ADWS events, whose strings are
// short, so the simple loop stays.
func skipPlain(s []byte, i int) int {
	for i < len(s) && plainASCII[s[i]] {
		i++
	}
	return i
}

// plainASCII marks the bytes that stand for themselves inside a JSON
// string: printable ASCII except '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (d *fastDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c if it comes next.
func (d *fastDecoder) byte(c byte) bool {
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *fastDecoder) colon() bool {
	d.space()
	if !d.byte(':') {
		return false
	}
	d.space()
	return true
}

// end reports whether only whitespace is left.
func (d *fastDecoder) end() bool {
	d.space()
	return d.i == len(d.s)
}

func (d *fastDecoder) literal(lit string) bool {
	if len(d.s)-d.i >= len(lit) && string(d.s[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// rawString consumes a string without escapes, made of printable ASCII and
// valid UTF-8, and returns its content. It shares memory with the input.
func (d *fastDecoder) rawString() ([]byte, bool) {
	d.space()
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.s) {
		d.i = skipPlain(d.s, d.i)
		if d.i >= len(d.s) {
			break
		}
		c := d.s[d.i]
		if plainASCII[c] {
			d.i++
			continue
		}
		switch {
		case c == '"':
			s := d.s[start:d.i]
			d.i++
			return s, true
		case c == '\\' || c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.s[d.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			d.i += size
		}
	}
	return nil, false
}

// internedString is string for values that repeat from event to event
// (types, workflow ids, sources, keys of Data): a plain string short enough
// to intern comes from the intern table, without allocating.
func (d *fastDecoder) internedString() (string, bool) {
	start := d.i
	raw, ok := d.rawString()
	if !ok {
		d.i = start
		return d.string()
	}
	return intern(raw), true
}

// string consumes a JSON string and returns a copy of its value, with
// escapes resolved as encoding/json resolves them.
func (d *fastDecoder) string() (string, bool) {
	d.space()
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	// Fast scan: most strings have no escape and no invalid UTF-8.
	for d.i < len(d.s) {
		d.i = skipPlain(d.s, d.i)
		if d.i >= len(d.s) {
			break
		}
		c := d.s[d.i]
		if plainASCII[c] {
			d.i++
			continue
		}
		if c == '"' {
			s := string(d.s[start:d.i])
			d.i++
			return s, true
		}
		if c == '\\' || c < ' ' {
			break
		}
		if c < utf8.RuneSelf {
			d.i++
			continue
		}
		r, size := utf8.DecodeRune(d.s[d.i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		d.i += size
	}
	b := make([]byte, 0, d.i-start+16)
	b = append(b, d.s[start:d.i]...)
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), true
		case c < ' ':
			return "", false
		case c == '\\':
			var ok bool
			if b, ok = d.escape(b); !ok {
				return "", false
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.s[d.i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.s[d.i:d.i+size]...)
			}
			d.i += size
		}
	}
	return "", false
}

// escape resolves the escape sequence at d.i, which holds a backslash. A
// \u escape of half a surrogate pair that is not followed by the other half
// becomes U+FFFD.
func (d *fastDecoder) escape(b []byte) ([]byte, bool) {
	if d.i+1 >= len(d.s) {
		return b, false
	}
	c := d.s[d.i+1]
	d.i += 2
	switch c {
	case '"', '\\', '/':
		return append(b, c), true
	case 'b':
		return append(b, '\b'), true
	case 'f':
		return append(b, '\f'), true
	case 'n':
		return append(b, '\n'), true
	case 'r':
		return append(b, '\r'), true
	case 't':
		return append(b, '\t'), true
	case 'u':
		r, ok := hex4(d.s[d.i:])
		if !ok {
			return b, false
		}
		d.i += 4
		if utf16.IsSurrogate(r) {
			if len(d.s)-d.i >= 6 && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
				if r2, ok := hex4(d.s[d.i+2:]); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						d.i += 6
						return utf8.AppendRune(b, pair), true
					}
				}
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(b, r), true
	}
	return b, false
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// value parses any JSON value as encoding/json decodes it into an any:
// objects as map[string]any, arrays as []any, numbers as float64.
func (d *fastDecoder) value(depth int) (any, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	d.space()
	if d.i >= len(d.s) {
		return nil, false
	}
	switch c := d.s[d.i]; {
	case c == '{':
		d.i++
		d.space()
		if d.byte('}') {
			return make(map[string]any), true
		}
		// Room for eight entries at once spares the map's first growth,
		// a quarter of the cost of building a small map.
		m := make(map[string]any, 8)
		for {
			k, ok := d.internedString()
			if !ok || !d.colon() {
				return nil, false
			}
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v
			d.space()
			if d.byte(',') {
				d.space()
				continue
			}
			if d.byte('}') {
				return m, true
			}
			return nil, false
		}
	case c == '[':
		d.i++
		a := []any{}
		d.space()
		if d.byte(']') {
			return a, true
		}
		for {
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			a = append(a, v)
			d.space()
			if d.byte(',') {
				continue
			}
			if d.byte(']') {
				return a, true
			}
			return nil, false
		}
	case c == '"':
		return d.internedString() // values such as table names repeat too
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	return nil, false
}

// number parses a JSON number, checking its grammar strictly.
func (d *fastDecoder) number() (any, bool) {
	start := d.i
	d.byte('-')
	switch {
	case d.byte('0'):
	case d.digits() > 0:
	default:
		return nil, false
	}
	if d.byte('.') && d.digits() == 0 {
		return nil, false
	}
	if d.byte('e') || d.byte('E') {
		if !d.byte('+') {
			d.byte('-')
		}
		if d.digits() == 0 {
			return nil, false
		}
	}
	return parseNumber(d.s[start:d.i])
}

// parseNumber converts a JSON number to a float64 as JavaScript does: the
// nearest double, ±Inf beyond the largest one, ±0 below the smallest.
func parseNumber(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil || errors.Is(err, strconv.ErrRange)
}

// parseTimestamp parses a timestamp as the bus does
// (eventbus.ParseTimestamp), so that a bridge and a bus read the same
// documents: RFC 3339 with 'T' and 'Z' in either case, or ISO 8601 without
// a zone (UTC), with a space for the 'T' too.
func parseTimestamp(raw []byte) (time.Time, bool) {
	t, err := eventbus.ParseTimestamp(string(raw))
	return t, err == nil
}

func (d *fastDecoder) digits() int {
	n := 0
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// The intern table holds recently decoded short strings, one per slot, chosen
// by hash. A slot is replaced when another string hashes to it, so the table
// never grows, and sharing a string is always correct, since strings are
// immutable.
var (
	internSeed  = maphash.MakeSeed()
	internTable [1024]atomic.Pointer[string]
)

const maxInternLen = 64

// intern returns b as a string, from the intern table when it is there.
func intern(b []byte) string {
	if len(b) > maxInternLen {
		return string(b)
	}
	slot := &internTable[maphash.Bytes(internSeed, b)%uint64(len(internTable))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
