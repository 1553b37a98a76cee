package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the bridge. Compare with errors.Is: ErrMalformed and
// ErrSubjectTooLong are always wrapped with the details.
var (
	// ErrNilBus is returned by New for a nil bus.
	ErrNilBus = errors.New("natsbridge: nil bus")
	// ErrNilConn is returned by New for a nil connection.
	ErrNilConn = errors.New("natsbridge: nil connection")
	// ErrNilContext is returned by New and Drain when given a nil context.
	ErrNilContext = errors.New("natsbridge: nil context")
	// ErrNothingToBridge is returned by New when neither WithExport nor
	// WithImport is given.
	ErrNothingToBridge = errors.New("natsbridge: nothing to bridge: use WithExport or WithImport")
	// ErrClosed is wrapped by the exporting handler's error for an export
	// run that starts after Close began (the event is not exported), and
	// for a JetStream export that Close interrupted while it waited for the
	// stream's acknowledgement (the stream may have stored it).
	ErrClosed = errors.New("natsbridge: bridge closed")
	// ErrMalformed is wrapped by the errors of Decode, UnescapeToken and
	// ParseSubject for input that is not in the wire format.
	ErrMalformed = errors.New("natsbridge: malformed message")
	// ErrSubjectTooLong is wrapped by the exporting handler's error for an
	// event whose subject would be longer than MaxSubjectLen (a very long
	// type or workflow id); the event is not exported.
	ErrSubjectTooLong = errors.New("natsbridge: subject too long")
	// ErrStreamSubjects is wrapped by New's error when the JetStream stream
	// exists but does not capture the Bridge's subjects.
	ErrStreamSubjects = errors.New("natsbridge: stream does not capture the bridge's subjects")
	// ErrConsumerMismatch is wrapped by New's error when the durable
	// consumer named by WithQueueGroup exists with another filter subject
	// or without explicit acknowledgements.
	ErrConsumerMismatch = errors.New("natsbridge: durable consumer has other settings")
)

// Defaults of the options, and fixed timings.
const (
	defaultAckWait      = 30 * time.Second
	defaultNakMin       = 500 * time.Millisecond
	defaultNakMax       = 30 * time.Second
	defaultPublishRetry = time.Minute
	publishAttemptWait  = 5 * time.Second // one JetStream publish waits this long for its ack
	publishWindow       = 256             // JetStream exports awaiting their ack at once, at most
	retryWaitMin        = 50 * time.Millisecond
	retryWaitMax        = 2 * time.Second
	reattachWaitMin     = 100 * time.Millisecond // backoff while the consumer cannot be re-attached
	reattachWaitMax     = 5 * time.Second
	lookupWait          = 5 * time.Second        // one consumer lookup or creation while re-attaching
	fetchWait           = 30 * time.Second       // a fetch that waits for a message waits this long
	fetchBatch          = 256                    // an import goroutine takes at most this many messages at once
	firstFetch          = 8                      // and this many the first time
	batchWork           = 100 * time.Millisecond // what it takes: as many as it imports in this long
	ephemeralInactive   = 5 * time.Minute
)

// Log attribute keys, spelled like the Event's JSON tags where they match.
const (
	keyEventID      = "event_id"
	keyEventType    = "event_type"
	keyADWID        = "adw_id"
	keySubject      = "subject"
	keyError        = "error"
	keyDelivered    = "num_delivered"
	keyDelay        = "delay"
	keyDropped      = "dropped"
	keyStream       = "stream"
	keyConsumerName = "consumer"
)

type config struct {
	prefix       string
	export       bool
	filters      []eventbus.Filter
	imports      bool
	pattern      string // "" means prefix + ".>"
	queue        string
	stream       string // "" means core NATS
	origin       string
	logger       *slog.Logger
	concurrency  int
	ackWait      time.Duration
	maxDeliver   int
	nakMin       time.Duration
	nakMax       time.Duration
	publishRetry time.Duration
}

// An Option configures a Bridge created by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithExport makes the Bridge publish to NATS every local event that matches
// all of filters (every event when none is given), on the subject that
// [Subject] returns. Events that a Bridge imported into the bus are never
// exported again. Calling WithExport twice adds the filters together.
func WithExport(filters ...eventbus.Filter) Option {
	return optionFunc(func(c *config) {
		c.export = true
		c.filters = append(c.filters, filters...)
	})
}

