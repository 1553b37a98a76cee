package eventbus

import (
	"slices"
	"strings"
)

// A Filter selects events. Each non-empty field constrains one property of the
// event: the event matches when its value is one of the listed values. An empty
// field constrains nothing, so the zero Filter matches every event. Match, when
// set, is one more predicate that must return true.
//
// A Filter is a [SubscribeOption]: bus.Subscribe(h, Filter{Types: ...}) delivers
// only matching events. Subscribe copies the slices, so changing them later does
// not change the subscription. Given several Filters, a subscription receives an
// event only when every one of them matches.
//
// Match is called on the publishing goroutine, once per event and subscription,
// possibly from many goroutines at once; it must be fast and must not block.
type Filter struct {
	Types      []EventType
	Severities []Severity
	ADWIDs     []string
	Sources    []string
	Match      func(Event) bool // optional extra predicate
}

// Matches reports whether e satisfies every set field of f.
func (f Filter) Matches(e Event) bool {
	return f.fieldsMatch(&e) && (f.Match == nil || f.Match(e))
}

// fieldsMatch reports whether e satisfies f's lists, leaving out Match.
func (f *Filter) fieldsMatch(e *Event) bool {
	return (len(f.Types) == 0 || slices.Contains(f.Types, e.Type)) &&
		(len(f.Severities) == 0 || slices.Contains(f.Severities, e.Severity)) &&
		(len(f.ADWIDs) == 0 || slices.Contains(f.ADWIDs, e.ADWID)) &&
		(len(f.Sources) == 0 || slices.Contains(f.Sources, e.Source))
}

// String summarises f for logs and tables, for example
// "types=[workflow_failed] severities=[ERROR CRITICAL] match=func". The zero
// Filter is "all".
func (f Filter) String() string {
	var b strings.Builder
	field := func(name string, n int, item func(int) string) {
		if n == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
		b.WriteString("=[")
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(item(i))
		}
		b.WriteByte(']')
	}
	field("types", len(f.Types), func(i int) string { return string(f.Types[i]) })
	field("severities", len(f.Severities), func(i int) string { return f.Severities[i].String() })
	field("adw_ids", len(f.ADWIDs), func(i int) string { return f.ADWIDs[i] })
	field("sources", len(f.Sources), func(i int) string { return f.Sources[i] })
	if f.Match != nil {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("match=func")
	}
	if b.Len() == 0 {
		return "all"
	}
	return b.String()
}

func (f Filter) applySubscription(s *subscription) {
	s.filters = append(s.filters, f.clone())
}

// clone copies the slices of f so that the caller may reuse them.
func (f Filter) clone() Filter {
	f.Types = slices.Clone(f.Types)
	f.Severities = slices.Clone(f.Severities)
	f.ADWIDs = slices.Clone(f.ADWIDs)
	f.Sources = slices.Clone(f.Sources)
	return f
}
