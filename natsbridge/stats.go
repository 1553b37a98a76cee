package natsbridge

import "sync/atomic"

// Stats is a snapshot of a Bridge's counters, taken by [Bridge.Stats].
// Every counter starts at zero when New returns and moves at the moment
// described beside it. None of them counts a loss where nothing was lost:
// a Bridge that imports what it exports sees each of its exports come back
// once (Looped), and its exporter turns away each event it imported
// (NotReexported), so on such a Bridge Looped equals Exported and
// NotReexported equals Imported, and both say that the loop was broken.
//
// Counters are read one by one, so a snapshot taken while events are in
// flight may be slightly inconsistent. After Drain returned:
//
//	Exported + ExportErrors + NotReexported = the events that matched the export
//	        filters before the Bridge began to stop
//
// except an event that the bus refused after its filters ran (a full
// queue: its publisher has eventbus.ErrQueueFull); with core NATS,
//
//	Imported + ImportErrors + Looped + Terminated + Dropped = the messages
//	        the server sent to the import's subscription
//
// and with JetStream,
//
//	Imported + Looped + Terminated + Naked = the deliveries the Bridge took
//	        from its consumer (redeliveries included)
//
// which for a consumer that only this Bridge pulls from is the consumer's
// delivered count, less the messages that arrived for a fetch that Drain
// or Close had already cancelled (the server delivers those again after
// AckWait). Close, and an import that stopped by itself (ImportStopped),
// break the core NATS sum: the messages nats.go still held for the
// subscription are discarded uncounted.
type Stats struct {
	// Exported counts events handed to NATS: with core NATS when
	// Conn.PublishMsg accepted them (into its buffer, or its reconnect
	// buffer while disconnected), with JetStream when the stream
	// acknowledged them.
	Exported uint64
	// ExportErrors counts export runs that did not export their event:
	// publishing failed (after the retries, with JetStream), the event did
	// not encode, its subject was longer than MaxSubjectLen, the run
	// started after Close began, or Close interrupted a JetStream export
	// waiting for its acknowledgement (which the stream may have stored
	// all the same). The bus gets the error from the handler, logs it, and
	// returns it from PublishAndWait.
	ExportErrors uint64
	// NotReexported counts events that matched the export filters but came
	// from NATS: a Bridge on the same bus (this one or another) was
	// importing them at that moment, so they were not sent back. This is
	// how a Bridge breaks loops, not a loss: the event went into the bus.
	NotReexported uint64
	// Imported counts messages published into the local bus: with core
	// NATS when Publish accepted them, with JetStream when PublishAndWait
	// returned nil, that is when every matching handler succeeded (the
	// Bridge then acknowledges the message).
	Imported uint64
	// ImportErrors counts core NATS messages that the local bus refused
	// (closed, or its queue full), whose import Close interrupted, or whose
	// handler ended the import goroutine with runtime.Goexit; they are
	// lost. JetStream failures are counted in Naked.
	ImportErrors uint64
	// Looped counts messages dropped on import because they carried this
	// Bridge's own origin, that is its own exports (or those of a Bridge
	// with the same origin) coming back; with JetStream they are
	// acknowledged. Not a loss: the event is in the bus it came from.
	Looped uint64
	// Terminated counts messages that did not decode ([Decode]), once per
	// message: dropped with core NATS, terminated with JetStream, so that
	// the server never delivers them again. Each is also logged once, at
	// Warn.
	Terminated uint64
	// Naked counts JetStream deliveries acknowledged negatively: a handler
	// failed or ended the import goroutine with runtime.Goexit, the bus
	// refused the event (also when it was closed), Close interrupted the
	// wait, or Close or the closed bus found the message fetched and not
	// yet imported. The server delivers them again, after the backoff or,
	// for the last three, at once; each redelivery is counted again.
	Naked uint64
	// Dropped counts core NATS messages that nats.go discarded because the
	// import fell behind (a slow consumer); the Bridge never saw them.
	Dropped uint64
	// Reattached counts the times the JetStream import found its consumer
	// gone (deleted by an operator, or removed by the server after its
	// inactivity threshold while the Bridge was cut off) and created it
	// again or attached to a durable of the same name that someone else
	// created.
	Reattached uint64
	// ImportStopped is true once the import has stopped by itself, before
	// Close or Drain: the bus was closed, or the connection was closed. The
	// Bridge logs the reason once, and imports nothing more.
	ImportStopped bool
}

type counters struct {
	exported, exportErrors, notReexported, imported, importErrors,
	looped, terminated, naked, reattached atomic.Uint64
}

// Stats returns a snapshot of the Bridge's counters. See [Stats] for when
// each moves and what they add up to. It is safe to call at any time, also
// after Close.
func (b *Bridge) Stats() Stats {
	s := Stats{
		Exported:      b.n.exported.Load(),
		ExportErrors:  b.n.exportErrors.Load(),
		NotReexported: b.n.notReexported.Load(),
		Imported:      b.n.imported.Load(),
		ImportErrors:  b.n.importErrors.Load(),
		Looped:        b.n.looped.Load(),
		Terminated:    b.n.terminated.Load(),
		Naked:         b.n.naked.Load(),
		Dropped:       b.dropped.Load(),
		Reattached:    b.n.reattached.Load(),
		ImportStopped: b.stoppedItself.Load(),
	}
	if b.sub != nil {
		if d, err := b.sub.Dropped(); err == nil && uint64(d) > s.Dropped {
			s.Dropped = uint64(d)
		}
	}
	return s
}
