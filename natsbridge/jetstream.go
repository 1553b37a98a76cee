package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/adws/eventbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ensureStream looks the stream up and creates it if it does not exist. An
// exporting Bridge needs the stream to capture its subjects: otherwise its
// publishes would find no stream, and fail one after the other.
func (b *Bridge) ensureStream(ctx context.Context) error {
	s, err := b.js.Stream(ctx, b.cfg.stream)
	if err == nil {
		return b.checkStream(s.CachedInfo())
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     b.cfg.stream,
		Subjects: []string{b.prefix + ".>"},
		Storage:  jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another Bridge created it meanwhile.
		if s, err = b.js.Stream(ctx, b.cfg.stream); err != nil {
			return err
		}
		return b.checkStream(s.CachedInfo())
	}
	return err
}

func (b *Bridge) checkStream(info *jetstream.StreamInfo) error {
	if !b.cfg.export {
		return nil // the server checks the consumer's filter subject
	}
	want := b.prefix + ".*.*"
	for _, s := range info.Config.Subjects {
		if subjectCovers(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: stream %q has the subjects %q, none of which captures %q",
		ErrStreamSubjects, b.cfg.stream, info.Config.Subjects, want)
}

// subjectCovers reports whether every subject that pattern matches also
// matches filter. Both may hold wildcards.
func subjectCovers(filter, pattern string) bool {
	f, p := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, ft := range f {
		if ft == ">" {
			return i < len(p)
		}
		if i >= len(p) || p[i] == ">" {
			return false
		}
		if ft != "*" && ft != p[i] {
			return false
		}
	}
	return len(f) == len(p)
}

// A jsImport is the JetStream side of an importing Bridge: the consumer it
// pulls from and what its goroutines hold. A goroutine fetches only when it
// holds nothing, the messages that are there at that moment, as many as its
// slot's fetchSizer allows, or else waits for one; it keeps what it fetched
// in its slot, where the keeper extends their ack deadlines until each is
// settled. So no message
// waits anywhere unseen while its AckWait runs. The consumer can go away
// under it (an operator deletes it, or the server removes an idle ephemeral
// one while the Bridge is cut off); then the first goroutine to notice
// attaches again, and the others fetch from the new consumer.
type jsImport struct {
	b *Bridge

	mu      sync.Mutex
	cons    jetstream.Consumer
	name    string
	gen     int           // counts attachments
	stopped bool          // no more fetches
	wait    time.Duration // the next re-attachment waits this long
	lastSeq uint64        // highest stream sequence received

	// Fetches run under fetchCtx, which the keeper cancels and replaces when
	// the connection is back after a reconnect: a pull request sent just
	// before the server went away is lost with it, and would otherwise be
	// noticed only by missed heartbeats.
	fetchCtx    context.Context
	fetchCancel context.CancelFunc

	slots    []slot         // by goroutine: the messages it holds
	keeper   sync.WaitGroup // the goroutine that extends ack deadlines
	stopKeep chan struct{}  // closed to stop it
	stopOnce sync.Once
}

// startJetStreamImport creates or attaches to the consumer and starts the
// goroutines that pull from it, and the one that extends ack deadlines.
func (b *Bridge) startJetStreamImport(ctx context.Context) error {
	j := &jsImport{b: b, stopKeep: make(chan struct{})}
	j.fetchCtx, j.fetchCancel = context.WithCancel(b.pullCtx)
	j.slots = make([]slot, b.cfg.concurrency)
	if err := j.attach(ctx, false); err != nil {
		return err
	}
	b.jsi = j
	j.keeper.Go(j.keep)
	for i := range b.cfg.concurrency {
		b.goLoop(i, b.jetStreamLoop)
	}
	return nil
}

// config returns the configuration of a consumer this Bridge creates. The
// first time, a durable starts at the beginning of the stream and an
// ephemeral one with new messages; when the consumer was lost, the new one
// starts after the last message this Bridge received, or with new messages
// if it received none.
func (j *jsImport) config(again bool) jetstream.ConsumerConfig {
	b := j.b
	cc := jetstream.ConsumerConfig{
		FilterSubject: b.cfg.pattern,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.ackWait,
		MaxDeliver:    b.cfg.maxDeliver,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}
	if b.cfg.queue != "" {
		cc.Durable = b.cfg.queue
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		cc.InactiveThreshold = ephemeralInactive
	}
	if again {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
		if j.lastSeq > 0 {
			cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cc.OptStartSeq = j.lastSeq + 1
		}
	}
	return cc
}

// attach creates the consumer, or finds the durable, and makes it current.
// The caller holds j.mu, or is New.
func (j *jsImport) attach(ctx context.Context, again bool) error {
	b := j.b
	var cons jetstream.Consumer
	var err error
	if b.cfg.queue == "" {
		cons, err = b.js.CreateConsumer(ctx, b.cfg.stream, j.config(again))
	} else {
		cons, err = j.durable(ctx, again)
	}
	if err != nil {
		return err
	}
	j.cons, j.name = cons, cons.CachedInfo().Name
	return nil
}

// durable attaches to the durable consumer, creating it if it does not
// exist. It never changes an existing one: the members of a queue group
// share it, and the settings are those of the member that created it.
func (j *jsImport) durable(ctx context.Context, again bool) (jetstream.Consumer, error) {
	b := j.b
	for {
		cons, err := b.js.Consumer(ctx, b.cfg.stream, b.cfg.queue)
		if err == nil {
			return cons, j.check(cons.CachedInfo())
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, err
		}
		cons, err = b.js.CreateConsumer(ctx, b.cfg.stream, j.config(again))
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return cons, err
		}
		// Another member created it, with other settings: use theirs.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// check refuses a durable that would not deliver what this Bridge imports,
// or would not wait for its acknowledgements, and warns about settings that
// differ from this Bridge's options.
func (j *jsImport) check(info *jetstream.ConsumerInfo) error {
	b := j.b
	c := info.Config
	filters := c.FilterSubjects
	if c.FilterSubject != "" {
		filters = append(filters, c.FilterSubject)
	}
	switch {
	case !slices.Equal(filters, []string{b.cfg.pattern}):
		return fmt.Errorf("%w: %q has the filter subjects %q, the bridge imports %q",
			ErrConsumerMismatch, b.cfg.queue, filters, b.cfg.pattern)
	case c.AckPolicy != jetstream.AckExplicitPolicy:
		return fmt.Errorf("%w: %q acknowledges %s, the bridge needs explicit acks",
			ErrConsumerMismatch, b.cfg.queue, c.AckPolicy)
	}
	if c.AckWait != b.cfg.ackWait || c.MaxDeliver != b.cfg.maxDeliver && !(c.MaxDeliver <= 0 && b.cfg.maxDeliver <= 0) {
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: the durable consumer exists with other settings; keeping them",
			slog.String(keyConsumerName, b.cfg.queue), slog.Duration("ack_wait", c.AckWait),
			slog.Int("max_deliver", c.MaxDeliver))
	}
	return nil
}

// current returns the consumer to fetch from and its generation, or nil
// once the import stops.
func (j *jsImport) current() (jetstream.Consumer, int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return nil, 0
	}
	return j.cons, j.gen
}