// WithImport makes the Bridge publish into the local bus every message on the
// subjects that pattern matches, except the messages it exported itself. An
// empty pattern means every event under the prefix (prefix + ".>"). Narrow it
// with wildcards to let the server filter: "adws.events.step_failed.*" for one
// type, "adws.events.*.adw-7" for one workflow, "adws.events.*._" for events
// without a workflow id (see [EscapeToken]). It panics on a pattern that is
// not a valid subject.
func WithImport(pattern string) Option {
	if pattern != "" && !validSubject(pattern, true) {
		panic("natsbridge: WithImport: invalid subject pattern " + fmt.Sprintf("%q", pattern))
	}
	return optionFunc(func(c *config) { c.imports, c.pattern = true, pattern })
}

// WithSubjectPrefix sets the first tokens of every subject (default
// "adws.events"). It panics on a prefix that is not a valid subject without
// wildcards, or that leaves no room for the two tokens under MaxSubjectLen.
func WithSubjectPrefix(prefix string) Option {
	if !validSubject(prefix, false) || len(prefix) > MaxSubjectLen-4 {
		panic("natsbridge: WithSubjectPrefix: invalid prefix " + fmt.Sprintf("%q", prefix))
	}
	return optionFunc(func(c *config) { c.prefix = prefix })
}

// WithQueueGroup makes importing Bridges with the same group share the
// messages: each message goes to one of them. With core NATS it is a queue
// group; with JetStream it is the name of a durable consumer that the
// Bridges share, which also keeps the place in the stream while no Bridge
// runs. The first Bridge creates the durable with its settings (filter
// subject, WithAckWait, WithMaxDeliver) and the others attach to it as it
// is: New never changes an existing durable, fails with ErrConsumerMismatch
// if its filter subject differs or it does not use explicit
// acknowledgements, and logs a warning if its AckWait or MaxDeliver differ.
// To change them, delete the durable (nats consumer rm) while no member
// runs. A Bridge that also exports must not share a group with Bridges that
// import its own subjects: a message of its own delivered to it is dropped,
// and then no member of the group imports it. It panics on a name with
// whitespace, '.', '*' or '>'.
func WithQueueGroup(name string) Option {
	if name == "" || strings.ContainsAny(name, ".*> \t\r\n") {
		panic("natsbridge: WithQueueGroup: invalid group name " + fmt.Sprintf("%q", name))
	}
	return optionFunc(func(c *config) { c.queue = name })
}

// WithJetStream switches the Bridge to JetStream, for at-least-once delivery,
// using the named stream. New creates the stream, with the subjects prefix +
// ".>" and file storage, if it does not exist; if it exists, New checks that
// one of its subjects captures every subject the Bridge publishes to
// (prefix.*.*), and fails with ErrStreamSubjects otherwise. Export then waits for the
// stream's acknowledgement and sets the event id as the message id, so the
// server drops duplicates within its duplicate window (two minutes by
// default); import uses a pull consumer and acknowledges a message only after
// the local bus's PublishAndWait returned nil. It panics on an empty name.
func WithJetStream(stream string) Option {
	if stream == "" || strings.ContainsAny(stream, ".*> \t\r\n") {
		panic("natsbridge: WithJetStream: invalid stream name " + fmt.Sprintf("%q", stream))
	}
	return optionFunc(func(c *config) { c.stream = stream })
}

// WithOrigin sets the origin that the Bridge writes in the Adws-Origin header
// of what it exports and uses to recognise its own messages on import. The
// default is a random UUID per bus, shared by every Bridge on that bus that
// has no WithOrigin, for as long as the bus exists: so one Bridge that
// exports and another that imports, on the same bus, do not echo its events
// back into it. Bridges that must not import each other's events may share
// an origin; a process that restarts gets a new default origin, so with a
// durable JetStream consumer give each service a stable one. It panics on an empty origin or one
// with whitespace.
func WithOrigin(origin string) Option {
	if origin == "" || strings.ContainsAny(origin, " \t\r\n") {
		panic("natsbridge: WithOrigin: invalid origin " + fmt.Sprintf("%q", origin))
	}
	return optionFunc(func(c *config) { c.origin = origin })
}

