package natsbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the JetStream export path. Each export is an async
// handler run of the bus that waits for the stream's acknowledgement, so
// that PublishAndWait returns the export's error. The publishes themselves
// are asynchronous: at most publishWindow exports of a Bridge await their
// acknowledgement at once, the others wait for a place in order, and none
// waits for another's round trip.
//
// One goroutine of the Bridge, the publisher, encodes and publishes every
// export with a reply subject of its own under one inbox, and the Bridge's
// subscription to that inbox hands each acknowledgement to the export that
// waits for it. The bus's async goroutines, often new ones, thus only
// wait: encoding and publishing would grow each one's stack, which cost a
// tenth of an export. The Bridge does not use nats.go's PublishMsgAsync:
// it parses every acknowledgement with encoding/json, and in v1.55.0 its
// CleanupPublisher, called soon after the first publish, can leave a
// goroutine blocked for ever.

// A pubRequest is one export: publish e, encoded, to subject, and, after a
// failure, m again. The outcome of each attempt arrives on res.
type pubRequest struct {
	e       *eventbus.Event
	subject string
	m       *nats.Msg   // written by the publisher
	timer   *time.Timer // the attempt's publishAttemptWait; guarded by publisher.mu
	res     chan error  // buffered: no one waits to send
}

// A publisher is the goroutine that encodes and publishes the exports of a
// JetStream Bridge, the subscription that receives their
// acknowledgements, and the attempts that await one. The Bridge starts it
// in New and stops it in Close, once no export is in progress.
type publisher struct {
	reqs   chan *pubRequest
	done   sync.WaitGroup
	acks   *nats.Subscription
	inbox  string           // the reply subjects' prefix, ending in "."
	status chan nats.Status // RECONNECTING
	next   uint64           // the last reply token; publisher goroutine only

	mu      sync.Mutex
	waiting map[string]*pubRequest // by reply token: published, no outcome yet
}

// errAckTimeout is the outcome of an attempt that the stream did not
// acknowledge within publishAttemptWait; it is retried.
var errAckTimeout = errors.New("natsbridge: no acknowledgement from the stream in time")

// startPublisher subscribes to the acknowledgements and starts the
// publisher.
func (b *Bridge) startPublisher() error {
	p := &b.pub
	p.inbox = b.nc.NewInbox() + "."
	p.waiting = map[string]*pubRequest{}
	sub, err := b.nc.Subscribe(p.inbox+"*", b.acknowledged)
	if err != nil {
		return err
	}
	p.acks = sub
	p.reqs = make(chan *pubRequest)
	p.status = b.nc.StatusChanged(nats.RECONNECTING)
	p.done.Go(b.publishLoop)
	return nil
}

// stopPublisher ends the publisher, waits for it, and ends the attempts
// that still wait (their exports have given up). No export may be in
// progress.
func (b *Bridge) stopPublisher() {
	p := &b.pub
	if p.reqs == nil {
		return
	}
	close(p.reqs)
	p.done.Wait()
	b.nc.RemoveStatusListener(p.status)
	_ = p.acks.Unsubscribe()
	b.failWaiting(ErrClosed)
}

// publishLoop is the publisher. It publishes each export's attempt, in
// order, and when the connection is lost it fails the attempts that await
// an acknowledgement, which the server can no longer send; their exports
// publish again, into nats.go's reconnect buffer.
func (b *Bridge) publishLoop() {
	for {
		select {
		case r, ok := <-b.pub.reqs:
			if !ok {
				return
			}
			b.publish(r)
		case <-b.pub.status:
			b.failWaiting(nats.ErrDisconnected)
		}
	}
}

// publish encodes r's event, unless this is a retry, waits for a place in
// the window, and publishes it with the event id as Nats-Msg-Id and a reply
// subject of its own. The message gets its own buffer: it is published
// again after a failure.
func (b *Bridge) publish(r *pubRequest) {
	if r.m == nil {
		data, err := encode(make([]byte, 0, 512), r.e)
		if err != nil {
			r.res <- err
			return
		}
		r.m = &nats.Msg{Subject: r.subject, Data: data, Header: nats.Header{
			HeaderOrigin: b.originHeader,
			HeaderMsgID:  {r.e.ID.String()},
		}}
	}
	for waiting := true; waiting; {
		select {
		case b.window <- struct{}{}:
			waiting = false
		case <-b.pub.status:
			b.failWaiting(nats.ErrDisconnected)
		case <-b.ctx.Done():
			r.res <- b.ctx.Err()
			return
		}
	}
	b.pub.next++
	token := strconv.FormatUint(b.pub.next, 36)
	r.m.Reply = b.pub.inbox + token
	b.pub.mu.Lock()
	b.pub.waiting[token] = r
	r.timer = time.AfterFunc(publishAttemptWait, func() { b.settle(token, errAckTimeout) })
	b.pub.mu.Unlock()
	if err := b.nc.PublishMsg(r.m); err != nil {
		b.settle(token, err)
	}
}

