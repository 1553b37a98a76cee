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
// becomes "_" and a workflow id "_" becomes "%5F", so the mapping is a
// bijection ([UnescapeToken] and [ParseSubject] accept only what
// EscapeToken writes) and remote subscribers can filter on the server
// with wildcards: "adws.events.step_failed.*", "adws.events.*.adw-7",
// "adws.events.*._" (events without a workflow id). An event whose subject
// would exceed [MaxSubjectLen] (1 KiB; escaping can triple a token) is not
// published: a NATS server drops the connection of a client that sends a
// subject longer than its control line allows. The export fails with
// [ErrSubjectTooLong] instead, counted in [Stats].ExportErrors.
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
// The exporter's subscription is never removed while the bus holds a run of
// it that has not started, because the bus would skip such a run without an
// error: see Shutdown. So an event that the exporter took is exported, or
// its publisher's PublishAndWait returns the reason.
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
// Bridge drops messages that carry its own origin ([Stats].Looped). The
// default origin belongs to the bus, not to the Bridge: every Bridge on a bus
// without [WithOrigin] shares it, so one Bridge that exports and another that
// imports, on the same bus, do not echo its events back into it. An event
// that a Bridge imports into a bus is never exported again by any Bridge on
// that bus ([Stats].NotReexported): while the importer publishes it, its id is in a
// set that the exporter's filter checks (the bus calls filters inside
// Publish, on the publishing goroutine), in core and JetStream mode alike.
// So a Bridge does not forward events from one NATS system to another, and a
// local event published with the id of an event being imported at that
// moment is not exported. New events that handlers publish in reaction to an
// imported one have ids of their own and are exported, also when they carry
// the import's ctx ([Imported] still tells such a ctx apart).
//
// A Bridge must not import, in a queue group shared with other Bridges, the
// subjects it exports: a message of its own delivered to it is dropped, and
// then no member of the group imports it.
//
// # Wire format
//
// A message body is the JSON of one Event: "id" (UUID), "adw_id",
// "event_type", "source", "severity" ("DEBUG", "INFO", "WARNING", "ERROR" or
// "CRITICAL"), "message", "timestamp" (RFC 3339 in UTC, nine fractional
// digits) and "data" (when not empty), exactly as encoding/json writes an
// Event. README.md and event.schema.json (JSON Schema 2020-12) describe it
// for producers and consumers in other languages. [Decode] reads what
// eventbus.Event.UnmarshalJSON reads (timestamps without a zone or with a
// space, as Python writes them; built-in event types in any case; a missing
// or null severity as INFO), and requires id, event_type and timestamp; a
// message without them, or that is not JSON, is malformed.
// The schema states every constraint as an assertion (pattern, enum, not),
// never as "format", which draft 2020-12 treats as an annotation, and a
// test holds Decode to it: what the schema admits, Decode accepts. Property
// names match exactly; numbers beyond a double become ±Inf, as in
// JavaScript; timestamps may use lower-case 't' and 'z'; leap seconds and
// years before 0002 are outside the schema, since Go cannot hold the one and
// reads the zero time of the other as no timestamp.
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
//   - Export publishes to the stream with the event id as Nats-Msg-Id, and
//     each export run waits for the stream's acknowledgement, so
//     PublishAndWait on the bus returns once the event is stored, or with
//     the error. The publishes are asynchronous: one goroutine of the
//     Bridge encodes and publishes every export once it holds one of 256
//     places, and the other exports wait their turn, none waiting for
//     another's round trip. An attempt without an acknowledgement within
//     about 5s, or in flight when the connection drops, is published again
//     under the same id, with backoff from 50ms to 2s, for up to a minute
//     ([WithPublishRetry]); that is harmless, since the server drops a
//     second message with the same id within its duplicate window (two
//     minutes by default). Only failures that can pass are retried; a
//     message over the server's max payload, a closed connection, no
//     stream on the subject ("no responders", which a clustered stream also
//     answers briefly while it elects a leader) and the stream's refusal
//     (an API error) fail at once. New checks that an existing stream
//     captures the Bridge's subjects ([ErrStreamSubjects]).
//   - Import pulls from a consumer: durable and shared with
//     [WithQueueGroup], which starts at the beginning of the stream and
//     keeps its settings as the first member created it (the others attach
//     to it as it is); otherwise ephemeral, which starts with new messages
//     and is removed by Drain, or by the server after five idle minutes.
//     Each import goroutine fetches only when it holds no message: those
//     that are there at that moment, up to as many as it imported in about
//     100ms the last time (8 the first time, at most 256), or else it
//     waits for one; so fast handlers take few round trips, and with slow
//     ones a member of a queue group leaves the backlog to the others. The
//     Bridge tells the server every AckWait/3 that each message it holds
//     is in progress, the one the bus's handlers work on and those waiting
//     their turn: so a slow handler does not make the server deliver
//     anything again, and no message waits unseen in a client buffer. It
//     acknowledges a message only after the bus's PublishAndWait returned
//     nil, that is after every matching handler succeeded, and sends the
//     acknowledgements together: 64 at a time, when it has nothing left to
//     import, within AckWait/3 at the latest, and when the import stops.
//     When a handler fails or panics it acknowledges negatively with a
//     delay ([WithNakBackoff], 500ms doubling to 30s), and the server
//     delivers the message again, without limit unless [WithMaxDeliver]. A
//     message that does not decode is terminated: logged and counted in
//     [Stats].Terminated once, never delivered again (see Servers).
//   - If the consumer goes away (an operator deletes it, or the server
//     removes an idle ephemeral one while the Bridge was cut off), the
//     Bridge notices (at once, or after missed heartbeats, up to 30s),
//     logs it, counts it in [Stats].Reattached, and attaches again with
//     backoff from 100ms to 5s: to a durable of that name if someone
//     created one, otherwise to a new consumer that starts after the last
//     message the Bridge received. Messages that the lost consumer still
//     owed a redelivery are lost with it.
//
// At least once means duplicates are possible: an acknowledgement lost on the
// way (say the server restarts after the handlers ran), or not yet sent when
// the process dies, makes the server deliver the message again after
// [WithAckWait] (30s by default), and so does a Bridge that Close
// interrupts while a sync handler still runs. Handlers that must not act
// twice should de-duplicate by Event.ID.
//
// # Servers
//
// JetStream mode needs nats-server 2.9.0 or later, which nats.go's
// jetstream package requires; core NATS mode needs message headers, which
// servers have from 2.2. The tests run against Debian bookworm's 2.9.10 and
// the embedded v2.15.2. The Bridge terminates a message that does not
// decode with a reason (TermWithReason) only where the connected server is
// 2.10.4 or later, and with a plain Term otherwise: older servers ignore a
// termination that carries a reason, and would deliver the message again
// every AckWait (and, once MaxAckPending of them were outstanding, deliver
// nothing else).
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
// once the connection is back. nats.go gives up after 60 attempts 2s apart
// by default; then the connection is closed for good, the import stops
// ([Stats].ImportStopped) and exports fail. Connect with
// nats.MaxReconnects(-1) to ride out a server restart however long.
//
// # Shutdown
//
// The Bridge owns every goroutine it starts: [Bridge.Close] and
// [Bridge.Drain] stop its import goroutines and wait for them. They also stop
// the nats.go subscription or pull consumers the Bridge made, whose own
// goroutines nats.go ends right after. Export runs on the bus's goroutines.
//
// The exporter is a subscription whose last filter is the Bridge's gate: it
// counts each event it lets through, and each export run counts itself out.
// Stopping shuts the gate (events published from then on are not exported,
// and that is no error, as if no Bridge were there) and removes the
// subscription only once the last run it let through has ended. So the bus
// never skips an export run, which it would do silently for a subscription
// removed while the run waited for a worker or an async slot.
//
// [Bridge.Drain] stops gracefully, like http.Server.Shutdown: it waits for
// the bus's handler runs in progress (with the bus's Drain), so that the
// events they publish are exported; shuts the gate; waits (with the bus's
// Drain again) for the export runs the gate let through; flushes the
// connection (core NATS; a failed flush is Drain's error); stops asking for
// messages and imports those already delivered to it; and waits for its
// goroutines. [Bridge.Close] stops at once: it shuts the gate, cancels
// JetStream exports still retrying, and waits for the exports in progress;
// an export run the bus has not started yet fails with [ErrClosed] when it
// does, so its publisher learns it. Core NATS messages delivered but not yet
// imported are dropped. A JetStream import waiting for the bus stops waiting
// and acknowledges negatively, so the server delivers the message again at
// once, to another member of the queue group or to the next Bridge on the
// durable, and so do the messages fetched and not yet started; the async
// handlers running for it see their ctx (the import's) cancelled, while
// sync handlers go on. Without a queue group nothing pulls
// from the ephemeral consumer after Close, and the server deletes it, and
// what it holds, after five idle minutes. Both are safe to call more than
// once, and a handler may call Close, even one that runs on the import
// goroutine itself (a bus built WithMaxWorkers(0)): Close does not wait for
// a goroutine that is inside the bus, which ends as soon as the handler
// returns. Neither closes the bus or the connection: stop the Bridge first,
// then close the bus and the connection.
//
// If the bus is closed first, the import stops at the first event the bus
// refuses: core NATS counts that message in ImportErrors; JetStream gives it
// back at once (a negative acknowledgement without delay) and pulls no more,
// so that the closed bus does not use up the deliveries that
// [WithMaxDeliver] allows. The Bridge logs this once, and [Stats] reports
// ImportStopped. The same happens when the connection is closed.
//
// A handler that calls runtime.Goexit (as t.FailNow does) on an import
// goroutine ends it; the Bridge starts another in its place, counts the
// message in ImportErrors (core NATS) or acknowledges it negatively
// (JetStream).
//
// # Errors
//
// New returns [ErrNilContext], [ErrNilBus], [ErrNilConn] or
// [ErrNothingToBridge] for bad arguments, an error wrapping
// [ErrStreamSubjects] or [ErrConsumerMismatch] for a stream or durable
// consumer that does not fit, and the bus's or NATS's error when setting up
// fails. Invalid option values are programming errors: the With* functions
// panic with a "natsbridge: " message. [Decode], [UnescapeToken] and
// [ParseSubject] wrap [ErrMalformed]. The exporter's error wraps
// [ErrClosed] for an export run that starts after Close began, or a
// JetStream export that Close interrupted while it waited for its
// acknowledgement (the stream may have stored that one), and
// [ErrSubjectTooLong] for an event whose subject would be too long.
//
// # Other languages
//
// Services in other languages publish to the subjects [Subject] gives
// (escaped as [EscapeToken] says), with an "Adws-Origin" header only if
// they must recognise their own messages ([HeaderOrigin]: a Bridge imports
// every message without its own origin) and, with JetStream, the event id
// as "Nats-Msg-Id" ([HeaderMsgID]). The body is the JSON described under
// Wire format; a message without id, event_type, severity or timestamp is
// malformed. With JetStream, delivery is at least once both ways: they
// should acknowledge after handling and expect duplicates, keyed by id.
// README.md has the details, and examples/node a tested Node.js service.
//
// # Observability
//
// [Bridge.Stats] returns counters whose documentation says when each moves
// and what they add up to, and whether the import stopped by itself. None
// of them counts a loss where there is none: on a Bridge that imports what
// it exports, Looped equals Exported and NotReexported equals Imported, the
// loops it broke. Import problems are logged
// through [log/slog] ([WithLogger], default slog.Default()) with the
// attributes event_id, event_type, adw_id, subject, num_delivered, delay,
// stream, consumer and error; export errors are logged once, by the bus.
//
// # Costs
//
// Encode and Decode write and read the common shapes of an Event by hand,
// byte for byte as encoding/json does, and fall back to encoding/json for
// anything else; fuzz tests hold them to it. Measured on a 2-vCPU AMD EPYC
// VM: Encode about 0.46 µs and 1 allocation, Decode about 0.87 µs and 5
// allocations, for an event with a small Data map (1.8 µs and 4.0 µs with
// encoding/json). On that machine the bridge carries about 237,000 events
// per second from one bus to another through core NATS, 0.38 times what
// nats.go alone moves as pre-encoded bytes in the same run and 4.8 times
// what watermill-nats moves; through JetStream, which stores each event
// and acknowledges it after the handlers, about 40,000, 0.73 times nats.go
// alone with asynchronous publishes and a pull consumer (0.80 to 0.84 at a
// quiet moment). README.md has the table, the peers' settings and where
// the time goes.
package natsbridge