// stop lets no new fetch start; the caller cancels pullCtx, which ends the
// fetches in progress.
func (j *jsImport) stop() {
	j.mu.Lock()
	j.stopped = true
	j.mu.Unlock()
}

// A pullAction says what an import goroutine does after a fetch failed.
type pullAction int

const (
	pullAgain pullAction = iota // fetch again, after a pause
	pullRenew                   // fetch from the new consumer at once
	pullQuit                    // return
)

// pullFailed decides what to do about a failed fetch from the consumer of
// generation gen.
func (j *jsImport) pullFailed(gen int, err error) pullAction {
	b := j.b
	if b.importStopping() {
		return pullQuit
	}
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		return j.reattach(gen, err)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, jetstream.ErrConnectionClosed):
		b.stopItself("the connection is closed", err)
		return pullQuit
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, jetstream.ErrBadRequest):
		if j.gone(gen) {
			return j.reattach(gen, err)
		}
	}
	// The server is away, and the like: pull again once it is back.
	b.log.LogAttrs(b.ctx, slog.LevelDebug, "natsbridge: JetStream pull",
		slog.String(keyStream, b.cfg.stream), slog.String(keyError, err.Error()))
	return pullAgain
}

// gone reports whether the server says that the consumer of generation gen
// does not exist.
func (j *jsImport) gone(gen int) bool {
	j.mu.Lock()
	name, current := j.name, j.gen == gen
	j.mu.Unlock()
	if !current {
		return true // re-attached meanwhile: take a new iterator
	}
	ctx, cancel := context.WithTimeout(j.b.pullCtx, lookupWait)
	defer cancel()
	_, err := j.b.js.Consumer(ctx, j.b.cfg.stream, name)
	return errors.Is(err, jetstream.ErrConsumerNotFound)
}