// acknowledged is the handler of the acknowledgements' subscription.
func (b *Bridge) acknowledged(m *nats.Msg) {
	b.settle(m.Subject[len(b.pub.inbox):], ackError(m))
}

// settle ends the attempt with the reply token token, if it still waits:
// it gives its place in the window back and hands err (nil: the stream
// stored the message) to its export.
func (b *Bridge) settle(token string, err error) {
	b.pub.mu.Lock()
	r := b.pub.waiting[token]
	if r != nil {
		delete(b.pub.waiting, token)
		r.timer.Stop()
	}
	b.pub.mu.Unlock()
	if r != nil {
		<-b.window
		r.res <- err
	}
}

// failWaiting ends every attempt that awaits an acknowledgement with err.
func (b *Bridge) failWaiting(err error) {
	b.pub.mu.Lock()
	tokens := make([]string, 0, len(b.pub.waiting))
	for token := range b.pub.waiting {
		tokens = append(tokens, token)
	}
	b.pub.mu.Unlock()
	for _, token := range tokens {
		b.settle(token, err)
	}
}

// The start of a successful acknowledgement, as nats-server writes it
// (the struct puts "error" first, and omits it when empty).
var ackPrefix = []byte(`{"stream":`)

// ackError reads the stream's answer to a publish: nil for an
// acknowledgement, nats.ErrNoResponders when no stream took the subject,
// and otherwise the server's *jetstream.APIError, or
// jetstream.ErrInvalidJSAck for an answer it cannot read.
func ackError(m *nats.Msg) error {
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return nats.ErrNoResponders
	}
	if bytes.HasPrefix(m.Data, ackPrefix) && !bytes.Contains(m.Data, []byte(`"error"`)) {
		return nil
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	switch {
	case json.Unmarshal(m.Data, &ack) != nil:
		return jetstream.ErrInvalidJSAck
	case ack.Error != nil:
		return ack.Error
	case ack.Stream == "":
		return jetstream.ErrInvalidJSAck
	}
	return nil
}

// exportJetStream exports e to the stream and waits for the stream's
// acknowledgement, retrying with backoff until the publish-retry time is
// up, Close is called, or hctx (the async handler's) ends. A retry after a
// lost acknowledgement is harmless: the server drops a second message with
// the same id. Errors that another attempt cannot change are not retried
// (see permanent).
func (b *Bridge) exportJetStream(hctx context.Context, subject string, e *eventbus.Event) error {
	r := &pubRequest{e: e, subject: subject, res: make(chan error, 1)}
	deadline := time.Now().Add(b.cfg.publishRetry)
	wait := retryWaitMin
	for {
		err := b.publishOnce(hctx, r)
		switch {
		case err == nil:
			return nil
		case b.ctx.Err() != nil:
			// The server may have it all the same.
			return fmt.Errorf("natsbridge: publish to %s: %w: %w", subject, ErrClosed, err)
		case permanent(err) || hctx.Err() != nil || time.Now().Add(wait).After(deadline):
			return fmt.Errorf("natsbridge: publish to %s: %w", subject, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return fmt.Errorf("natsbridge: publish to %s: %w: %w", subject, ErrClosed, err)
		case <-hctx.Done():
			t.Stop()
			return fmt.Errorf("natsbridge: publish to %s: %w", subject, err)
		}
		wait = min(2*wait, retryWaitMax)
	}
}

// publishOnce hands r to the publisher and waits for the outcome of the
// attempt, or for Close, or the end of hctx.
func (b *Bridge) publishOnce(hctx context.Context, r *pubRequest) error {
	select {
	case b.pub.reqs <- r:
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-hctx.Done():
		return hctx.Err()
	}
	select {
	case err := <-r.res:
		return err
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-hctx.Done():
		return hctx.Err()
	}
}

// permanent reports whether a JetStream publish failed in a way that
// another attempt cannot change: the message is too large, the subject
// invalid, the connection closed for good, no stream listens on the subject
// (which a clustered stream also says, briefly, while it elects a leader),
// the server answered with an API error, or the event does not encode.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, errEncode) ||
		errors.Is(err, nats.ErrMaxPayload) ||
		errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrHeadersNotSupported) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrInvalidJSAck) ||
		errors.As(err, &apiErr)
}
