package eventbus

// This file holds the error types that report failed handler runs.

import (
	"errors"
	"fmt"
)

// A HandlerError reports a failed handler run: the handler returned an error,
// panicked or called runtime.Goexit. PublishAndWait returns one per failed run,
// joined with errors.Join; use errors.As to get at them.
type HandlerError struct {
	SubscriptionID SubscriptionID
	EventType      EventType
	Err            error // the handler's error, or the panic as an error; Unwrap returns it
	Panic          any   // the recovered value when the handler panicked
	Stack          []byte
}

var _ error = (*HandlerError)(nil)

func (e *HandlerError) Error() string {
	return "eventbus: handler " + string(e.SubscriptionID) + " on " + string(e.EventType) + ": " + e.Err.Error()
}

// Unwrap returns e.Err, so errors.Is and errors.As see the handler's own error
// (or the error value it panicked with).
func (e *HandlerError) Unwrap() error { return e.Err }

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
