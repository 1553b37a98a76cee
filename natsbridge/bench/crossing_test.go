package bench

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batch is how many events one benchmark iteration sends. The iteration
// ends when the last of them has arrived, so the time includes delivery,
// and at most one batch is in flight, so no path can outrun its consumer and
// lose messages.
const batch = 1000

// window is how many JetStream publishes may wait for the stream's
// acknowledgement at once on the raw path.
const window = 256

// The subjects every path uses: the bridge's scheme.
const (
	prefix  = natsbridge.DefaultSubjectPrefix
	pattern = prefix + ".>"
)

// benchEvent is the event every path carries: a typical step event with a
// small data map, about 250 bytes of JSON.
func benchEvent() eventbus.Event {
	return eventbus.Event{
		ID:        uuid.New(),
		ADWID:     "adw-42",
		Type:      eventbus.StepCompleted,
		Source:    "loader",
		Severity:  eventbus.SeverityInfo,
		Message:   "loaded orders into the warehouse",
		Timestamp: time.Now(),
		Data:      map[string]any{"rows": 1200, "table": "orders"},
	}
}

// A counter counts arrivals and signals when an expected total is reached.
type counter struct {
	got  atomic.Int64
	want atomic.Int64
	done chan struct{}
}

func newCounter() *counter { return &counter{done: make(chan struct{}, 1)} }

func (c *counter) add() {
	if c.got.Add(1) == c.want.Load() {
		c.done <- struct{}{}
	}
}

// expect sets the next total; call it before sending the events that make it.
func (c *counter) expect(n int64) { c.want.Store(n) }

func (c *counter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(natstest.Wait):
		b.Fatalf("only %d of %d events arrived", c.got.Load(), c.want.Load())
	}
}

// run sends batches with send until the benchmark has its time, and reports
// events per second. Setup done before run is not timed.
func (c *counter) run(b *testing.B, send func()) {
	b.ReportAllocs()
	var sent int64
	for b.Loop() {
		sent += batch
		c.expect(sent)
		for range batch {
			send()
		}
		c.wait(b)
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sent), "ns/event")
	b.ReportMetric(0, "ns/op") // an op is a batch: events/s says it better
}

// BenchmarkCrossing measures events per second from a publisher to a
// subscriber in another "process" (its own connection) through the same
// embedded server, each path in its own sub-benchmark of one run, so that
// their ratios come from the same machine at about the same time:
//
//   - raw: nats.go publishes the pre-encoded JSON of the event and a
//     subscription callback counts it. No encoding, no header, no bus.
//   - bridge: events go into bus A, a Bridge exports them (encode, subject,
//     origin header), a second Bridge imports them (decode, loop check) into
//     bus B, whose handler counts them. Both buses run handlers inline
//     (WithMaxWorkers(0)), as the raw callback does.
//   - watermill: watermill-nats's pkg/nats publisher and subscriber with
//     its JSONMarshaler, core NATS; see watermill_test.go.
//   - raw+encoding-json: raw, but the publisher json.Marshals the Event and
//     the callback json.Unmarshals it, as hand-written glue would.
//   - raw-jetstream: nats.go's jetstream package publishes the pre-encoded
//     JSON asynchronously, at most window publishes awaiting the stream's
//     acknowledgement, each with a Nats-Msg-Id, to a file-backed stream; a
//     pull consumer (Consume, nats.go's defaults) counts and acknowledges
//     each message.
//   - bridge-jetstream: bridge through a JetStream stream: each export
//     waits for the stream's ack, each import for bus B's handlers and then
//     acks.
//   - watermill-jetstream-parallel, watermill-jetstream: watermill with
//     JetStream, publishing from window goroutines, or from one.
func BenchmarkCrossing(b *testing.B) {
	es := natstest.Start(b, natstest.Embedded)
	e := benchEvent()
	data, err := natsbridge.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	subject := natsbridge.Subject(prefix, e)

	// Each path runs next to those it is compared with: on a shared
	// machine the load changes from one minute to the next.
	b.Run("raw", func(b *testing.B) {
		rawCore(b, es, func(nc *nats.Conn) error { return nc.Publish(subject, data) }, func(*nats.Msg) {})
	})
	b.Run("bridge", func(b *testing.B) { bridgePath(b, es) })
	b.Run("watermill", func(b *testing.B) { watermillPath(b, es, subject, false, 1) })
	b.Run("raw+encoding-json", func(b *testing.B) {
		rawCore(b, es, func(nc *nats.Conn) error {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			return nc.Publish(subject, data)
		}, func(m *nats.Msg) {
			var got eventbus.Event
			if err := json.Unmarshal(m.Data, &got); err != nil {
				panic(err)
			}
		})
	})
	b.Run("raw-jetstream", func(b *testing.B) { rawJetStream(b, es, subject, data) })
	b.Run("bridge-jetstream", func(b *testing.B) {
		// A stream of its own, deleted afterwards, as every JetStream path
		// has: the server remembers each message id for its duplicate
		// window, and a stream kept from run to run would grow that map.
		js, err := jetstream.New(es.Connect("setup"))
		if err != nil {
			b.Fatal(err)
		}
		createStream(b, js, "BENCH")
		bridgePath(b, es, natsbridge.WithJetStream("BENCH"))
	})
	b.Run("watermill-jetstream-parallel", func(b *testing.B) { watermillPath(b, es, subject, true, window) })
	b.Run("watermill-jetstream", func(b *testing.B) { watermillPath(b, es, subject, true, 1) })
}

// rawCore is the raw path: publish on one connection, a callback on
// another receives.
func rawCore(b *testing.B, es *natstest.Server, publish func(*nats.Conn) error, receive func(*nats.Msg)) {
	pub, sub := es.Connect("pub"), es.Connect("sub")
	c := newCounter()
	s, err := sub.Subscribe(pattern, func(m *nats.Msg) {
		receive(m)
		c.add()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Unsubscribe()
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	c.run(b, func() {
		if err := publish(pub); err != nil {
			b.Fatal(err)
		}
	})
}

// bridgePath runs two buses, one exporting and one importing through a
// Bridge each.
func bridgePath(b *testing.B, es *natstest.Server, opts ...natsbridge.Option) {
	ctx := context.Background()
	busA := eventbus.New(eventbus.WithMaxWorkers(0))
	defer busA.Close()
	busB := eventbus.New(eventbus.WithMaxWorkers(0))
	defer busB.Close()
	c := newCounter()
	if _, err := busB.Subscribe(func(eventbus.Event) error { c.add(); return nil }); err != nil {
		b.Fatal(err)
	}
	exp, err := natsbridge.New(ctx, busA, es.Connect("a"), append(opts, natsbridge.WithExport())...)
	if err != nil {
		b.Fatal(err)
	}
	defer exp.Close()
	imp, err := natsbridge.New(ctx, busB, es.Connect("b"), append(opts, natsbridge.WithImport(""))...)
	if err != nil {
		b.Fatal(err)
	}
	defer imp.Close()
	e := benchEvent()
	e.ID, e.Timestamp = uuid.Nil, time.Time{} // the bus gives each a new id and the time
	c.run(b, func() {
		if err := busA.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
	})
	if st := exp.Stats(); st.ExportErrors != 0 {
		b.Fatalf("export errors: %+v", st)
	}
}
