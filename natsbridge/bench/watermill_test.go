package bench

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// watermillPath carries the events with watermill-nats's pkg/nats, the
// adapter that does both core NATS and JetStream, and its JSONMarshaler: the
// publisher json.Marshals each Event into a watermill message's payload,
// and the consumer, a goroutine reading the subscriber's channel,
// json.Unmarshals it, counts it and acks it. With JetStream, the stream is
// file-backed like the bridge's, the subscriber's durable push consumer
// acknowledges without waiting for the server's confirmation (AckAsync, as
// the bridge and the raw path do), and publishers runs that many goroutines
// publishing at once, since watermill's Publish waits for each
// acknowledgement in turn.
func watermillPath(b *testing.B, es *natstest.Server, subject string, js bool, publishers int) {
	ctx := context.Background()
	cfg := wmnats.JetStreamConfig{Disabled: !js}
	if js {
		jsm, err := jetstream.New(es.Connect("setup"))
		if err != nil {
			b.Fatal(err)
		}
		createStream(b, jsm, "WATERMILL")
		cfg.AckAsync = true
		cfg.DurablePrefix = "watermill"
	}
	pub, err := wmnats.NewPublisherWithNatsConn(es.Connect("pub"), wmnats.PublisherPublishConfig{
		Marshaler: wmnats.JSONMarshaler{}, SubjectCalculator: wmnats.DefaultSubjectCalculator, JetStream: cfg,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := wmnats.NewSubscriberWithNatsConn(es.Connect("sub"), wmnats.SubscriberSubscriptionConfig{
		Unmarshaler: wmnats.JSONMarshaler{}, SubjectCalculator: wmnats.DefaultSubjectCalculator, JetStream: cfg,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, pattern)
	if err != nil {
		b.Fatal(err)
	}
	c := newCounter()
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for m := range msgs {
			var e eventbus.Event
			if err := json.Unmarshal(m.Payload, &e); err != nil {
				panic(err)
			}
			m.Ack()
			c.add()
		}
	})
	defer func() {
		if err := sub.Close(); err != nil {
			b.Error(err)
		}
		consumer.Wait()
	}()

	e := benchEvent()
	publish := func() error {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return pub.Publish(subject, message.NewMessage(watermill.NewUUID(), data))
	}
	send, stop := inParallel(b, publishers, publish)
	defer stop()
	c.run(b, send)
}

// inParallel returns a send func that has one of n goroutines call
// publish, and a stop func that ends and joins them. With n == 1, send
// calls publish itself.
func inParallel(b *testing.B, n int, publish func() error) (send, stop func()) {
	if n == 1 {
		return func() {
			if err := publish(); err != nil {
				b.Fatal(err)
			}
		}, func() {}
	}
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range jobs {
				if err := publish(); err != nil {
					b.Error(err)
				}
			}
		})
	}
	return func() { jobs <- struct{}{} }, func() {
		close(jobs)
		wg.Wait()
	}
}
