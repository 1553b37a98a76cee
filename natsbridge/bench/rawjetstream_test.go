package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawJetStream is the raw-jetstream path: asynchronous publishes with at
// most window awaiting their acknowledgement, each with a Nats-Msg-Id, to
// a file-backed stream, and a pull consumer that counts and acknowledges
// each message.
func rawJetStream(b *testing.B, es *natstest.Server, subject string, data []byte) {
	ctx := context.Background()
	pub, err := jetstream.New(es.Connect("pub"), jetstream.WithPublishAsyncMaxPending(window))
	if err != nil {
		b.Fatal(err)
	}
	createStream(b, pub, "RAW")
	sub, err := jetstream.New(es.Connect("sub"))
	if err != nil {
		b.Fatal(err)
	}
	cons, err := sub.CreateConsumer(ctx, "RAW", jetstream.ConsumerConfig{
		FilterSubject: pattern, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		b.Fatal(err)
	}
	c := newCounter()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			panic(err)
		}
		c.add()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
	}()
	var seq int
	c.run(b, func() {
		seq++
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: {strconv.Itoa(seq)}}}
		// Wait for room in the window as long as the benchmark waits for
		// anything, not nats.go's default 200ms, which a loaded machine
		// can exceed.
		if _, err := pub.PublishMsgAsync(m, jetstream.WithStallWait(natstest.Wait)); err != nil {
			b.Fatal(err)
		}
	})
}

// createStream creates a file-backed stream that captures the subjects of
// every path, as a Bridge creates its own, and deletes it when the
// benchmark ends.
func createStream(b *testing.B, js jetstream.JetStream, name string) {
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{pattern}, Storage: jetstream.FileStorage,
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := js.DeleteStream(ctx, name); err != nil {
			b.Error(err)
		}
	})
}
