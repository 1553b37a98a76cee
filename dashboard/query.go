package dashboard

// This file parses the query and the Last-Event-ID of GET /events.

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/adws/eventbus"
)

// streamQuery is what a client asked for in GET /events.
type streamQuery struct {
	filter eventbus.Filter
	names  eventNames
	resume lastEventID
}

// parseStreamQuery reads the filters (type, severity, min_severity,
// adw_id, source; each may repeat, except min_severity), names, and the
// Last-Event-ID header or, for clients that cannot set headers, the
// last_event_id parameter. A Last-Event-ID that is not a decimal number is
// ignored, as if absent.
func parseStreamQuery(r *http.Request) (streamQuery, error) {
	q := r.URL.Query()
	var sq streamQuery
	for _, t := range q["type"] {
		sq.filter.Types = append(sq.filter.Types, eventbus.EventType(t))
	}
	sq.filter.ADWIDs = q["adw_id"]
	sq.filter.Sources = q["source"]
	for _, v := range q["severity"] {
		s, err := parseSeverity("severity", v)
		if err != nil {
			return sq, err
		}
		sq.filter.Severities = append(sq.filter.Severities, s)
	}
	if err := sq.parseMinSeverity(q); err != nil {
		return sq, err
	}
	switch q.Get("names") {
	case "", "type":
		sq.names = namedByType
	case "message":
		sq.names = unnamed
	default:
		return sq, fmt.Errorf("dashboard: names must be type or message, not %q", q.Get("names"))
	}
	id := r.Header.Get("Last-Event-ID")
	if id == "" {
		id = q.Get("last_event_id")
	}
	if seq, err := strconv.ParseUint(id, 10, 64); err == nil {
		sq.resume = lastEventID{seq: seq, set: true}
	}
	return sq, nil
}

// parseMinSeverity sets a Match that keeps events at least as severe as
// min_severity.
func (sq *streamQuery) parseMinSeverity(q url.Values) error {
	vs := q["min_severity"]
	if len(vs) == 0 {
		return nil
	}
	if len(vs) > 1 {
		return fmt.Errorf("dashboard: min_severity given %d times", len(vs))
	}
	least, err := parseSeverity("min_severity", vs[0])
	if err != nil {
		return err
	}
	sq.filter.Match = func(e eventbus.Event) bool { return e.Severity >= least }
	return nil
}

func parseSeverity(param, v string) (eventbus.Severity, error) {
	var s eventbus.Severity
	if err := s.UnmarshalText([]byte(v)); err != nil {
		return s, fmt.Errorf("dashboard: %s: unknown severity %q", param, v)
	}
	return s, nil
}