// reattach attaches to the consumer again after the one of generation gen
// was lost, retrying with backoff until it succeeds or the import stops.
// Only the first goroutine to call it for a generation does the work; the
// others find the next generation ready.
func (j *jsImport) reattach(gen int, cause error) pullAction {
	b := j.b
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return pullQuit
	}
	if gen != j.gen {
		return pullRenew
	}
	b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: the JetStream consumer is gone; attaching again",
		slog.String(keyStream, b.cfg.stream), slog.String(keyConsumerName, j.name), slog.String(keyError, cause.Error()))
	for {
		if j.wait > 0 {
			t := time.NewTimer(j.wait)
			select {
			case <-t.C:
			case <-b.importStop:
				t.Stop()
				return pullQuit
			}
		}
		j.wait = min(max(2*j.wait, reattachWaitMin), reattachWaitMax)
		ctx, cancel := context.WithTimeout(b.pullCtx, lookupWait)
		err := j.attach(ctx, true)
		cancel()
		if err == nil {
			j.gen++
			b.n.reattached.Add(1)
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: attached to the JetStream consumer again",
				slog.String(keyStream, b.cfg.stream), slog.String(keyConsumerName, j.name))
			return pullRenew
		}
		if b.importStopping() {
			return pullQuit
		}
		b.log.LogAttrs(b.ctx, slog.LevelError, "natsbridge: cannot attach to the JetStream consumer; retrying",
			slog.String(keyStream, b.cfg.stream), slog.Duration(keyDelay, j.wait), slog.String(keyError, err.Error()))
	}
}

// received notes a message of the stream: the backoff of re-attachment
// starts over, and a lost consumer is replaced by one that starts after it.
func (j *jsImport) received(seq uint64) {
	j.mu.Lock()
	j.wait = 0
	j.lastSeq = max(j.lastSeq, seq)
	j.mu.Unlock()
}

// keep tells the server, every AckWait/3, that the messages being imported
// are still in progress, so that it does not deliver them again while the
// bus's handlers run, and restarts the fetches after a reconnect.
func (j *jsImport) keep() {
	t := time.NewTicker(max(j.b.cfg.ackWait/3, time.Millisecond))
	defer t.Stop()
	reconnected := j.b.nc.StatusChanged(nats.CONNECTED)
	defer j.b.nc.RemoveStatusListener(reconnected)
	for {
		select {
		case <-t.C:
			for i := range j.slots {
				j.b.sendAcks(j.slots[i].takeAcks())
				j.slots[i].touch()
			}
		case <-reconnected:
			j.refetch()
		case <-j.stopKeep:
			return
		case <-j.b.ctx.Done():
			return
		}
	}
}

// stopKeeper stops the keeper and waits for it; it returns at once.
func (j *jsImport) stopKeeper() {
	j.stopOnce.Do(func() { close(j.stopKeep) })
	j.keeper.Wait()
}

// deleteEphemeral deletes the consumer if it is ephemeral. Best effort: the
// server removes an idle ephemeral consumer anyway.
func (j *jsImport) deleteEphemeral(ctx context.Context) {
	if j.b.cfg.queue != "" {
		return
	}
	j.mu.Lock()
	name := j.name
	j.mu.Unlock()
	_ = j.b.js.DeleteConsumer(ctx, j.b.cfg.stream, name)
}

// jetStreamLoop is import goroutine i: it imports the messages its slot
// holds, oldest first, and fetches more when it holds none, until the
// import stops. On Drain it imports what it holds; on Close, or when the
// bus is closed, it gives what it holds back to the server at once.
func (b *Bridge) jetStreamLoop(i int) {
	j := b.jsi
	s := &j.slots[i]
	defer func() {
		if !b.importStopping() {
			return // runtime.Goexit: the next goroutine goes on with them
		}
		// Those imported are acknowledged; the others, on Close or when
		// the bus closed, are given back at once rather than after AckWait.
		b.sendAcks(s.takeAcks())
		for _, m := range s.takeAll() {
			b.n.naked.Add(1)
			_ = m.NakWithDelay(0)
		}
	}()
	var pause time.Duration // after a failed fetch, doubling
	for {
		if b.ctx.Err() != nil {
			return
		}
		if m := s.first(); m != nil {
			if !b.importJetStream(s, m) {
				return
			}
			if s.acksDue() {
				b.sendAcks(s.takeAcks())
			}
			continue
		}
		cons, gen := j.current()
		if cons == nil {
			return
		}
		msgs, err := j.fetch(cons, s.sizer.next())
		if err != nil {
			if !j.pullAgain(gen, err, &pause) {
				return
			}
			continue
		}
		pause = 0
		s.sizer.fetched(len(msgs))
		s.add(msgs)
	}
}

// pullAgain decides, after a fetch from the consumer of generation gen
// failed, whether the goroutine goes on, and waits before it fetches again
// when it should: pause, doubling from retryWaitMin to reattachWaitMax.
// It reports false when the goroutine must return.
func (j *jsImport) pullAgain(gen int, err error, pause *time.Duration) bool {
	switch j.pullFailed(gen, err) {
	case pullQuit:
		return false
	case pullRenew:
		*pause = 0
		return true
	}
	*pause = min(max(2**pause, retryWaitMin), reattachWaitMax)
	t := time.NewTimer(*pause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-j.b.importStop:
		return false
	}
}

