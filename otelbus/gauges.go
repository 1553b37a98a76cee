package otelbus

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/adws/eventbus"
)

// ObserveBus reports b's queue in two asynchronous instruments of o's meter:
// eventbus.queue.depth is b.Metrics().Queued (handler runs accepted but not
// yet started) and eventbus.handler.in_flight is b.Metrics().InFlight
// (handler runs executing now), both with attrs. The bus is read once per
// collection, on the goroutine of the metric reader that collects, at the
// cost of one Bus.Metrics call; ObserveBus itself only registers a callback.
//
// The instruments are up-down counters: they can go down, and the
// observations of several buses with the same attrs add up, so a process
// with many buses reports its total unless attrs tell the buses apart (for
// example attribute.String("eventbus.bus.name", "orders")).
//
// unregister stops the reports; it is safe to call more than once and from
// any goroutine, and returns the meter provider's error from the first call.
// Until then the Observer keeps b reachable; after b is closed, its values
// are zero. ObserveBus returns the meter provider's error if it cannot
// register the callback. It panics if b is nil. On the zero Observer it
// registers nothing and returns a no-op unregister.
func (o *Observer) ObserveBus(b *eventbus.Bus, attrs ...attribute.KeyValue) (unregister func() error, err error) {
	if b == nil {
		panic("otelbus: ObserveBus: nil bus")
	}
	if o.meter == nil {
		return func() error { return nil }, nil
	}
	opts := []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
	reg, err := o.meter.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		m := b.Metrics()
		obs.ObserveInt64(o.queued, m.Queued, opts...)
		obs.ObserveInt64(o.inFlight, m.InFlight, opts...)
		return nil
	}, o.queued, o.inFlight)
	if err != nil {
		return nil, err
	}
	return sync.OnceValue(reg.Unregister), nil
}
