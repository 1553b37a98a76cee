package bench

import (
	"context"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

var watermillPayload = message.Payload(peerEv.Message)

// newWatermill returns a GoChannel with n subscribers, each a goroutine that
// handles and acks every message, and a stop func that closes the GoChannel
// and waits for those goroutines. stop also runs at cleanup.
func newWatermill(b *testing.B, t *tally, n int, config gochannel.Config) (*gochannel.GoChannel, func()) {
	pubSub := gochannel.NewGoChannel(config, watermill.NopLogger{})
	var consumers sync.WaitGroup
	for range n {
		messages, err := pubSub.Subscribe(context.Background(), topic)
		if err != nil {
			b.Fatal(err)
		}
		consumers.Go(func() {
			for msg := range messages {
				t.hit()
				msg.Ack()
			}
		})
	}
	stop := sync.OnceFunc(func() {
		if err := pubSub.Close(); err != nil {
			b.Error(err)
		}
		consumers.Wait()
	})
	b.Cleanup(stop)
	return pubSub, stop
}

func watermillPublish(pubSub *gochannel.GoChannel) error {
	return pubSub.Publish(topic, message.NewMessage(watermill.NewUUID(), watermillPayload))
}

// watermillMany is S1 and S2: with the default Config, Publish returns
// before delivery and there is no wait, so it waits, timed, on the handlers'
// count.
func watermillMany(b *testing.B, n int) {
	t := newTally(b)
	pubSub, stop := newWatermill(b, t, n, gochannel.Config{})
	b.ResetTimer()
	for range b.N {
		if err := watermillPublish(pubSub); err != nil {
			b.Fatal(err)
		}
	}
	t.expect(b, b.N*n)
	b.StopTimer()
	stop()
	t.verify(b, b.N*n)
}

// watermillS3 uses BlockPublishUntilSubscriberAck: Publish returns once
// every subscriber has acked the message.
func watermillS3(b *testing.B, n int) {
	t := newTally(b)
	pubSub, stop := newWatermill(b, t, n, gochannel.Config{BlockPublishUntilSubscriberAck: true})
	ops := 0
	for b.Loop() {
		if err := watermillPublish(pubSub); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	stop()
	t.verify(b, ops*n)
}

func watermillS4(b *testing.B) {
	t := newTally(b)
	pubSub, stop := newWatermill(b, t, s4Subs, gochannel.Config{})
	b.ResetTimer()
	ops := parallelOps(b, func() error { return watermillPublish(pubSub) })
	t.expect(b, ops*s4Subs)
	b.StopTimer()
	stop()
	t.verify(b, ops*s4Subs)
}