// WithLogger sets the logger for import problems (default slog.Default()).
// Export errors are returned to the bus, which logs them. It panics if l is
// nil.
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		panic("natsbridge: WithLogger: nil logger")
	}
	return optionFunc(func(c *config) { c.logger = l })
}

// WithConcurrency sets how many goroutines import messages (default 1). With
// one, messages enter the bus in the order they arrive; with more, in any
// order. In JetStream mode each goroutine waits for the bus's handlers of
// its message before it takes the next, so n bounds the events in progress;
// it fetches only when it holds no message, those that are there at that
// moment, up to as many as it imported in about 100ms the last time (8 the
// first time, at most 256), or else it waits for one; and the Bridge tells
// the server every AckWait/3 that each message it holds is in progress, so
// that none is delivered again while it waits its turn. It panics if n < 1.
func WithConcurrency(n int) Option {
	if n < 1 {
		panic("natsbridge: WithConcurrency: n must be at least 1")
	}
	return optionFunc(func(c *config) { c.concurrency = n })
}

// WithAckWait sets how long the JetStream server waits for an import's
// acknowledgement before it delivers the message again (default 30s). While
// the bus's handlers run, the Bridge tells the server every d/3 that the
// message is in progress, so a slow handler does not make the server deliver
// it again; the server does so only when the Bridge stops answering (its
// process or connection is gone). It applies to JetStream only, and to a
// durable consumer only when this Bridge creates it (see WithQueueGroup).
// It panics if d <= 0.
func WithAckWait(d time.Duration) Option {
	if d <= 0 {
		panic("natsbridge: WithAckWait: non-positive duration")
	}
	return optionFunc(func(c *config) { c.ackWait = d })
}

// WithMaxDeliver caps how often the JetStream server delivers one message to
// the importing consumer (default: no cap, so a failing handler sees the
// event again and again, with backoff). JetStream only, and for a durable
// consumer only when this Bridge creates it. It panics if n < 1.
func WithMaxDeliver(n int) Option {
	if n < 1 {
		panic("natsbridge: WithMaxDeliver: n must be at least 1")
	}
	return optionFunc(func(c *config) { c.maxDeliver = n })
}

// WithNakBackoff sets the redelivery delay after a handler failure in
// JetStream mode: min after the first delivery, doubling with each further
// delivery up to max (default 500ms to 30s). JetStream only. It panics
// unless 0 < min <= max.
func WithNakBackoff(min, max time.Duration) Option {
	if min <= 0 || max < min {
		panic("natsbridge: WithNakBackoff: need 0 < min <= max")
	}
	return optionFunc(func(c *config) { c.nakMin, c.nakMax = min, max })
}

// WithPublishRetry sets how long a JetStream export keeps retrying a publish
// that was not acknowledged, with backoff from 50ms to 2s between attempts
// (default one minute). Only failures that can pass are retried: no answer
// in time, or a connection that is reconnecting. Errors that another attempt
// cannot change fail at once: the message is larger than the server's max
// payload, the connection is closed, no stream listens on the subject
// (nats.go's "no responders", which a clustered stream also answers while it
// elects a leader), or the server refused the message with an API error.
// Zero means one attempt. JetStream only; Close ends the retries. It panics
// if d < 0.
func WithPublishRetry(d time.Duration) Option {
	if d < 0 {
		panic("natsbridge: WithPublishRetry: negative duration")
	}
	return optionFunc(func(c *config) { c.publishRetry = d })
}

