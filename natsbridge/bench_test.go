package natsbridge_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// batch is how many events one benchmark iteration sends. The iteration
// ends when the last of them has arrived, so the time includes delivery,
// and at most one batch is in flight, so no path can outrun its consumer and
// lose messages.
const batch = 1000

// benchEvent is the event every path carries: a typical step event with a
// small data map, about 250 bytes of JSON.
func benchEvent() eventbus.Event {
	return eventbus.Event{
		ADWID:    "adw-42",
		Type:     eventbus.StepCompleted,
		Source:   "loader",
		Severity: eventbus.SeverityInfo,
		Message:  "loaded orders into the warehouse",
		Data:     map[string]any{"rows": 1200, "table": "orders"},
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
	case <-time.After(waitFor):
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
// embedded server, each path in its own sub-benchmark of one run:
//
//   - raw: nats.go publishes the pre-encoded JSON of the event and a
//     subscription callback counts it. No encoding, no header, no bus.
//   - raw+encoding-json: the same, but the publisher json.Marshals the Event
//     and the callback json.Unmarshals it, as hand-written glue would.
//   - bridge: Events go into bus A, a Bridge exports them (encode, subject,
//     origin header), a second Bridge imports them (decode, loop check) into
//     bus B, whose handler counts them. Both buses run handlers inline
//     (WithMaxWorkers(0)), as the raw callback does.
//   - bridge-jetstream: the same through a JetStream stream: each export
//     waits for the stream's ack, each import for bus B's handlers and then
//     acks.
func BenchmarkCrossing(b *testing.B) {
	es := startServer(b)
	e := benchEvent()
	e.ID = uuid.New()
	e.Timestamp = time.Now()
	data, err := natsbridge.Encode(e)
	require.NoError(b, err)
	subject := natsbridge.Subject(natsbridge.DefaultSubjectPrefix, e)

	rawPath := func(b *testing.B, publish func(*nats.Conn) error, receive func(*nats.Msg)) {
		pub, sub := es.Connect("pub"), es.Connect("sub")
		c := newCounter()
		s, err := sub.Subscribe(natsbridge.DefaultSubjectPrefix+".>", func(m *nats.Msg) {
			receive(m)
			c.add()
		})
		require.NoError(b, err)
		defer s.Unsubscribe()
		require.NoError(b, sub.Flush())
		c.run(b, func() {
			if err := publish(pub); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("raw", func(b *testing.B) {
		rawPath(b, func(nc *nats.Conn) error { return nc.Publish(subject, data) }, func(*nats.Msg) {})
	})
	b.Run("raw+encoding-json", func(b *testing.B) {
		rawPath(b, func(nc *nats.Conn) error {
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

	bridgePath := func(b *testing.B, opts ...natsbridge.Option) {
		ctx := context.Background()
		busA := eventbus.New(eventbus.WithMaxWorkers(0))
		defer busA.Close()
		busB := eventbus.New(eventbus.WithMaxWorkers(0))
		defer busB.Close()
		c := newCounter()
		_, err := busB.Subscribe(func(eventbus.Event) error { c.add(); return nil })
		require.NoError(b, err)
		exp, err := natsbridge.New(ctx, busA, es.Connect("a"), append(opts, natsbridge.WithExport())...)
		require.NoError(b, err)
		defer exp.Close()
		imp, err := natsbridge.New(ctx, busB, es.Connect("b"), append(opts, natsbridge.WithImport(""))...)
		require.NoError(b, err)
		defer imp.Close()
		e := benchEvent()
		c.run(b, func() {
			if err := busA.Publish(ctx, e); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("bridge", func(b *testing.B) { bridgePath(b) })
	b.Run("bridge-jetstream", func(b *testing.B) { bridgePath(b, natsbridge.WithJetStream("BENCH")) })
}
