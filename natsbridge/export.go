package natsbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// notImporting is the Match of the exporter's last Filter. The bus calls it
// inside Publish, on the publishing goroutine, after the user's filters
// matched; it turns away the events that a Bridge is importing into the bus
// at that moment.
func (b *Bridge) notImporting(e eventbus.Event) bool {
	if b.flight.has(e.ID) {
		b.n.skipped.Add(1)
		return false
	}
	return true
}

// exportAsync is the JetStream exporter, an AsyncHandler: waiting for the
// stream's acknowledgement must not hold up a worker of the bus. An event
// whose ctx says a Bridge imported it is never exported.
func (b *Bridge) exportAsync(ctx context.Context, e eventbus.Event) error {
	if Imported(ctx) {
		b.n.skipped.Add(1)
		return nil
	}
	return b.export(e)
}

// export publishes e to NATS. It is the core NATS exporter, a sync Handler,
// since Conn.PublishMsg does not wait for the network. Its error goes back to
// the bus, which logs it and, for PublishAndWait, returns it.
func (b *Bridge) export(e eventbus.Event) error {
	if !b.exports.enter() {
		b.n.exportErrors.Add(1)
		return ErrClosed
	}
	defer b.exports.exit()

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
	m := &nats.Msg{Subject: b.subject(&e), Data: data}
	var err error
	if b.js != nil {
		// WithMsgID adds to the header: each message needs its own.
		m.Header = nats.Header{HeaderOrigin: b.originHeader}
		err = b.publishJetStream(m, e.ID.String())
	} else {
		m.Header = b.header // read-only, shared by every core export
		err = b.nc.PublishMsg(m)
	}
	if err != nil {
		b.n.exportErrors.Add(1)
		return fmt.Errorf("natsbridge: publish to %s: %w", m.Subject, err)
	}
	b.n.exported.Add(1)
	return nil
}

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
// time is up or Close is called. A retry after a lost acknowledgement is
// harmless: the server drops a second message with the same id.
func (b *Bridge) publishJetStream(m *nats.Msg, id string) error {
	deadline := time.Now().Add(b.cfg.publishRetry)
	wait := retryWaitMin
	for {
		ctx, cancel := context.WithTimeout(b.ctx, publishAttemptWait)
		_, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if b.ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, retryWaitMax)
	}
}
