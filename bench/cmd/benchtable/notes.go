package main

import "maps"

// What the tables say besides the figures: the scenarios, the contenders and
// the footnotes. Every claim about a peer was checked against its source at
// the version pinned in bench/go.mod; the file named in each note is where.

// A scenarioInfo describes one scenario's table.
type scenarioInfo struct {
	id, title string
	subs      []int // the subscriber counts of its columns; nil: one set of columns
}

var scenarios = []scenarioInfo{
	{"S1", "inline fan-out: 1 event to n sync subscribers", []int{1, 10, 100}},
	{"S2", "async throughput: b.N events to n background subscribers, then wait for every delivery (per event)", []int{1, 10}},
	{"S3", "publish-and-wait latency: 1 event to n background subscribers, and wait for all of them", []int{1, 10}},
	{"S4", "parallel publishers: b.RunParallel publishing to 10 sync subscribers", nil},
}

// subCounts returns the subscriber counts of scenario id, nil if it has none
// or is unknown.
func subCounts(id string) []int {
	for _, s := range scenarios {
		if s.id == id {
			return s.subs
		}
	}
	return nil
}

// reference is the row every ratio is taken against.
const reference = "eventbus"

// libOrder is the order of rows; contenders not listed follow in the order
// the output names them.
var libOrder = []string{
	"eventbus", "eventbus-debug", "eventbus-async",
	"asaskevich", "gookit", "mustafaturan", "kelindar", "watermill", "cskr", "hub",
	"baseline-direct", "baseline-direct-clock", "baseline-slog-debug", "baseline-channel", "baseline-workerpool", "baseline-goroutine",
}

// peerModules maps a peer's row name to its module.
var peerModules = map[string]string{
	"asaskevich":   "github.com/asaskevich/EventBus",
	"gookit":       "github.com/gookit/event",
	"mustafaturan": "github.com/mustafaturan/bus/v3",
	"kelindar":     "github.com/kelindar/event",
	"watermill":    "github.com/ThreeDotsLabs/watermill",
	"cskr":         "github.com/cskr/pubsub/v2",
	"hub":          "github.com/leandro-lugaresi/hub",
}

// legend describes the rows that are not peers.
const legend = "`eventbus` is this bus with its logger at Info (Debug off); `eventbus-debug` the same with " +
	"Debug on, every handler run formatted by a `slog.TextHandler` into `io.Discard`; `eventbus-async` " +
	"subscribes with `SubscribeAsync`. S1 and S4 run this bus `WithMaxWorkers(0)` (inline), S2 and S3 " +
	"with a pool of `GOMAXPROCS` workers, as large as `baseline-workerpool`'s. `baseline-direct` calls " +
	"the handlers through func values; `baseline-direct-clock` also reads the clock once per handler, " +
	"the floor for a bus that times every run; `baseline-slog-debug` is `baseline-direct-clock` that also " +
	"logs each run with `slog.Logger.LogAttrs`, at Debug, the record `eventbus-debug` logs, through the same " +
	"handler: the floor for a bus that logs every run; `baseline-channel` is one buffered channel (1024) with one " +
	"consumer; `baseline-workerpool` queues one job per (event, handler) to `GOMAXPROCS` workers and waits " +
	"on a `sync.WaitGroup`; `baseline-goroutine` starts a goroutine per handler and waits on a `sync.WaitGroup`."

// omitted says why a peer has no figures in a scenario it cannot run.
var omitted = map[string]map[string]string{
	"S2": {"mustafaturan": mustafaturanSyncOnly},
	"S3": {"mustafaturan": mustafaturanSyncOnly},
}

const mustafaturanSyncOnly = "No figures: sync only. `Emit` calls every handler in the caller's goroutine " +
	"and the README leaves asynchronous processing to the application, so there is no background " +
	"subscriber to measure (bus.go)."

