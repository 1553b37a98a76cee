package natsbridge

import (
	"runtime"
	"sync"
	"weak"

	"github.com/adws/eventbus"
	"github.com/google/uuid"
)

// origins holds the default origin of each bus that a Bridge without
// WithOrigin was created on, for as long as the bus exists: the map holds
// the bus weakly, and the entry goes when the bus is garbage.
var origins sync.Map // weak.Pointer[eventbus.Bus] -> string

// busOrigin returns the default origin of bus, a random UUID made the
// first time, shared by every Bridge on bus that has no WithOrigin.
func busOrigin(bus *eventbus.Bus) string {
	key := weak.Make(bus)
	if v, ok := origins.Load(key); ok {
		return v.(string)
	}
	v, loaded := origins.LoadOrStore(key, uuid.NewString())
	if !loaded {
		runtime.AddCleanup(bus, func(k weak.Pointer[eventbus.Bus]) { origins.Delete(k) }, key)
	}
	return v.(string)
}

// An inFlight holds the ids of the events that Bridges are publishing into
// one bus right now. The exporter's subscription carries a Filter whose
// Match consults it: the bus calls Match on the publishing goroutine, inside
// Publish, so an event that an importer is publishing is in the set exactly
// while the bus decides whom it reaches. The entry goes when Publish returns,
// so nothing accumulates.
type inFlight struct {
	refs   int // Bridges using this set; guarded by registryMu
	shards [16]idShard
}

type idShard struct {
	mu  sync.Mutex
	ids map[uuid.UUID]int // an id may be imported twice at once (redelivery)
	_   [40]byte          // keep shards on separate cache lines
}

var (
	registryMu sync.Mutex
	registry   = map[*eventbus.Bus]*inFlight{}
)

// acquireInFlight returns the set of bus, shared by every Bridge on it.
func acquireInFlight(bus *eventbus.Bus) *inFlight {
	registryMu.Lock()
	defer registryMu.Unlock()
	f := registry[bus]
	if f == nil {
		f = &inFlight{}
		for i := range f.shards {
			f.shards[i].ids = map[uuid.UUID]int{}
		}
		registry[bus] = f
	}
	f.refs++
	return f
}

// releaseInFlight drops one Bridge's use of the set of bus.
func releaseInFlight(bus *eventbus.Bus) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if f := registry[bus]; f != nil {
		if f.refs--; f.refs == 0 {
			delete(registry, bus)
		}
	}
}

func (f *inFlight) shard(id uuid.UUID) *idShard { return &f.shards[id[15]&15] }

func (f *inFlight) add(id uuid.UUID) {
	s := f.shard(id)
	s.mu.Lock()
	s.ids[id]++
	s.mu.Unlock()
}

func (f *inFlight) remove(id uuid.UUID) {
	s := f.shard(id)
	s.mu.Lock()
	if s.ids[id]--; s.ids[id] <= 0 {
		delete(s.ids, id)
	}
	s.mu.Unlock()
}

func (f *inFlight) has(id uuid.UUID) bool {
	s := f.shard(id)
	s.mu.Lock()
	_, ok := s.ids[id]
	s.mu.Unlock()
	return ok
}
