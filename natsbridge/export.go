package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// exportAsync is the JetStream exporter, an AsyncHandler: waiting for the
// stream's acknowledgement must not hold up a worker of the bus. Events
// that a handler of an imported event publishes are new events, with ids of
// their own, and are exported like local ones: the id check in admit is
// what keeps imported events from going back out, in both modes.
func (b *Bridge) exportAsync(ctx context.Context, e eventbus.Event) error {
	return b.exportTo(ctx, e)
}

// export is the core NATS exporter, a sync Handler, since Conn.PublishMsg
// does not wait for the network.
func (b *Bridge) export(e eventbus.Event) error { return b.exportTo(nil, e) }

// exportTo publishes e to NATS; hctx is the async handler's ctx (JetStream)
// or nil. Its error goes back to the bus, which logs it and, for
// PublishAndWait, returns it. Every run ends one admission (see admit).
func (b *Bridge) exportTo(hctx context.Context, e eventbus.Event) error {
	defer b.release()
	if !b.exports.enter() {
		b.n.exportErrors.Add(1)
		return ErrClosed
	}
	defer b.exports.exit()

	subject := b.subject(&e)
	if len(subject) > MaxSubjectLen {
		b.n.exportErrors.Add(1)
		return fmt.Errorf("%w: the subject of event %s (type %.40q, workflow %.40q) would be %d bytes, more than %d",
			ErrSubjectTooLong, e.ID, e.Type, e.ADWID, len(subject), MaxSubjectLen)
	}
	buf := encodeBuffers.Get().(*[]byte)
	defer putEncodeBuffer(buf)
	data, ok := appendEvent((*buf)[:0], &e)
	if ok {
		*buf = data // nats.go copies what it sends, so the buffer is free again after the publish
	} else {
		var err error
		if data, err = json.Marshal(e); err != nil {
			b.n.exportErrors.Add(1)
			return fmt.Errorf("natsbridge: encode event: %w", err)
		}
	}
	var err error
	if b.js != nil {
		// WithMsgID adds to the header: each message needs its own.
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{HeaderOrigin: b.originHeader}}
		err = b.publishJetStream(hctx, m, e.ID.String())
	} else {
		// PublishMsg copies what it sends and keeps nothing, so the Msg
		// is free again afterwards. The header is read-only, shared by
		// every core export.
		m := coreMsgs.Get().(*nats.Msg)
		m.Subject, m.Data, m.Header = subject, data, b.header
		err = b.nc.PublishMsg(m)
		*m = nats.Msg{}
		coreMsgs.Put(m)
	}
	if err != nil {
		b.n.exportErrors.Add(1)
		return fmt.Errorf("natsbridge: publish to %s: %w", subject, err)
	}
	b.n.exported.Add(1)
	return nil
}

// coreMsgs holds the messages that core exports publish.
var coreMsgs = sync.Pool{New: func() any { return new(nats.Msg) }}

// encodeBuffers holds the buffers that exports encode events into.
var encodeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// putEncodeBuffer returns buf to the pool, unless an unusually large event
// grew it: the pool should not pin that much memory.
func putEncodeBuffer(buf *[]byte) {
	if cap(*buf) <= 64<<10 {
		encodeBuffers.Put(buf)
	}
}

// A subjectCache remembers the subject of the last exported event's type
// and workflow id, which a stream of events mostly repeats.
type subjectCache struct {
	typ     eventbus.EventType
	adwID   string
	subject string
}

// subject returns Subject(b.prefix, *e), escaping only when the type or the
// workflow id changed since the last call.
func (b *Bridge) subject(e *eventbus.Event) string {
	if c := b.lastSubject.Load(); c != nil && c.typ == e.Type && c.adwID == e.ADWID {
		return c.subject
	}
	c := &subjectCache{typ: e.Type, adwID: e.ADWID, subject: Subject(b.prefix, *e)}
	b.lastSubject.Store(c)
	return c.subject
}

// publishJetStream publishes m with the message id id and waits for the
// stream's acknowledgement, retrying with backoff until the publish-retry
// time is up, Close is called, or hctx (the async handler's) ends. A retry
// after a lost acknowledgement is harmless: the server drops a second
// message with the same id. Errors that another attempt cannot change are
// not retried (see permanent).
func (b *Bridge) publishJetStream(hctx context.Context, m *nats.Msg, id string) error {
	deadline := time.Now().Add(b.cfg.publishRetry)
	wait := retryWaitMin
	for {
		ctx, cancel := context.WithTimeout(b.ctx, publishAttemptWait)
		_, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if b.ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrClosed, err) // the server may have it all the same
		}
		if permanent(err) || hctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", ErrClosed, err)
		case <-hctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, retryWaitMax)
	}
}

// permanent reports whether a JetStream publish failed in a way that
// another attempt cannot change: the message is too large, the subject
// invalid, the connection closed for good, no stream listens on the subject
// (which a clustered stream also says, briefly, while it elects a leader),
// or the server answered with an API error.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrHeadersNotSupported) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.As(err, &apiErr)
}
