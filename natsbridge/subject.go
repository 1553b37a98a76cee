package natsbridge

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/adws/eventbus"
)

// DefaultSubjectPrefix is the subject prefix of a Bridge built without
// WithSubjectPrefix.
const DefaultSubjectPrefix = "adws.events"

// MaxSubjectLen is the longest subject, in bytes, that an exporting Bridge
// publishes to. A NATS server reads a message's subject in its control line,
// whose length it limits (max_control_line, 4 KiB by default) together with
// the reply subject and the sizes, and closes the connection of a client
// that sends a longer one, losing everything else in flight on it. The
// bridge refuses such an event instead: see [ErrSubjectTooLong].
const MaxSubjectLen = 1024

// emptyToken stands for an empty value (an event without a workflow id) in a
// subject. A value that is exactly "_" is escaped as "%5F", so the two never
// collide.
const emptyToken = "_"

// Subject returns the subject an exporting Bridge publishes e to:
// prefix, then EscapeToken(e.Type), then EscapeToken(e.ADWID), joined by
// dots. For example, with the default prefix, an event of type step_failed
// in workflow adw-7 goes to "adws.events.step_failed.adw-7", and one without
// a workflow id to "adws.events.step_failed._". Subject does not check
// prefix; [WithSubjectPrefix] does.
func Subject(prefix string, e eventbus.Event) string {
	t, id := EscapeToken(string(e.Type)), EscapeToken(e.ADWID)
	var b strings.Builder
	b.Grow(len(prefix) + len(t) + len(id) + 2)
	b.WriteString(prefix)
	b.WriteByte('.')
	b.WriteString(t)
	b.WriteByte('.')
	b.WriteString(id)
	return b.String()
}

// EscapeToken returns s as one NATS subject token that holds no wildcard and
// no separator, so that servers can match it with "*" and ">":
//
//   - The empty string becomes "_", and "_" itself becomes "%5F".
//   - Every byte of '.', '*', '>', '%', an ASCII control character, DEL,
//     a Unicode space (unicode.IsSpace) or invalid UTF-8 becomes "%XX", two
//     upper-case hex digits per byte.
//   - Everything else, including other UTF-8 text, is kept as it is.
//
// The mapping is injective and [UnescapeToken] reverses it. A value that needs
// no escaping is returned without allocating.
func EscapeToken(s string) string {
	if s == "" {
		return emptyToken
	}
	if s == emptyToken {
		return "%5F"
	}
	i := 0
	for i < len(s) {
		n := escapedLen(s, i)
		if n < 0 {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		if n := escapedLen(s, i); n > 0 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		// Escape the whole rune, or the one invalid byte.
		_, size := utf8.DecodeRuneInString(s[i:])
		for _, c := range []byte(s[i : i+size]) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0f])
		}
		i += size
	}
	return b.String()
}

const hexDigits = "0123456789ABCDEF"

// escapedLen returns the length of the rune at s[i] if it may stay as it is
// in a token, and -1 if it must be escaped.
func escapedLen(s string, i int) int {
	c := s[i]
	if c < utf8.RuneSelf {
		if c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' || c == '%' {
			return -1
		}
		return 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 || unicode.IsSpace(r) {
		return -1
	}
	return size
}

// UnescapeToken reverses [EscapeToken]: "_" becomes the empty string and
// every "%XX" the byte it stands for. It accepts only the tokens that
// EscapeToken produces, so that a subject names one (type, workflow id) pair
// and each pair has one subject: it returns an error wrapping [ErrMalformed]
// for a character EscapeToken escapes, a '%' not followed by two upper-case
// hex digits, and an escape that EscapeToken would not have written ("%41"
// for "A", "%5Fx" for "_x", "%C3%A9" for "é").
func UnescapeToken(token string) (string, error) {
	if token == emptyToken {
		return "", nil
	}
	if token == "" {
		return "", fmt.Errorf("%w: empty subject token", ErrMalformed)
	}
	if !strings.Contains(token, "%") {
		if err := checkToken(token); err != nil {
			return "", err
		}
		return token, nil
	}
	b := make([]byte, 0, len(token))
	for i := 0; i < len(token); {
		if token[i] != '%' {
			if n := escapedLen(token, i); n > 0 {
				b = append(b, token[i:i+n]...)
				i += n
				continue
			}
			return "", fmt.Errorf("%w: unescaped character in subject token %q", ErrMalformed, token)
		}
		if i+2 >= len(token) || unhex(token[i+1]) < 0 || unhex(token[i+2]) < 0 {
			return "", fmt.Errorf("%w: bad escape in subject token %q", ErrMalformed, token)
		}
		b = append(b, byte(unhex(token[i+1])<<4|unhex(token[i+2])))
		i += 3
	}
	s := string(b)
	// Escaping is a function: the token is canonical exactly when escaping
	// its value gives it back. This refuses escapes of bytes that stand for
	// themselves, and a lone "%5F" followed by more text.
	if EscapeToken(s) != token {
		return "", fmt.Errorf("%w: subject token %q is not in canonical form", ErrMalformed, token)
	}
	return s, nil
}

func checkToken(token string) error {
	for i := 0; i < len(token); {
		n := escapedLen(token, i)
		if n < 0 {
			return fmt.Errorf("%w: unescaped character in subject token %q", ErrMalformed, token)
		}
		i += n
	}
	return nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// ParseSubject splits a subject built by [Subject] with the given prefix
// into the event type and workflow id it encodes. It returns an error
// wrapping [ErrMalformed] when subject does not start with prefix followed by
// exactly two tokens, or a token is not one EscapeToken produces.
func ParseSubject(prefix, subject string) (eventbus.EventType, string, error) {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return "", "", fmt.Errorf("%w: subject %q does not start with %q", ErrMalformed, subject, prefix+".")
	}
	t, id, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(id, ".") {
		return "", "", fmt.Errorf("%w: subject %q does not have two tokens after the prefix", ErrMalformed, subject)
	}
	typ, err := UnescapeToken(t)
	if err != nil {
		return "", "", err
	}
	adw, err := UnescapeToken(id)
	if err != nil {
		return "", "", err
	}
	return eventbus.EventType(typ), adw, nil
}

// validSubject reports whether s is a subject or, with wildcards, a subject
// pattern that a NATS server accepts: non-empty tokens without whitespace,
// where "*" and ">" stand alone and ">" comes last.
func validSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return false
		case strings.IndexFunc(t, unicode.IsSpace) >= 0:
			return false
		case t == "*" || t == ">":
			if !wildcards || t == ">" && i != len(tokens)-1 {
				return false
			}
		case strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}
