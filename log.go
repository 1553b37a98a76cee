package eventbus

// This file holds the log lines of handler runs: their keys and how a run
// is written. Nothing is formatted for a disabled level, and a logger that
// panics loses its line and nothing else.

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Log keys, spelled like the JSON tags of Event.
const (
	keySubscriptionID   = "subscription_id"
	keySubscriptionName = "subscription_name"
	keyEventID          = "event_id"
	keyEventType        = "event_type"
	keyADWID            = "adw_id"
	keyDuration         = "duration"
	keyError            = "error"
	keyStack            = "stack"
)

// enabled reports whether the logger writes lines at level. A logger whose
// Enabled panics writes none: like a logger that panics in Handle, it loses
// its lines and nothing else.
func (b *Bus) enabled(ctx context.Context, level slog.Level) (on bool) {
	defer func() {
		if recover() != nil {
			on = false
		}
	}()
	return b.log.Enabled(ctx, level)
}

// logFailure logs a failed run at Error.
func (b *Bus) logFailure(c *call) {
	msg := "handler failed"
	if c.state == callPanicked {
		msg = "handler panicked"
	}
	b.logRun(slog.LevelError, msg, c)
}

// logRun logs one run at level, with its error and stack if it failed.
func (b *Bus) logRun(level slog.Level, msg string, c *call) {
	s, e, ctx := c.slot.s, &c.ref.d.e, c.ctx
	if !b.enabled(ctx, level) {
		return
	}
	defer func() { _ = recover() }() // the logger's own failure: nowhere left to report it
	var buf [9]slog.Attr
	attrs := append(runAttrs(buf[:0], s, e.Type, e.ID, e.ADWID), slog.Duration(keyDuration, time.Duration(c.end-c.start)))
	if he, ok := c.err.(*HandlerError); ok {
		attrs = append(attrs, slog.Any(keyError, he))
		if he.Stack != nil {
			attrs = append(attrs, slog.String(keyStack, string(he.Stack)))
		}
	}
	b.log.LogAttrs(ctx, level, msg, attrs...)
}

// runAttrs appends the attributes that name a run of s for an event.
func runAttrs(attrs []slog.Attr, s *subscription, typ EventType, id uuid.UUID, adwID string) []slog.Attr {
	attrs = append(attrs, slog.String(keySubscriptionID, string(s.id)))
	if s.name != "" {
		attrs = append(attrs, slog.String(keySubscriptionName, s.name))
	}
	return append(attrs,
		slog.String(keyEventType, string(typ)),
		slog.Any(keyEventID, id),
		slog.String(keyADWID, adwID),
	)
}