// fetch takes up to n messages that the consumer has for it now, or else
// waits up to fetchWait for one. It returns none when none came.
func (j *jsImport) fetch(cons jetstream.Consumer, n int) ([]jetstream.Msg, error) {
	batch, err := cons.FetchNoWait(n)
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		return msgs, nil
	}
	if err := batch.Error(); err != nil {
		return nil, err
	}
	j.mu.Lock()
	parent := j.fetchCtx
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(parent, fetchWait)
	defer cancel()
	batch, err = cons.Fetch(1, jetstream.FetchContext(ctx))
	if err != nil {
		return nil, err
	}
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		return msgs, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return nil, nil // nothing came in time, or a reconnect: fetch again
}

// refetch cancels the fetches in progress, which start again at once.
func (j *jsImport) refetch() {
	j.mu.Lock()
	j.fetchCancel()
	j.fetchCtx, j.fetchCancel = context.WithCancel(j.b.pullCtx)
	j.mu.Unlock()
}

// importJetStream imports m, the oldest message of s, settles it, and drops
// it from s. It returns false when the import must stop because the bus is
// closed.
func (b *Bridge) importJetStream(s *slot, m jetstream.Msg) bool {
	defer s.settled()
	md, mdErr := m.Metadata()
	if mdErr == nil {
		b.jsi.received(md.Sequence.Stream)
	}
	if b.own(m.Headers()) {
		b.n.looped.Add(1)
		s.queueAck(m)
		return true
	}
	e, err := Decode(m.Data())
	if err != nil {
		b.n.terminated.Add(1)
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: terminated a malformed message",
			slog.String(keySubject, m.Subject()), slog.String(keyError, err.Error()))
		if err := b.term(m); err != nil {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: term failed",
				slog.String(keySubject, m.Subject()), slog.String(keyError, err.Error()))
		}
		return true
	}
	delivered := uint64(1)
	if mdErr == nil {
		delivered = md.NumDelivered
	}
	returned := false
	defer func() {
		if !returned { // a handler called runtime.Goexit on this goroutine
			b.nak(m, e, delivered, b.backoff(delivered), errGoexit)
		}
	}()
	err = b.publishImported(e, true)
	returned = true
	switch {
	case err == nil:
		b.n.imported.Add(1)
		s.queueAck(m)
		return true
	case busClosed(err):
		// Give the message back at once, for another member of the group
		// or a later Bridge, and pull no more: each delivery counts
		// against WithMaxDeliver.
		b.nak(m, e, delivered, 0, err)
		b.stopItself("the bus is closed", err)
		return false
	}
	b.nak(m, e, delivered, b.backoff(delivered), err)
	return true
}

// term terminates m, a message that does not decode, so that the server
// never delivers it again. A server from 2.10.4 on gets TermWithReason, and
// puts the reason in its advisory; older servers would ignore that
// altogether and deliver the message again after AckWait, so they get a
// plain Term. So does a server whose version the Bridge cannot tell (while
// nats.go reconnects, the term waits in its buffer for whichever server
// comes next).
func (b *Bridge) term(m jetstream.Msg) error {
	if atLeast(b.nc.ConnectedServerVersion(), termReasonVersion) {
		return m.TermWithReason(termReason)
	}
	return m.Term()
}

// errGoexit is what the log says about a message whose handler ended the
// import goroutine with runtime.Goexit.
var errGoexit = errors.New("natsbridge: a handler called runtime.Goexit on the import goroutine")

// nak acknowledges m negatively, so that the server delivers it again after
// delay, and logs why.
func (b *Bridge) nak(m jetstream.Msg, e eventbus.Event, delivered uint64, delay time.Duration, cause error) {
	b.n.naked.Add(1)
	level := slog.LevelWarn
	if b.ctx.Err() != nil {
		level = slog.LevelDebug // Close interrupted it
	}
	b.log.LogAttrs(b.ctx, level, "natsbridge: import failed, the server will deliver it again",
		slog.String(keyEventID, e.ID.String()), slog.String(keyEventType, string(e.Type)),
		slog.String(keyADWID, e.ADWID), slog.Uint64(keyDelivered, delivered), slog.Duration(keyDelay, delay),
		slog.String(keyError, cause.Error()))
	if err := m.NakWithDelay(delay); err != nil {
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: nak failed",
			slog.String(keyEventID, e.ID.String()), slog.String(keyError, err.Error()))
	}
}

// sendAcks acknowledges ms, messages imported (or dropped as the Bridge's
// own), back to back, so that nats.go writes them out together.
func (b *Bridge) sendAcks(ms []jetstream.Msg) {
	for _, m := range ms {
		if err := m.Ack(); err != nil {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "natsbridge: ack failed, the server will deliver it again",
				slog.String(keySubject, m.Subject()), slog.String(keyError, err.Error()))
		}
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