// Peer notes shared by several scenarios.
const (
	asyncInS1 = "Delivers asynchronously even here: the run publishes all events, then waits, timed, " +
		"until every handler has run for every event. "
	noWaitAPI = "No wait API: the run waits on the handlers' own counter, woken by the last handler " +
		"over a channel. "
	asaskevichSync = "`Publish` holds the bus's one mutex while the sync handlers run and calls each " +
		"through `reflect.Value.Call`: parallel publishers take turns, and a handler that publishes " +
		"deadlocks. No recover: a panicking handler crashes the process (event_bus.go)."
	asaskevichAsync = "`SubscribeAsync(topic, fn, false)`, as in its README: a goroutine per handler per " +
		"event, tracked by `WaitAsync`, which waits for every async handler of the bus rather than for " +
		"one event's. No recover: a panicking handler crashes the process (event_bus.go)."
	gookitSync = "`Fire` runs the listeners in the caller. Without `EnableLock` (the default, used " +
		"here) it reads the listener maps unlocked, so `On` must not run concurrently with it " +
		"(manager.go, manager_fire.go)."
	gookitPool = "A panicking listener ends its consumer goroutine for good (the panic is kept only in " +
		"a shared error field), so the pool shrinks; `AsyncFire` starts goroutines nothing tracks " +
		"(manager_fire.go)."
	kelindarBatching = "Timer batching: `Publish` appends to every subscriber's queue without waking it; " +
		"subscriber goroutines wake only on the dispatcher's 500 µs ticker. `Close` stops the ticker " +
		"but leaves the subscriber goroutines parked (untracked); no recover around handlers (event.go). "
	watermillAsync = "GoChannel with the default `Config`: `Publish` returns before delivery. "
	watermillNotes = "Each `Publish` starts a goroutine per message plus one per subscriber, which " +
		"`Close` does not wait for (untracked), and a message published while its topic has no " +
		"subscriber is discarded (pubsub/gochannel/pubsub.go)."
	cskrNotes = "One goroutine serves every `Sub` and `Pub`; subscriber channels have capacity 0, as in " +
		"the package example. `Pub` hands the message to that goroutine, which blocks until each " +
		"subscriber took it, so one slow subscriber holds up every topic; `TryPub` would instead drop " +
		"the message silently, with no count or error, where a channel is full (pubsub.go)."
	hubNotes = "Blocking `Subscribe(10, …)`, as in its README; `NonBlockingSubscribe` would drop a " +
		"message when the buffer is full and report it on `AlertTopic` (subscriber.go, hub.go)."
)

// notes holds each peer's footnote per scenario.
var notes = map[string]map[string]string{
	"S1": syncNotes,
	"S2": {
		"asaskevich": asaskevichAsync,
		"gookit": "`FireC` queues on a channel of 100 drained by 3 consumer goroutines (the defaults). " +
			"Its only way to wait for queued events is `CloseWait`, which closes that channel: the run " +
			"ends with it. " + gookitPool,
		"kelindar":  kelindarBatching + noWaitAPI,
		"watermill": watermillAsync + noWaitAPI + watermillNotes,
		"cskr":      noWaitAPI + cskrNotes,
		"hub":       noWaitAPI + hubNotes,
	},
	"S3": {
		"asaskevich": asaskevichAsync,
		"gookit": "`FireC` with the default 3 consumers. No per-event wait API (`CloseWait` closes the " +
			"queue): the run waits on the handlers' own counter after each event. " + gookitPool,
		"kelindar": "Every event waits for the next 500 µs tick. " + kelindarBatching + noWaitAPI,
		"watermill": "`BlockPublishUntilSubscriberAck`: `Publish` returns once every subscriber acked. " +
			watermillNotes,
		"cskr": noWaitAPI + cskrNotes,
		"hub":  noWaitAPI + hubNotes,
	},
	// S4 runs the peers as S1 does, from parallel publishers.
	"S4": with(syncNotes, "mustafaturan", "`Emit` takes a read lock per event. No recover around handlers (bus.go)."),
}

// syncNotes are the footnotes of the scenarios with sync subscribers.
var syncNotes = map[string]string{
	"asaskevich":   asaskevichSync,
	"gookit":       gookitSync,
	"mustafaturan": "Event IDs from an atomic counter (its README uses monoton). No recover around handlers (bus.go).",
	"kelindar":     asyncInS1 + kelindarBatching + noWaitAPI,
	"watermill":    watermillAsync + asyncInS1 + noWaitAPI + watermillNotes,
	"cskr":         asyncInS1 + noWaitAPI + cskrNotes,
	"hub":          asyncInS1 + noWaitAPI + hubNotes,
}

// with returns a copy of m with k set to v.
func with(m map[string]string, k, v string) map[string]string {
	c := maps.Clone(m)
	c[k] = v
	return c
}
