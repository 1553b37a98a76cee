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
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the bridge. Compare with errors.Is: ErrMalformed is
// always wrapped with the reason.
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
	// ErrClosed is returned by the exporting handler for an event that
	// reaches it after Close or Drain began; the event is not exported.
	ErrClosed = errors.New("natsbridge: bridge closed")
	// ErrMalformed is wrapped by the errors of Decode, UnescapeToken and
	// ParseSubject for input that is not in the wire format.
	ErrMalformed = errors.New("natsbridge: malformed message")
)

// Defaults of the options, and fixed timings.
const (
	defaultAckWait      = 30 * time.Second
	defaultNakMin       = 500 * time.Millisecond
	defaultNakMax       = 30 * time.Second
	defaultPublishRetry = time.Minute
	publishAttemptWait  = 5 * time.Second // one JetStream publish waits this long for its ack
	retryWaitMin        = 50 * time.Millisecond
	retryWaitMax        = 2 * time.Second
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
// wildcards.
func WithSubjectPrefix(prefix string) Option {
	if !validSubject(prefix, false) {
		panic("natsbridge: WithSubjectPrefix: invalid prefix " + fmt.Sprintf("%q", prefix))
	}
	return optionFunc(func(c *config) { c.prefix = prefix })
}

// WithQueueGroup makes importing Bridges with the same group share the
// messages: each message goes to one of them. With core NATS it is a queue
// group; with JetStream it is the name of a durable consumer that the
// Bridges share, which also keeps the place in the stream while no Bridge
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
// ".>" and file storage, if it does not exist. Export then waits for the
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
// of what it exports and uses to recognise its own messages on import
// (default: a random UUID per Bridge). Bridges that must not import each
// other's events may share an origin. It panics on an empty origin or one
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
// its message before it takes the next, so n bounds the events in progress.
// It panics if n < 1.
func WithConcurrency(n int) Option {
	if n < 1 {
		panic("natsbridge: WithConcurrency: n must be at least 1")
	}
	return optionFunc(func(c *config) { c.concurrency = n })
}

// WithAckWait sets how long the JetStream server waits for an import's
// acknowledgement before it delivers the message again (default 30s). It
// applies to JetStream only, and to a durable consumer from the next New
// that creates or updates it. It panics if d <= 0.
func WithAckWait(d time.Duration) Option {
	if d <= 0 {
		panic("natsbridge: WithAckWait: non-positive duration")
	}
	return optionFunc(func(c *config) { c.ackWait = d })
}

// WithMaxDeliver caps how often the JetStream server delivers one message to
// the importing consumer (default: no cap, so a failing handler sees the
// event again and again, with backoff). JetStream only. It panics if n < 1.
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
// (default one minute). Zero means one attempt. JetStream only; Close ends
// the retries. It panics if d < 0.
func WithPublishRetry(d time.Duration) Option {
	if d < 0 {
		panic("natsbridge: WithPublishRetry: negative duration")
	}
	return optionFunc(func(c *config) { c.publishRetry = d })
}

// Stats are the counters of a Bridge. Each says exactly when it moves.
type Stats struct {
	// Exported counts events handed to NATS: with core NATS when
	// Conn.PublishMsg accepted them (into its buffer, or its reconnect
	// buffer while disconnected), with JetStream when the stream
	// acknowledged them.
	Exported uint64
	// ExportErrors counts events that matched the export filters but were
	// not exported: publishing failed (after the retries, with JetStream),
	// the event did not encode, or the event reached the bridge after Close
	// or Drain began. The bus gets the error from the handler and logs it.
	ExportErrors uint64
	// Skipped counts events that matched the export filters but were not
	// exported because a Bridge had imported them into this bus.
	Skipped uint64
	// Imported counts messages published into the local bus: with core NATS
	// when Publish accepted them, with JetStream when PublishAndWait returned
	// nil (and the message was acknowledged).
	Imported uint64
	// ImportErrors counts core NATS messages that the local bus refused
	// (closed, or its queue full) or whose import Close interrupted; they are
	// lost. JetStream failures are counted in Naked.
	ImportErrors uint64
	// Looped counts messages dropped on import because they carried this
	// Bridge's own origin (with JetStream they are acknowledged).
	Looped uint64
	// Terminated counts messages that did not decode: dropped with core
	// NATS, terminated with JetStream, so that they are never delivered
	// again.
	Terminated uint64
	// Naked counts JetStream messages acknowledged negatively: a handler
	// failed, the bus refused the event, or Close interrupted the wait.
	// The server delivers them again after a delay.
	Naked uint64
	// Dropped counts core NATS messages that nats.go discarded because the
	// import fell behind (a slow consumer).
	Dropped uint64
}

type counters struct {
	exported, exportErrors, skipped, imported, importErrors,
	looped, terminated, naked atomic.Uint64
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

	subID   eventbus.SubscriptionID // the exporter's subscription; "" without export
	exports tracker
	flight  *inFlight // ids being imported into bus, by any Bridge

	sub       *nats.Subscription        // core import
	iter      jetstream.MessagesContext // JetStream import
	consumer  string                    // JetStream consumer name
	ephemeral bool

	loops    sync.WaitGroup
	loopDone []chan struct{}

	stopExport sync.Once
	drainOnce  sync.Once
	isDraining atomic.Bool
	closeOnce  sync.Once
	dropped    atomic.Uint64 // Dropped, taken when the subscription ends

	n counters
}

// importedKey marks the ctx of events that a Bridge published into a bus.
type importedKey struct{}

// Imported reports whether ctx is the context of an event that a Bridge
// imported from NATS. Async handlers ([eventbus.AsyncHandler]) receive the
// publisher's context values, so they can tell such events from local ones.
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
// (eventbus.ErrClosed) if bus is closed, and the NATS error if a
// subscription, the stream or the consumer cannot be set up; then it has
// stopped what it started (a stream or durable consumer it created stays).
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
		cfg.origin = uuid.NewString()
	}
	b := &Bridge{bus: bus, nc: nc, cfg: cfg, log: cfg.logger, prefix: cfg.prefix}
	b.exports.idle = make(chan struct{})
	b.originHeader = []string{cfg.origin}
	b.header = nats.Header{HeaderOrigin: b.originHeader}
	b.flight = acquireInFlight(bus)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.importCtx = context.WithValue(b.ctx, importedKey{}, b)

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
		opts = append(opts, eventbus.Filter{Match: b.notImporting})
		var id eventbus.SubscriptionID
		var err error
		if b.js != nil {
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

// Stats returns a snapshot of the Bridge's counters. See [Stats] for when each
// moves.
func (b *Bridge) Stats() Stats {
	s := Stats{
		Exported:     b.n.exported.Load(),
		ExportErrors: b.n.exportErrors.Load(),
		Skipped:      b.n.skipped.Load(),
		Imported:     b.n.imported.Load(),
		ImportErrors: b.n.importErrors.Load(),
		Looped:       b.n.looped.Load(),
		Terminated:   b.n.terminated.Load(),
		Naked:        b.n.naked.Load(),
		Dropped:      b.dropped.Load(),
	}
	if b.sub != nil {
		if d, err := b.sub.Dropped(); err == nil && uint64(d) > s.Dropped {
			s.Dropped = uint64(d)
		}
	}
	return s
}

// Drain stops the Bridge gracefully, like http.Server.Shutdown. In order, it
// waits (with the bus's Drain) for the handler runs that the bus had
// accepted, so that every event the bus accepted before Drain is exported or
// counted in ExportErrors; unsubscribes the exporter from the bus (events
// published meanwhile may or may not be exported); waits for the exports in
// progress; with core NATS, flushes the connection so the server has the
// exports; then stops asking NATS for messages, imports the ones already
// delivered to the Bridge, and waits for its goroutines to exit. With
// JetStream and no queue group it then deletes its consumer.
//
// Drain returns nil when done, and ctx.Err() if ctx ends first; the Bridge is
// then stopping, and Close finishes the job at once. Drain must not be called
// from a handler of the bus: it waits for the bus's running handlers. A Drain
// after Close, or a second Drain, waits for the first to finish and returns
// nil, or ctx.Err(). It returns ErrNilContext for a nil ctx.
func (b *Bridge) Drain(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.subID != "" {
		// Drain the bus before unsubscribing: Unsubscribe skips the runs
		// of the exporter that are still queued.
		if err := b.bus.Drain(ctx); err != nil {
			return err
		}
		b.unsubscribeExporter()
		select {
		case <-b.exports.close():
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.js == nil && !b.nc.IsClosed() {
			if err := b.flush(ctx); err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	b.drainOnce.Do(func() {
		b.isDraining.Store(true)
		if b.sub != nil {
			b.keepDropped()
			_ = b.sub.Drain()
		}
		if b.iter != nil {
			b.iter.Drain()
		}
	})
	for _, done := range b.loopDone {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if b.ephemeral && b.ctx.Err() == nil {
		// Best effort: the server removes an idle ephemeral consumer anyway.
		_ = b.js.DeleteConsumer(ctx, b.cfg.stream, b.consumer)
	}
	b.Close()
	return nil
}

func (b *Bridge) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		return b.nc.FlushWithContext(ctx)
	}
	return b.nc.Flush() // nats.go's default timeout, 10s
}

// Close stops the Bridge at once and returns nil once its goroutines have
// exited; a second call returns nil. It unsubscribes the exporter (export
// runs still queued in the bus are skipped; the bus counts them in
// Metrics.Skipped) and waits for the exports in progress, cancelling a
// JetStream export that is retrying (counted in ExportErrors). On the import
// side, a core NATS message being imported is counted in ImportErrors, and
// the messages nats.go holds for the subscription are discarded uncounted:
// use Drain to import them. JetStream imports waiting for the bus stop
// waiting and acknowledge negatively, so the server delivers those messages
// again, and messages pulled but not yet handed to the bus are delivered
// again after AckWait. Handlers already running in the bus go on; the bus
// waits for them. Close does not close the bus or the connection.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		b.unsubscribeExporter()
		b.cancel()
		<-b.exports.close()
		if b.sub != nil {
			b.keepDropped()
			_ = b.sub.Unsubscribe()
		}
		if b.iter != nil {
			b.iter.Stop()
		}
		b.loops.Wait()
		releaseInFlight(b.bus)
	})
	return nil
}

func (b *Bridge) draining() bool { return b.isDraining.Load() }

func (b *Bridge) unsubscribeExporter() {
	b.stopExport.Do(func() {
		if b.subID != "" {
			b.bus.Unsubscribe(b.subID)
		}
	})
}

// keepDropped saves the subscription's drop count before it ends.
func (b *Bridge) keepDropped() {
	if d, err := b.sub.Dropped(); err == nil {
		b.dropped.Store(uint64(d))
	}
}

// goLoop starts one import goroutine, owned by b: Close waits for it, and
// Drain waits for its done channel.
func (b *Bridge) goLoop(loop func()) {
	done := make(chan struct{})
	b.loopDone = append(b.loopDone, done)
	b.loops.Go(func() {
		defer close(done)
		loop()
	})
}

// A tracker counts exports in progress so that Close and Drain can wait for
// them without a helper goroutine. The zero tracker is not usable: make idle.
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