// A Bridge carries events between a local [eventbus.Bus] and NATS. It is safe
// for concurrent use. Create one with New and stop it with Drain or Close;
// the zero Bridge is not usable.
type Bridge struct {
	bus    *eventbus.Bus
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    config
	log    *slog.Logger
	prefix string

	originHeader []string                     // the Adws-Origin header's value, shared by every export
	header       nats.Header                  // the header of core exports; never written after New
	lastSubject  atomic.Pointer[subjectCache] // see Bridge.subject

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	importCtx context.Context // ctx with the imported marker

	// Export. The bus calls admit, the exporter's last filter, inside
	// Publish; every run of the exporter follows one admission that returned
	// true, and ends with one call of release. admitted holds those runs
	// not yet ended, plus one while the gate is open: the exporter is
	// unsubscribed when it drops to zero, so the bus never skips a run
	// of it (a skipped run is not an error, and the publisher would not
	// learn that its event went nowhere).
	subID     eventbus.SubscriptionID // the exporter's subscription; "" without export
	admitted  atomic.Int64
	gateShut  atomic.Bool
	shutGate  sync.Once
	unsubOnce sync.Once
	exports   tracker
	window    chan struct{} // a place for each JetStream export awaiting its ack
	pub       publisher     // encodes and publishes JetStream exports
	flight    *inFlight     // ids being imported into bus, by any Bridge

	// Import.
	sub           *nats.Subscription // core import
	jsi           *jsImport          // JetStream import
	loops         loopSet
	importStop    chan struct{} // closed when the import stops (Close, Drain, or by itself)
	stopImport    sync.Once
	pullCtx       context.Context // cancelled with importStop; bounds consumer look-ups
	pullCancel    context.CancelFunc
	stoppedItself atomic.Bool // ImportStopped
	drainOnce     sync.Once
	isDraining    atomic.Bool
	closeOnce     sync.Once
	dropped       atomic.Uint64 // Dropped, taken when the subscription ends

	n counters
}

// importedKey marks the ctx of events that a Bridge published into a bus.
type importedKey struct{}

// Imported reports whether ctx is the context of an event that a Bridge
// imported from NATS. Async handlers ([eventbus.AsyncHandler]) receive the
// publisher's context values, so they can tell such events from local ones.
// Events that such a handler publishes with this ctx are new events, with
// their own ids, and are exported like any other.
func Imported(ctx context.Context) bool { return ctx.Value(importedKey{}) != nil }

