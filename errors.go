package eventbus

// This file holds the error types that report failed and unfinished
// handler runs, and HandlerErrors, which finds them in an error tree.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// A HandlerError reports a failed handler run: the handler returned an error,
// panicked or called runtime.Goexit. PublishAndWait returns one per failed run,
// joined with errors.Join; [HandlerErrors] or errors.As get at them.
type HandlerError struct {
	SubscriptionID SubscriptionID
	Name           string // the subscription's WithName, or ""
	EventType      EventType
	EventID        uuid.UUID
	ADWID          string
	Err            error // the handler's error, or the panic as an error; Unwrap returns it
	Panic          any   // the recovered value when the handler panicked
	Stack          []byte
}

var _ error = (*HandlerError)(nil)

// Error names the run and gives its error, for example
//
//	eventbus: handler "webhook" (sub-3) on workflow_failed for wf-001: warehouse unreachable
//
// The name and the workflow appear when they are set.
func (e *HandlerError) Error() string {
	var b strings.Builder
	b.WriteString("eventbus: handler ")
	writeSubscription(&b, e.SubscriptionID, e.Name)
	b.WriteString(" on ")
	b.WriteString(string(e.EventType))
	if e.ADWID != "" {
		b.WriteString(" for ")
		b.WriteString(e.ADWID)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns e.Err, so errors.Is and errors.As see the handler's own error
// (or the error value it panicked with).
func (e *HandlerError) Unwrap() error { return e.Err }

// A PendingError names the runs that had not finished when a PublishAndWait
// caller stopped waiting because its ctx ended. PublishAndWait joins it with
// ctx.Err() and the HandlerErrors of the runs that had already failed. The
// pending runs go on; Drain and Close wait for them.
type PendingError struct {
	Runs []PendingRun // in subscription order, sync runs first
}

// A PendingRun is a handler run that had not finished.
type PendingRun struct {
	SubscriptionID SubscriptionID
	Name           string // the subscription's WithName, or ""
	Async          bool   // a SubscribeAsync handler's run
}

var _ error = (*PendingError)(nil)

// Error names the pending runs, for example
//
//	eventbus: 2 handler runs not finished: "warehouse" (sub-2), sub-4 (async)
func (e *PendingError) Error() string {
	var b strings.Builder
	b.WriteString("eventbus: ")
	b.WriteString(strconv.Itoa(len(e.Runs)))
	if len(e.Runs) == 1 {
		b.WriteString(" handler run not finished: ")
	} else {
		b.WriteString(" handler runs not finished: ")
	}
	for i, r := range e.Runs {
		if i > 0 {
			b.WriteString(", ")
		}
		writeSubscription(&b, r.SubscriptionID, r.Name)
		if r.Async {
			b.WriteString(" (async)")
		}
	}
	return b.String()
}

// writeSubscription writes `"name" (id)`, or the id alone without a name.
func writeSubscription(b *strings.Builder, id SubscriptionID, name string) {
	if name == "" {
		b.WriteString(string(id))
		return
	}
	b.WriteString(strconv.Quote(name))
	b.WriteString(" (")
	b.WriteString(string(id))
	b.WriteString(")")
}

// HandlerErrors returns every *HandlerError in err's tree: err itself, what
// it wraps (Unwrap() error) and what it joins (Unwrap() []error), also
// inside a HandlerError's own Err, depth first, in order. It returns nil
// when there is none.
func HandlerErrors(err error) []*HandlerError {
	var out []*HandlerError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *HandlerError:
			out = append(out, e)
			walk(e.Err) // a handler may return what its own PublishAndWait did
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// errGoexit is the Err of a HandlerError for a handler that called
// runtime.Goexit (as t.FailNow does) instead of returning.
var errGoexit = errors.New("handler called runtime.Goexit")

// panicError turns a recovered panic value into an error that wraps it when
// it is one.
func panicError(v any) error {
	if err, ok := v.(error); ok {
		return fmt.Errorf("panic: %w", err)
	}
	return fmt.Errorf("panic: %v", v)
}
