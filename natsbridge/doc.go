// Package natsbridge carries the events of an [eventbus.Bus] between
// processes over NATS, core or JetStream, so that a service can outgrow one
// process and keep the same [eventbus.Event] and the same handlers. It is a
// module of its own, so the core library keeps its small dependency set.
//
//	bridge, err := natsbridge.New(ctx, bus, nc,
//		natsbridge.WithExport(eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError}}),
//		natsbridge.WithImport("adws.events.*.adw-7"),
//	)
//	...
//	defer bridge.Close() // or bridge.Drain(ctx), before closing bus and nc
//
// # Export
//
// [WithExport] subscribes the Bridge to the bus: each local event that
// matches the filters is encoded ([Encode]) and published to the subject
// [Subject] gives it, prefix.event_type.adw_id ([WithSubjectPrefix], default
// "adws.events"), with the Bridge's origin in the Adws-Origin header
// ([WithOrigin]). Each token is escaped with [EscapeToken]: '.', '*', '>',
// '%', whitespace and control characters become %XX, an empty workflow id
// becomes "_" and a workflow id "_" becomes "%5F", so the mapping is
// reversible ([ParseSubject]) and remote subscribers can filter on the server
// with wildcards: "adws.events.step_failed.*", "adws.events.*.adw-7",
// "adws.events.*._" (events without a workflow id).
//
// With core NATS the exporter is a sync [eventbus.Handler]: it runs on a
// worker of the bus (inline in Publish on a bus built WithMaxWorkers(0)) and
// returns once nats.go has the message in its buffer; when that buffer is
// full, nats.go writes it to the socket first, so a slow server slows the
// bus's workers down rather than filling memory. With JetStream it is an
// [eventbus.AsyncHandler], since it waits for the stream's acknowledgement.
// Either way, a failed publish is the handler's error: the bus logs it,
// PublishAndWait returns it, and [Stats].ExportErrors counts it. Events reach
// NATS in the order the exporter runs, which with workers or JetStream is not
// always the order they were published in.
//
// # Import
//
// [WithImport] subscribes the Bridge to a subject pattern; each message is
// decoded ([Decode]) and published into the bus, and every handler that
// matches it runs as for a local event. [WithQueueGroup] makes Bridges in
// several processes share the messages, each going to one of them.
// [WithConcurrency] sets how many goroutines import; with one, events enter
// the bus in the order they arrived. Async handlers can tell imported events
// by their ctx ([Imported]).
//
// # Loops
//
// Two buses can be bridged both ways; nothing comes back. An importing
// Bridge drops messages that carry its own origin ([Stats].Looped). An event
// that a Bridge imports into a bus is never exported again by any Bridge on
// that bus ([Stats].Skipped): while the importer publishes it, its id is in a
// set that the exporter's filter checks (the bus calls filters inside Publish,
// on the publishing goroutine), and the importer's ctx carries a marker that
// the JetStream exporter checks as well. So a Bridge does not forward events
// from one NATS system to another, and a local event published with the id of
// an event being imported at that moment is not exported.
//
// A Bridge must not import, in a queue group shared with other Bridges, the
// subjects it exports: a message of its own delivered to it is dropped, and
// then no member of the group imports it.
//
// # Wire format
//
// A message body is the JSON of one Event: "id" (UUID), "adw_id",
// "event_type", "source", "severity" ("DEBUG", "INFO", "WARNING", "ERROR" or
// "CRITICAL"), "message", "timestamp" (RFC 3339, nanoseconds) and "data"
// (when not empty), exactly as encoding/json writes an Event. README.md and
// event.schema.json (JSON Schema 2020-12) describe it for producers and
// consumers in other languages. [Decode] requires id, event_type, severity
// and timestamp; a message without them, or that is not JSON, is malformed.
//
// # Delivery guarantees
//
// With core NATS delivery is at most once: a message published while no
// importer listens, or that a slow importer's subscription drops (nats.go's
// pending limits, [Stats].Dropped), is gone. Malformed messages are logged,
// counted in [Stats].Terminated, and dropped.
//
// With [WithJetStream] delivery is at least once, end to end:
//
//   - Export publishes to the stream with the event id as Nats-Msg-Id and
//     waits for the stream's acknowledgement. It retries a publish that was
//     not acknowledged, with backoff from 50ms to 2s, for up to a minute
//     ([WithPublishRetry]); a retry after a lost acknowledgement is harmless,
//     since the server drops a second message with the same id within its
//     duplicate window (two minutes by default). PublishAndWait on the bus
//     therefore returns once the event is stored, or with the error.
//   - Import pulls from a consumer (durable and shared with [WithQueueGroup],
//     which starts at the beginning of the stream; otherwise ephemeral, which
//     starts with new messages and is removed by Drain, or by the server
//     after five idle minutes). It acknowledges a message only after the
//     bus's PublishAndWait returned nil, that is after every matching
//     handler succeeded. When a handler fails or panics it acknowledges
//     negatively with a delay ([WithNakBackoff], 500ms doubling to 30s), and
//     the server delivers the message again, without limit unless
//     [WithMaxDeliver]. A message that does not decode is terminated: logged,
//     counted in [Stats].Terminated, never delivered again.
//
// At least once means duplicates are possible: an acknowledgement lost on the
// way (say the server restarts after the handlers ran) makes the server
// deliver the message again after [WithAckWait] (30s by default). Handlers
// that must not act twice should de-duplicate by Event.ID.
//
// # While the server is away
//
// nats.go reconnects by itself (see its options MaxReconnects and
// ReconnectWait) and meanwhile keeps what is published in a reconnect buffer,
// 8 MiB by default (nats.ReconnectBufSize), sent when the connection is
// back. With core NATS an export fails only once that buffer is full
// (nats.ErrReconnectBufExceeded) or the connection is closed: the event is
// then lost for NATS, the error goes back to the bus, and ExportErrors counts
// it. With JetStream an export waits, retrying, until the server
// acknowledges it or the retry time is up; acknowledgements of imports wait
// in the reconnect buffer too. The pull consumer asks for messages again
// once the connection is back.
//
// # Shutdown
//
// The Bridge owns every goroutine it starts: [Bridge.Close] and
// [Bridge.Drain] stop its import goroutines and wait for them. They also stop
// the nats.go subscription or pull consumer the Bridge made, whose own
// goroutines nats.go ends right after. Export runs on the bus's goroutines,
// and Close and Drain wait for the exports in progress.
//
// [Bridge.Drain] stops gracefully, like http.Server.Shutdown: it waits for the
// bus's handler runs in progress, so that every event the bus accepted before
// Drain is exported; unsubscribes the exporter; flushes the connection (core
// NATS); stops asking for messages and imports those already delivered to
// it; and waits for its goroutines. [Bridge.Close] stops at once: queued
// export runs are skipped (the bus counts them in Metrics.Skipped), JetStream
// exports still retrying give up, core NATS messages delivered but not yet
// imported are dropped, and JetStream imports waiting for handlers stop
// waiting and acknowledge negatively, so the server delivers them again. Both
// are safe to call more than once. Neither closes the bus or the connection:
// stop the Bridge first, then close the bus and the connection.
//
// # Errors
//
// New returns [ErrNilContext], [ErrNilBus], [ErrNilConn] or
// [ErrNothingToBridge] for bad arguments, and the bus's or NATS's error when
// setting up fails. Invalid option values are programming errors: the With*
// functions panic with a "natsbridge: " message. [Decode], [UnescapeToken]
// and [ParseSubject] wrap [ErrMalformed]. The exporter returns [ErrClosed]
// for an event that reaches it after Close or Drain began.
//
// # Observability
//
// [Bridge.Stats] returns counters whose documentation says when each moves.
// Import problems are logged through [log/slog] ([WithLogger], default
// slog.Default()) with the attributes event_id, event_type, adw_id, subject,
// num_delivered, delay and error; export errors are logged once, by the bus.
//
// # Costs
//
// Encode and Decode write and read the common shapes of an Event by hand,
// byte for byte as encoding/json does, and fall back to encoding/json for
// anything else; fuzz tests hold them to it. Measured on a 2-core Intel Xeon
// VM: Encode about 0.9 µs and 1 allocation, Decode about 1.4 µs and 6
// allocations, for an event with a small Data map (2.9 µs and 6.4 µs with
// encoding/json). Through core NATS on that machine the bridge carries about
// 170,000 events per second from one bus to another, 0.28 times what nats.go
// alone moves as pre-encoded bytes and 1.85 times what nats.go with
// encoding/json moves; README.md has the numbers and where the time goes.
package natsbridge
