package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
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
	var err error
	if subject := b.subject(&e); len(subject) > MaxSubjectLen {
		err = fmt.Errorf("%w: the subject of event %s (type %.40q, workflow %.40q) would be %d bytes, more than %d",
			ErrSubjectTooLong, e.ID, e.Type, e.ADWID, len(subject), MaxSubjectLen)
	} else if b.js != nil {
		err = b.exportJetStream(hctx, subject, &e)
	} else {
		err = b.exportCore(subject, &e)
	}
	if err != nil {
		b.n.exportErrors.Add(1)
		return err
	}
	b.n.exported.Add(1)
	return nil
}

// exportCore publishes e with core NATS. PublishMsg copies what it sends
// and keeps nothing, so the buffer and the Msg are free again afterwards.
// The header is read-only, shared by every core export.
func (b *Bridge) exportCore(subject string, e *eventbus.Event) error {
	buf := encodeBuffers.Get().(*[]byte)
	defer putEncodeBuffer(buf)
	data, err := encode((*buf)[:0], e)
	if err != nil {
		return err
	}
	*buf = data
	m := coreMsgs.Get().(*nats.Msg)
	m.Subject, m.Data, m.Header = subject, data, b.header
	err = b.nc.PublishMsg(m)
	*m = nats.Msg{}
	coreMsgs.Put(m)
	if err != nil {
		return fmt.Errorf("natsbridge: publish to %s: %w", subject, err)
	}
	return nil
}

// errEncode is wrapped by the error of an export whose event does not
// encode (Data that JSON cannot hold).
var errEncode = errors.New("natsbridge: encode event")

// encode appends the wire form of e to dst.
func encode(dst []byte, e *eventbus.Event) ([]byte, error) {
	if data, ok := appendEvent(dst, e); ok {
		return data, nil
	}
	data, err := json.Marshal(*e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errEncode, err)
	}
	return data, nil
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
