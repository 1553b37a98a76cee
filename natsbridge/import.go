package natsbridge

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startCoreImport subscribes to the import pattern and starts the goroutines
// that read the subscription.
func (b *Bridge) startCoreImport(ctx context.Context) error {
	var err error
	if b.cfg.queue != "" {
		b.sub, err = b.nc.QueueSubscribeSync(b.cfg.pattern, b.cfg.queue)
	} else {
		b.sub, err = b.nc.SubscribeSync(b.cfg.pattern)
	}
	if err != nil {
		return err
	}
	// Make sure the server has the interest before New returns.
	if err := b.flush(ctx); err != nil {
		return err
	}
	for range b.cfg.concurrency {
		b.goLoop(b.coreLoop)
	}
	return nil
}

// coreLoop imports messages until the subscription ends (Close, Drain, or the
// connection closing).
func (b *Bridge) coreLoop() {
	for {
		m, err := b.sub.NextMsgWithContext(b.ctx)
		if err != nil {
			if errors.Is(err, nats.ErrSlowConsumer) {
				d, _ := b.sub.Dropped()
				b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: import fell behind, nats.go dropped messages",
					slog.String(keySubject, b.cfg.pattern), slog.Int(keyDropped, d))
				continue
			}
			if b.ctx.Err() == nil && !b.draining() {
				// Not Close or Drain: the connection was closed under us.
				b.log.LogAttrs(b.ctx, slog.LevelError, "natsbridge: import stopped",
					slog.String(keySubject, b.cfg.pattern), slog.String(keyError, err.Error()))
			}
			return
		}
		b.importCore(m)
	}
}

func (b *Bridge) importCore(m *nats.Msg) {
	if b.own(m.Header) {
		b.n.looped.Add(1)
		return
	}
	e, err := Decode(m.Data)
	if err != nil {
		b.n.terminated.Add(1)
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: dropped a malformed message",
			slog.String(keySubject, m.Subject), slog.String(keyError, err.Error()))
		return
	}
	b.flight.add(e.ID)
	err = b.bus.Publish(b.importCtx, e)
	b.flight.remove(e.ID)
	if err != nil {
		b.n.importErrors.Add(1)
		level := slog.LevelError
		if b.ctx.Err() != nil {
			level = slog.LevelDebug // Close interrupted it
		}
		b.log.LogAttrs(b.ctx, level, "natsbridge: the bus refused an imported event",
			slog.String(keyEventID, e.ID.String()), slog.String(keyEventType, string(e.Type)),
			slog.String(keyADWID, e.ADWID), slog.String(keyError, err.Error()))
		return
	}
	b.n.imported.Add(1)
}

// own reports whether a message's headers carry this Bridge's origin.
func (b *Bridge) own(h nats.Header) bool {
	v, ok := h[HeaderOrigin]
	return ok && len(v) > 0 && v[0] == b.cfg.origin
}

// ensureStream looks the stream up and creates it if it does not exist.
func (b *Bridge) ensureStream(ctx context.Context) error {
	_, err := b.js.Stream(ctx, b.cfg.stream)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     b.cfg.stream,
		Subjects: []string{b.prefix + ".>"},
		Storage:  jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil // another Bridge created it meanwhile
	}
	return err
}

// startJetStreamImport creates or updates the consumer and starts the
// goroutines that pull from it.
func (b *Bridge) startJetStreamImport(ctx context.Context) error {
	cc := jetstream.ConsumerConfig{
		FilterSubject: b.cfg.pattern,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.ackWait,
		MaxDeliver:    b.cfg.maxDeliver,
	}
	if b.cfg.queue != "" {
		cc.Durable = b.cfg.queue
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
		cc.InactiveThreshold = ephemeralInactive
		b.ephemeral = true
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.stream, cc)
	if err != nil {
		return err
	}
	b.consumer = cons.CachedInfo().Name
	iter, err := cons.Messages()
	if err != nil {
		return err
	}
	b.iter = iter
	for range b.cfg.concurrency {
		b.goLoop(b.jetStreamLoop)
	}
	return nil
}

// jetStreamLoop imports messages until the iterator is stopped or drained.
func (b *Bridge) jetStreamLoop() {
	for {
		m, err := b.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if b.ctx.Err() == nil && !b.draining() {
					b.log.LogAttrs(b.ctx, slog.LevelError, "natsbridge: JetStream import stopped",
						slog.String(keyStream, b.cfg.stream), slog.String(keyConsumerName, b.consumer),
						slog.String(keyError, err.Error()))
				}
				return
			}
			// Missing heartbeats while the server is away, and the like:
			// nats.go pulls again once the connection is back.
			b.log.LogAttrs(b.ctx, slog.LevelDebug, "natsbridge: JetStream pull",
				slog.String(keyStream, b.cfg.stream), slog.String(keyError, err.Error()))
			continue
		}
		b.importJetStream(m)
	}
}

func (b *Bridge) importJetStream(m jetstream.Msg) {
	if b.own(m.Headers()) {
		b.n.looped.Add(1)
		b.ack(m)
		return
	}
	e, err := Decode(m.Data())
	if err != nil {
		b.n.terminated.Add(1)
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: terminated a malformed message",
			slog.String(keySubject, m.Subject()), slog.String(keyError, err.Error()))
		if err := m.TermWithReason("malformed"); err != nil {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: term failed",
				slog.String(keySubject, m.Subject()), slog.String(keyError, err.Error()))
		}
		return
	}
	b.flight.add(e.ID)
	err = b.bus.PublishAndWait(b.importCtx, e)
	b.flight.remove(e.ID)
	if err == nil {
		b.n.imported.Add(1)
		b.ack(m)
		return
	}
	b.n.naked.Add(1)
	var n uint64 = 1
	if md, mdErr := m.Metadata(); mdErr == nil {
		n = md.NumDelivered
	}
	delay := b.backoff(n)
	level := slog.LevelWarn
	if b.ctx.Err() != nil {
		level = slog.LevelDebug // Close interrupted it
	}
	b.log.LogAttrs(b.ctx, level, "natsbridge: import failed, the server will deliver it again",
		slog.String(keyEventID, e.ID.String()), slog.String(keyEventType, string(e.Type)),
		slog.String(keyADWID, e.ADWID), slog.Uint64(keyDelivered, n), slog.Duration(keyDelay, delay),
		slog.String(keyError, err.Error()))
	if err := m.NakWithDelay(delay); err != nil {
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: nak failed",
			slog.String(keyEventID, e.ID.String()), slog.String(keyError, err.Error()))
	}
}

func (b *Bridge) ack(m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: ack failed, the server will deliver it again",
			slog.String(keySubject, m.Subject()), slog.String(keyError, err.Error()))
	}
}

// backoff returns the redelivery delay after the n-th delivery failed:
// nakMin, doubling per delivery, at most nakMax. After Close it is zero, so
// another consumer gets the message at once.
func (b *Bridge) backoff(n uint64) time.Duration {
	if b.ctx.Err() != nil {
		return 0
	}
	d := b.cfg.nakMin
	for i := uint64(1); i < n && d < b.cfg.nakMax; i++ {
		d *= 2
	}
	return min(d, b.cfg.nakMax)
}
