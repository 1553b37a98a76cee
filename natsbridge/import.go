package natsbridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
)

// A loopSet tracks the Bridge's import goroutines: how many run, and how
// many of them are inside a Publish into the bus, where a handler may run
// on them (inline) and even call Close. Changes are two atomic additions;
// the mutex and channel are used only while someone waits.
type loopSet struct {
	wg      sync.WaitGroup
	live    atomic.Int64 // goroutines running
	inBus   atomic.Int64 // of them, inside the bus
	waiters atomic.Int64 // goroutines in wait
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on a change while waiters > 0
}

func (l *loopSet) update(dLive, dInBus int64) {
	if dLive != 0 {
		l.live.Add(dLive)
	}
	if dInBus != 0 {
		l.inBus.Add(dInBus)
	}
	if l.waiters.Load() > 0 {
		l.mu.Lock()
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

// wait returns once no goroutine runs (all) or none runs outside the bus,
// or with ctx.Err() when ctx (nil: never) ends first.
func (l *loopSet) wait(ctx context.Context, all bool) error {
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for {
		l.mu.Lock()
		ch := l.changed
		l.mu.Unlock()
		// Read after registering as a waiter and taking the channel: a
		// change from now on closes ch.
		live, inBus := l.live.Load(), l.inBus.Load()
		if live == 0 {
			l.wg.Wait() // they have returned or are returning: join them
			return nil
		}
		if !all && live == inBus {
			return nil
		}
		if ctx == nil {
			<-ch
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// goLoop starts import goroutine i, owned by b: Close and Drain wait for it.
// A handler that calls runtime.Goexit inline ends the goroutine it runs on,
// which may be this one; then goLoop starts a new one in its place, unless
// the import is stopping.
func (b *Bridge) goLoop(i int, loop func(int)) {
	b.loops.update(1, 0)
	b.loops.wg.Go(func() {
		returned := false
		defer func() {
			if !returned && !b.importStopping() {
				b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: a handler called runtime.Goexit on an import goroutine; starting another")
				b.goLoop(i, loop) // the wait group still counts this goroutine
			}
			b.loops.update(-1, 0)
		}()
		loop(i)
		returned = true
	})
}

// importStopping reports whether the import is ending: Close, Drain, or by
// itself.
func (b *Bridge) importStopping() bool {
	select {
	case <-b.importStop:
		return true
	default:
		return b.ctx.Err() != nil
	}
}

// stopItself ends the import when it cannot go on (the bus or the
// connection is closed), and says so once, in the log and in Stats.
func (b *Bridge) stopItself(reason string, err error) {
	if b.importStopping() {
		return
	}
	if b.stoppedItself.CompareAndSwap(false, true) {
		b.log.LogAttrs(b.ctx, slog.LevelError, "natsbridge: import stopped: "+reason,
			slog.String(keySubject, b.cfg.pattern), slog.String(keyError, err.Error()))
	}
	b.endImport(false)
}

// publishImported publishes e, decoded from NATS, into the bus. While it
// does, e's id is in the bus's in-flight set, so no exporter on the bus
// takes it, and the goroutine counts as inside the bus.
func (b *Bridge) publishImported(e eventbus.Event, wait bool) error {
	b.flight.add(e.ID)
	b.loops.update(0, 1)
	defer func() {
		b.loops.update(0, -1)
		b.flight.remove(e.ID)
	}()
	if wait {
		return b.bus.PublishAndWait(b.importCtx, e)
	}
	return b.bus.Publish(b.importCtx, e)
}

// busClosed reports whether err says that the bus itself is closed, as
// opposed to a handler that returned eventbus.ErrClosed.
func busClosed(err error) bool {
	var he *eventbus.HandlerError
	return errors.Is(err, eventbus.ErrClosed) && !errors.As(err, &he)
}

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
	for i := range b.cfg.concurrency {
		b.goLoop(i, b.coreLoop)
	}
	return nil
}

// coreLoop imports messages until the subscription ends (Close, Drain, the
// connection closing, or the bus closing).
func (b *Bridge) coreLoop(int) {
	for {
		m, err := b.sub.NextMsgWithContext(b.ctx)
		if err != nil {
			if errors.Is(err, nats.ErrSlowConsumer) {
				d, _ := b.sub.Dropped()
				b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: import fell behind, nats.go dropped messages",
					slog.String(keySubject, b.cfg.pattern), slog.Int(keyDropped, d))
				continue
			}
			if !b.draining() {
				// Not Close or Drain: the connection was closed under us.
				b.stopItself("the connection is closed", err)
			}
			return
		}
		if !b.importCore(m) {
			return
		}
	}
}

// importCore imports one message. It returns false when the import must
// stop because the bus is closed.
func (b *Bridge) importCore(m *nats.Msg) bool {
	if b.own(m.Header) {
		b.n.looped.Add(1)
		return true
	}
	e, err := Decode(m.Data)
	if err != nil {
		b.n.terminated.Add(1)
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: dropped a malformed message",
			slog.String(keySubject, m.Subject), slog.String(keyError, err.Error()))
		return true
	}
	returned := false
	defer func() {
		if !returned { // a handler called runtime.Goexit on this goroutine
			b.n.importErrors.Add(1)
		}
	}()
	err = b.publishImported(e, false)
	returned = true
	if err == nil {
		b.n.imported.Add(1)
		return true
	}
	b.n.importErrors.Add(1)
	if busClosed(err) {
		b.stopItself("the bus is closed", err)
		return false
	}
	level := slog.LevelError
	if b.ctx.Err() != nil {
		level = slog.LevelDebug // Close interrupted it
	}
	b.log.LogAttrs(b.ctx, level, "natsbridge: the bus refused an imported event",
		slog.String(keyEventID, e.ID.String()), slog.String(keyEventType, string(e.Type)),
		slog.String(keyADWID, e.ADWID), slog.String(keyError, err.Error()))
	return true
}

// own reports whether a message's headers carry this Bridge's origin.
func (b *Bridge) own(h nats.Header) bool {
	v, ok := h[HeaderOrigin]
	return ok && len(v) > 0 && v[0] == b.cfg.origin
}
