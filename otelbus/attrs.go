package otelbus

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/adws/eventbus"
)

// ScopeName is the instrumentation scope name of the Observer's tracer and
// meter.
const ScopeName = "github.com/adws/eventbus/otelbus"

// Attribute values, and the keys that the OpenTelemetry semantic conventions
// (v1.43.0, the version shipped with go.opentelemetry.io/otel v1.47.0) do not
// define. The messaging.* and error.type keys come from package semconv.
const (
	// systemName is the value of messaging.system.
	systemName = "eventbus"
	// Values of messaging.operation.name.
	opProcess        = "process"
	opPublish        = "publish"
	opPublishAndWait = "publish_and_wait"
	// keySubscriptionID is the subscription's id on a span, beside
	// messaging.consumer.group.name, which holds its name when it has one.
	keySubscriptionID = attribute.Key("eventbus.subscription.id")
	// errTypePanic is the error.type of a run that panicked.
	errTypePanic = "panic"
)

var (
	attrSystem        = semconv.MessagingSystemKey.String(systemName)
	attrOpNameProcess = semconv.MessagingOperationNameKey.String(opProcess)
)

// groupName returns the value of messaging.consumer.group.name for a run:
// the subscription's name, or its id when it has none.
func groupName(r *eventbus.RunInfo) string {
	if r.Name != "" {
		return r.Name
	}
	return string(r.SubscriptionID)
}

// A failure describes a failed run.
type failure struct {
	errType string // error.type
	cause   error  // the handler's own error, or its panic as an error
	stack   []byte // where it panicked, or nil
}

// runFailure describes the failed run whose RunInfo.Err is err. Its
// error.type is "panic" for a panic, otherwise what semconv.ErrorType gives
// for the handler's own error: its ErrorType method's result if it has one,
// else its Go type, such as "*errors.errorString".
func runFailure(err error) failure {
	var he *eventbus.HandlerError
	if !errors.As(err, &he) || he.Err == nil {
		return failure{errType: semconv.ErrorType(err).Value.AsString(), cause: err}
	}
	if he.Panic != nil {
		return failure{errType: errTypePanic, cause: he.Err, stack: he.Stack}
	}
	return failure{errType: semconv.ErrorType(he.Err).Value.AsString(), cause: he.Err}
}

// refusalType returns the error.type of a publish the bus refused.
func refusalType(err error) string {
	switch {
	case errors.Is(err, eventbus.ErrQueueFull):
		return "queue_full"
	case errors.Is(err, eventbus.ErrClosed):
		return "closed"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return semconv.ErrorType(err).Value.AsString()
}

// maxCached bounds how many entries each cache keeps. Past it, entries are
// built per measurement, which costs a few allocations but stays correct.
const maxCached = 1024

// measureOpts are the prebuilt options that attach one attribute set to a
// measurement, so that recording it allocates nothing.
type measureOpts struct {
	rec []metric.RecordOption
	add []metric.AddOption
}

func newMeasureOpts(kv ...attribute.KeyValue) measureOpts {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return measureOpts{rec: []metric.RecordOption{o}, add: []metric.AddOption{o}}
}

// A cache maps keys to values built once. It is safe for concurrent use;
// lookups take no lock and allocate nothing (a sync.Map would box each
// struct key): the map is replaced, copied, when an entry is added, which
// happens at most maxCached times.
type cache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]*V]
	mu sync.Mutex // serializes additions
}

// get returns the value for k, built by build on first use.
func (c *cache[K, V]) get(k K, build func(K) *V) *V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	v := build(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if prev, ok := (*old)[k]; ok {
			return prev
		}
		if len(*old) >= maxCached {
			return v
		}
	}
	next := make(map[K]*V, c.lenOf(old)+1)
	if old != nil {
		maps.Copy(next, *old)
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

func (c *cache[K, V]) lenOf(m *map[K]*V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// len returns the number of entries in c.
func (c *cache[K, V]) len() int { return c.lenOf(c.m.Load()) }

// runKey identifies what the runs of one kind share: their span name and
// the attributes of their spans and measurements.
type runKey struct {
	typ     eventbus.EventType
	group   string
	errType string // "" for a run that succeeded
}

// A runEntry is what runs with one runKey share.
type runEntry struct {
	measureOpts
	spanName  string                // "process <event type>", as the conventions name spans
	spanAttrs trace.SpanStartOption // the attributes of the measurements, and messaging.operation.type
}

func newRunEntry(k runKey) *runEntry {
	kv := []attribute.KeyValue{
		attrSystem,
		attrOpNameProcess,
		semconv.MessagingDestinationName(string(k.typ)),
		semconv.MessagingConsumerGroupName(k.group),
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	return &runEntry{
		measureOpts: newMeasureOpts(kv...),
		spanName:    opProcess + " " + string(k.typ),
		spanAttrs:   trace.WithAttributes(append(kv, semconv.MessagingOperationTypeProcess)...),
	}
}

// publishKey identifies the attribute set of a publish's measurements.
type publishKey struct {
	typ     eventbus.EventType
	op      string // opPublish or opPublishAndWait
	errType string // "" for an accepted event
}

func newPublishOpts(k publishKey) *measureOpts {
	kv := []attribute.KeyValue{
		attrSystem,
		semconv.MessagingOperationName(k.op),
		semconv.MessagingDestinationName(string(k.typ)),
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	o := newMeasureOpts(kv...)
	return &o
}
