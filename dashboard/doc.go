// Package dashboard serves a live view of an [eventbus.Bus]: a page that
// lists the workflows as they run, with their status, elapsed time and
// severity badges, the timeline of the one you click, an error feed,
// the bus's metrics and subscriptions, and filters by type and severity;
// behind it, a Server-Sent Events stream of the bus's events and a JSON
// API. It is a module of its own, so the core library keeps its small
// dependency set; at run time it needs only the standard library.
//
//	dash, err := dashboard.New(bus)
//	if err != nil { ... }
//	defer dash.Close()
//	http.ListenAndServe("127.0.0.1:8080", dash) // or mount it: http.StripPrefix("/dash", dash)
//
// # Endpoints
//
// A [Server] is an [http.Handler] that answers GET (and HEAD) only; any
// other method gets 405 Method Not Allowed. The page uses relative URLs,
// so it works under a path prefix.
//
//   - GET / serves the page, and /static/ its script, style sheet and icon,
//     all embedded with go:embed: plain HTML, CSS and JavaScript, no build
//     step, no library.
//   - GET /events is the event stream (text/event-stream); see below.
//   - GET /api/workflows returns {"workflows": [...], "max", "evicted",
//     "through"}: for each workflow (ADWID) its status ([StatusRunning],
//     [StatusCompleted], [StatusFailed]), first and last event time, event
//     count, counts by severity name, last event type and last message, the
//     most recently active first. See [Workflow]. Events without an ADWID
//     are not counted as a workflow's. "through" is the id of the last event
//     counted, so a client that then opens /events?last_event_id=<through>
//     sees every later event exactly once.
//   - GET /api/metrics returns {"bus": [eventbus.Metrics], "subscriptions":
//     [eventbus.SubscriptionInfo]..., "dashboard": [Stats]}. The bus's types
//     have no JSON tags, so their fields keep their Go names; durations are
//     in nanoseconds.
//
// # The event stream
//
// A stream starts with a retry field ([WithRetry], default 2 s), then sends
// each event the client's filter selects as
//
//	id: <sequence number>
//	event: <event type>
//	data: <the Event's JSON>
//
// Sequence numbers start at 1 in each process and go up by one per event
// (a run of events the intake dropped takes one number). CR and LF in an
// event type are sent as %0D and %0A so that they cannot end the field.
// With ?names=message the event field is left out, so that a browser's
// EventSource, which has no catch-all listener for named events, delivers
// every event to onmessage; the page uses this. A comment line goes out
// every [WithHeartbeat] (default 15 s).
//
// Query parameters filter the stream, as an [eventbus.Filter] would: type,
// severity, adw_id and source select events whose field is one of the
// values given (each may repeat), min_severity selects events at least as
// severe (compared as [eventbus.Severity] values; names as
// Severity.UnmarshalText reads them, in any case). An unknown severity, a
// repeated min_severity or an unknown names value is answered 400.
//
// # Resume and gaps
//
// A client that reconnects with Last-Event-ID (or, for clients that cannot
// set headers, ?last_event_id=) gets first every event after that id that
// the server still holds, then live events: in order, none lost and none
// repeated. The server holds the newest [WithReplay] events (default
// 10,000) for this. A Last-Event-ID that is not a decimal number is ignored
// (the stream starts live); one past the newest event, as after a restart
// of the process, counts as 0.
//
// Whenever a stream skips events, it says so before the next event it
// sends (or at once, if none follows yet) with
//
//	event: gap
//	data: {"missed":N}
//
// A stream skips events in three cases. The client resumed from further
// back than the replay buffer reaches: N counts every event it cannot get,
// whether or not its filter would have selected it. The client fell behind
// (see below): N counts the skipped events its filter selects, exactly,
// for those the server still held, and every skipped event beyond that.
// The intake dropped events (see below): N counts them, whatever the
// filter. Gap events carry no id. The bus event type "gap" is not escaped:
// a client that uses names=type and sees event "gap" tells the two apart
// by the data, which for a bus event is an Event with an event_type.
//
// # It never slows the bus
//
// New subscribes one sync handler, named "dashboard", to the bus. The
// handler copies the event into a bounded buffer under a mutex held for
// that append only and, if the buffer was empty, makes one non-blocking
// channel send; it never waits for the Server's goroutine or for a client,
// and it allocates nothing. When the buffer ([WithIntakeBuffer], default
// 16,384 events) is full it drops the event, counts it in
// [Stats].IntakeDropped, and every stream reports it in a gap. Like any
// sync handler it runs on a worker of the bus, or inline in Publish on a
// bus built WithMaxWorkers(0), and counts as one handler run per event in
// the bus's Metrics: that run is the dashboard's cost to a publisher (see
// README.md for measured figures).
//
// One goroutine of the Server (the pump) takes the buffered events at most
// once per millisecond, numbers them, updates the workflow table and
// stores them in a ring of [WithReplay] + [WithClientBuffer] slots
// allocated once, so recording an event allocates nothing. Each stream
// runs on its own request's goroutine, reads the ring at its own place and
// encodes an event to JSON only when it sends it; the first stream to
// encode an event shares the bytes with the others. So an event waits up
// to a millisecond for the pump, then for its streams' goroutines to be
// scheduled; README.md has measured latencies.
//
// # Slow clients
//
// A client may have at most [WithClientBuffer] events (default 1,024)
// that were published since it connected waiting to be written. Beyond
// that, it is skipped to the newest event and gets a gap event
// ([GapSlowClients], the default), or its stream is ended
// ([DisconnectSlowClients]); either way [Stats].SlowClients counts it.
// Every write to a stream, and its flush, has a deadline ([WithWriteTimeout],
// default 10 s), set through [http.ResponseController]; it overrides an
// [http.Server] WriteTimeout for the stream. A client that does not take
// a write within it is disconnected ([Stats].WriteErrors).
//
// At most [WithMaxClients] streams (default 256) are open at once; past
// that, GET /events is answered 503 Service Unavailable with Retry-After: 5.
//
// # Workflows
//
// The workflow table holds at most [WithMaxWorkflows] workflows (default
// 10,000). A workflow is running from its first event until
// workflow_completed or workflow_failed; workflow_started makes it running
// again; other events leave the status alone. When a new workflow arrives
// at the bound, the one that finished longest ago is forgotten or, if none
// has finished, the running one whose last event is oldest; [Stats] and
// the API count evictions.
//
// # Security
//
// The Server is read-only: nothing it serves changes the bus. It sets
// Content-Security-Policy: default-src 'self' on every response, so the
// page runs no inline script or style and loads nothing from elsewhere, and
// X-Content-Type-Options: nosniff. The page renders every piece of event
// data with textContent, never as HTML. No CORS header is sent unless
// [WithAllowedOrigins] names the requesting origin.
//
// The Server does no authentication: anyone who reaches it sees every
// event of the bus. Put authentication in front of it, as any http.Handler
// (Example_bearerToken shows a bearer-token middleware). A browser's
// EventSource cannot send an Authorization header, so for the page use a
// cookie session or a proxy that adds the header.
//
// # Shutdown
//
// [Server.Close] unsubscribes from the bus, ends every stream (a write in
// progress fails at once; an idle stream ends its response cleanly) and
// returns once the pump and every stream handler have returned. It does
// not close the bus. Call it before [http.Server.Shutdown], which would
// otherwise wait for the streams, which never go idle. The Server starts
// one goroutine, in New; streams run on the goroutines net/http gives
// their requests.
//
// # The page
//
// The page loads the workflow summaries from /api/workflows, then opens
// /events?names=message&last_event_id=0, so the server replays what it
// holds and the timelines get their history, counting only events after
// the summaries' "through". EventSource reconnects by itself, sending
// Last-Event-ID; if the browser gives up (the server answered an error),
// the page opens a new stream after 2 s. A badge shows whether the stream
// is live. After any gap the page reloads the summaries. Past 5,000
// workflows it drops finished ones, those it saw least recently first
// (running ones stay, so the list can grow beyond that while more than
// 5,000 run); it keeps 200 events per workflow for timelines and 100 rows
// per feed, and refreshes the metrics every 3 s. Rows are updated at most
// once per animation frame.
package dashboard
