package otelbus

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures an Observer created by New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider makes the Observer create its spans with tp (default:
// the global provider, otel.GetTracerProvider, as it is when New is called).
// It panics if tp is nil.
func WithTracerProvider(tp trace.TracerProvider) Option {
	if tp == nil {
		panic("otelbus: WithTracerProvider: nil provider")
	}
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider makes the Observer create its instruments with mp
// (default: the global provider, otel.GetMeterProvider, as it is when New is
// called). It panics if mp is nil.
func WithMeterProvider(mp metric.MeterProvider) Option {
	if mp == nil {
		panic("otelbus: WithMeterProvider: nil provider")
	}
	return optionFunc(func(c *config) { c.mp = mp })
}