// New starts a Bridge between bus and nc. Give it WithExport, WithImport or
// both. It subscribes the exporter to bus, subscribes the importer to NATS
// and, with WithJetStream, looks up or creates the stream and the consumer;
// ctx bounds that setup only. When New returns, the server knows the
// import's interest, so messages published from then on reach the Bridge.
// The Bridge never closes bus or nc: stop it with Drain or Close first, then
// close them.
//
// New returns ErrNilContext, ErrNilBus, ErrNilConn or ErrNothingToBridge for
// bad arguments, ctx.Err() if ctx is done, the bus's error
// (eventbus.ErrClosed) if bus is closed, an error wrapping
// ErrStreamSubjects or ErrConsumerMismatch for a stream or durable that does
// not fit, and the NATS error if a subscription, the stream or the consumer
// cannot be set up; then it has stopped what it started (a stream or durable
// consumer it created stays).
func New(ctx context.Context, bus *eventbus.Bus, nc *nats.Conn, opts ...Option) (*Bridge, error) {
	switch {
	case ctx == nil:
		return nil, ErrNilContext
	case bus == nil:
		return nil, ErrNilBus
	case nc == nil:
		return nil, ErrNilConn
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := config{
		prefix:       DefaultSubjectPrefix,
		logger:       slog.Default(),
		concurrency:  1,
		ackWait:      defaultAckWait,
		maxDeliver:   -1,
		nakMin:       defaultNakMin,
		nakMax:       defaultNakMax,
		publishRetry: defaultPublishRetry,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if !cfg.export && !cfg.imports {
		return nil, ErrNothingToBridge
	}
	if cfg.pattern == "" {
		cfg.pattern = cfg.prefix + ".>"
	}
	if cfg.origin == "" {
		cfg.origin = busOrigin(bus)
	}
	b := &Bridge{bus: bus, nc: nc, cfg: cfg, log: cfg.logger, prefix: cfg.prefix}
	b.exports.idle = make(chan struct{})
	b.window = make(chan struct{}, publishWindow)
	b.admitted.Store(1) // the gate's own token, given back by shut
	b.originHeader = []string{cfg.origin}
	b.header = nats.Header{HeaderOrigin: b.originHeader}
	b.flight = acquireInFlight(bus)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.importCtx = context.WithValue(b.ctx, importedKey{}, b)
	b.importStop = make(chan struct{})
	b.pullCtx, b.pullCancel = context.WithCancel(b.ctx)
	b.loops.changed = make(chan struct{})

	if err := b.setup(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bridge) setup(ctx context.Context) error {
	if b.cfg.stream != "" {
		js, err := jetstream.New(b.nc)
		if err != nil {
			return err
		}
		b.js = js
		if err := b.ensureStream(ctx); err != nil {
			return err
		}
	}
	if b.cfg.imports {
		var err error
		if b.js != nil {
			err = b.startJetStreamImport(ctx)
		} else {
			err = b.startCoreImport(ctx)
		}
		if err != nil {
			return err
		}
	}
	if b.cfg.export {
		opts := make([]eventbus.SubscribeOption, 0, len(b.cfg.filters)+2)
		opts = append(opts, eventbus.WithName("natsbridge export "+b.cfg.origin))
		for _, f := range b.cfg.filters {
			opts = append(opts, f)
		}
		// Last, so that it runs only for events the user's filters take.
		opts = append(opts, eventbus.Filter{Match: b.admit})
		var id eventbus.SubscriptionID
		var err error
		if b.js != nil {
			if err := b.startPublisher(); err != nil {
				return err
			}
			id, err = b.bus.SubscribeAsync(b.exportAsync, opts...)
		} else {
			id, err = b.bus.Subscribe(b.export, opts...)
		}
		if err != nil {
			return err
		}
		b.subID = id
	}
	return nil
}

// Origin returns the origin the Bridge writes into the Adws-Origin header.
func (b *Bridge) Origin() string { return b.cfg.origin }

// Drain stops the Bridge gracefully, like http.Server.Shutdown. In order, it
// waits (with the bus's Drain) for the handler runs in progress, so that the
// events they publish can still be exported; stops the exporter from taking
// new events (events published from then on are not exported, and are no
// error); waits (with the bus's Drain again) until every export run of an
// event it took has finished, so that each such event is exported or its
// publisher gets the error; unsubscribes the exporter; with core NATS,
// flushes the connection so that the server has the exports; then stops
// asking NATS for messages, imports the ones already delivered to the
// Bridge (with JetStream, those each import goroutine holds; a fetch still
// waiting is cancelled, and a message the server sent for it comes back
// after AckWait), and waits for its goroutines to exit. With JetStream and no queue
// group it then deletes its consumer.
//
// Drain returns nil when done, the flush's error if the server did not
// confirm the exports (with the Bridge stopped all the same), and ctx.Err()
// if ctx ends first; the Bridge is then stopping, and Close finishes the job
// at once (an export run that the bus had not yet started then fails with
// ErrClosed). Drain must not be called from a handler of the bus: it waits
// for the bus's running handlers. A Drain after Close, or a second Drain,
// waits for the first to finish and returns nil, or ctx.Err(). It returns
// ErrNilContext for a nil ctx.
func (b *Bridge) Drain(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var flushErr error
	if b.subID != "" {
		// Handlers running now may publish events to export: let them.
		if err := b.bus.Drain(ctx); err != nil {
			return err
		}
		b.shut()
		// Every run the gate admitted was accepted by the bus before this
		// Drain began, or is being accepted right now (Close then fails it).
		if err := b.bus.Drain(ctx); err != nil {
			return err
		}
		if b.js == nil && !b.nc.IsClosed() {
			if err := b.flush(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				flushErr = fmt.Errorf("natsbridge: drain: flush: %w", err)
			}
		}
	}
	b.drainOnce.Do(func() {
		b.isDraining.Store(true)
		b.endImport(true)
	})
	if err := b.loops.wait(ctx, true); err != nil {
		return err
	}
	if b.jsi != nil {
		b.jsi.stopKeeper()
		if b.ctx.Err() == nil {
			b.jsi.deleteEphemeral(ctx)
		}
	}
	b.Close()
	return flushErr
}

func (b *Bridge) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		return b.nc.FlushWithContext(ctx)
	}
	return b.nc.Flush() // nats.go's default timeout, 10s
}

// Close stops the Bridge at once and returns nil; a second call returns nil.
//
// Export: Close stops the exporter from taking new events (events published
// from then on are not exported, and are no error), cancels a JetStream
// export that is retrying, and waits for the exports in progress. An export
// run that the bus had queued but not started still runs, later, and fails
// with ErrClosed (counted in ExportErrors), so its publisher's
// PublishAndWait returns the error; the exporter is unsubscribed from the
// bus when the last such run has ended. (If the bus refused, with a full
// queue, an event that the exporter had already taken, the subscription
// stays on the bus, taking nothing, until the bus is closed.)
//
// Import: a core NATS message being imported is counted in ImportErrors, and
// the messages nats.go holds for the subscription are discarded uncounted:
// use Drain to import them. A JetStream import waiting for the bus stops
// waiting and acknowledges negatively, so the server delivers the message
// again at once, to another member of the queue group or to the next Bridge
// that attaches to the durable; the ctx of the async handlers running for
// it, which is the import's ctx, is cancelled, while sync handlers go on.
// Messages that an import goroutine fetched but had not started (see
// WithConcurrency) are acknowledged negatively too, so none waits for its
// AckWait. Without a queue group the consumer is ephemeral: no one pulls
// from it after Close, and the server deletes it, with what it holds, after
// five idle minutes.
//
// Close waits for the Bridge's goroutines to exit, except one that is inside
// the bus at that moment: that goroutine is running a bus handler itself (a
// bus built WithMaxWorkers(0) runs sync handlers on the publishing
// goroutine), and ends, importing nothing more, as soon as the handler
// returns. So a handler may call Close, and then Close returns at once; the
// bus's Close waits for the handler. Close does not close the bus or the
// connection.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		b.shut()
		b.cancel()
		<-b.exports.close()
		b.stopPublisher() // no export is in progress
		b.endImport(false)
		_ = b.loops.wait(nil, false)
		if b.jsi != nil {
			b.jsi.stopKeeper()
		}
		releaseInFlight(b.bus)
	})
	return nil
}

func (b *Bridge) draining() bool { return b.isDraining.Load() }

// admit is the Match of the exporter's last Filter. The bus calls it inside
// Publish, on the publishing goroutine, after the user's filters matched. It
// turns away the events that a Bridge is importing into the bus at that
// moment, and every event once the gate is shut; otherwise it counts the
// run that the bus is about to queue.
func (b *Bridge) admit(e eventbus.Event) bool {
	if b.gateShut.Load() {
		return false // stopping: not exported, and no error
	}
	if b.flight.has(e.ID) {
		b.n.notReexported.Add(1)
		return false
	}
	b.admitted.Add(1)
	if b.gateShut.Load() {
		b.release()
		return false
	}
	return true
}

// release ends one admission, or the gate's own token. The last one
// unsubscribes the exporter: no run of it can be queued any more.
func (b *Bridge) release() {
	if b.admitted.Add(-1) == 0 {
		b.unsubOnce.Do(func() { b.bus.Unsubscribe(b.subID) })
	}
}

// shut closes the export gate: admit takes no more events.
func (b *Bridge) shut() {
	b.shutGate.Do(func() {
		b.gateShut.Store(true)
		if b.subID != "" {
			b.release()
		}
	})
}

// endImport stops the import: core NATS subscription drained (drain) or
// unsubscribed, JetStream iterators drained or stopped. It runs once.
func (b *Bridge) endImport(drain bool) {
	b.stopImport.Do(func() {
		close(b.importStop)
		b.pullCancel() // a re-attachment in progress gives up
		if b.sub != nil {
			b.keepDropped()
			if drain {
				_ = b.sub.Drain()
			} else {
				_ = b.sub.Unsubscribe()
			}
		}
		if b.jsi != nil {
			b.jsi.stop()
		}
	})
}

// keepDropped saves the subscription's drop count before it ends.
func (b *Bridge) keepDropped() {
	if d, err := b.sub.Dropped(); err == nil {
		b.dropped.Store(uint64(d))
	}
}

// A tracker counts exports in progress so that Close can wait for them
// without a helper goroutine. The zero tracker is not usable: make idle.
type tracker struct {
	n        atomic.Int64
	closed   atomic.Bool
	idle     chan struct{} // closed once closed and n == 0
	idleOnce sync.Once
}

// enter admits one export, or returns false once close was called.
func (t *tracker) enter() bool {
	t.n.Add(1)
	if t.closed.Load() {
		t.exit()
		return false
	}
	return true
}

func (t *tracker) exit() {
	if t.n.Add(-1) == 0 && t.closed.Load() {
		t.idleOnce.Do(func() { close(t.idle) })
	}
}

// close refuses further exports and returns a channel that is closed when
// none is in progress.
func (t *tracker) close() <-chan struct{} {
	t.closed.Store(true)
	if t.n.Load() == 0 {
		t.idleOnce.Do(func() { close(t.idle) })
	}
	return t.idle
}
