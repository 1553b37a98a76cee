package dashboard

// This file holds the workflow table behind GET /api/workflows: one record
// per ADWID, bounded, evicting the workflow that finished longest ago
// first. The pump writes it; HTTP handlers read it. workflowTable.mu guards
// everything in it.

import (
	"cmp"
	"container/list"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/adws/eventbus"
)

// A WorkflowStatus is where a workflow is in its life.
type WorkflowStatus string

// Workflow statuses. A workflow is running from its first event until a
// workflow_completed or workflow_failed event; a later workflow_started
// makes it running again. Other events do not change the status.
const (
	StatusRunning   WorkflowStatus = "running"
	StatusCompleted WorkflowStatus = "completed"
	StatusFailed    WorkflowStatus = "failed"
)

// A Workflow summarises the events of one ADWID that the server has seen.
type Workflow struct {
	ADWID      string                       `json:"adw_id"`
	Status     WorkflowStatus               `json:"status"`
	FirstEvent time.Time                    `json:"first_event"` // the earliest event Timestamp
	LastEvent  time.Time                    `json:"last_event"`  // the latest event Timestamp
	Events     uint64                       `json:"events"`
	Severities map[eventbus.Severity]uint64 `json:"severities"` // event counts, keyed by severity name
	LastType   eventbus.EventType           `json:"last_event_type"`
	// LastMessage is the Message of the latest event that had one.
	LastMessage string `json:"last_message"`
}

// workflowList is the JSON of GET /api/workflows.
type workflowList struct {
	Workflows []Workflow `json:"workflows"` // the most recently active first
	Max       int        `json:"max"`       // WithMaxWorkflows
	Evicted   uint64     `json:"evicted"`   // workflows forgotten to stay within Max
	// Through is the sequence number (SSE id) of the last event counted:
	// GET /events?last_event_id=<Through> goes on from there.
	Through uint64 `json:"through"`
}

// A workflowTable tracks up to max workflows. Each record sits in one of
// two lists: running, ordered by last event (oldest first), or finished,
// ordered by when it finished (oldest first).
type workflowTable struct {
	mu       sync.Mutex
	max      int
	byID     map[string]*list.Element // of *Workflow
	running  list.List
	finished list.List
	evicted  uint64
	through  uint64 // the seq of the last event recorded
}

func newWorkflowTable(max int) *workflowTable {
	return &workflowTable{max: max, byID: make(map[string]*list.Element)}
}

// observe records a batch of events, the last of which (or a loss after
// it) has sequence number through. Events without an ADWID are not
// workflows' and are left out.
func (t *workflowTable) observe(es []eventbus.Event, through uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.through = through
	for i := range es {
		if es[i].ADWID != "" {
			t.record(&es[i])
		}
	}
}

func (t *workflowTable) record(e *eventbus.Event) {
	el, ok := t.byID[e.ADWID]
	if !ok {
		if len(t.byID) >= t.max {
			t.evictOne()
		}
		w := &Workflow{ADWID: e.ADWID, Status: StatusRunning, FirstEvent: e.Timestamp,
			Severities: make(map[eventbus.Severity]uint64, 2)}
		el = t.running.PushBack(w)
		t.byID[e.ADWID] = el
	}
	w := el.Value.(*Workflow)
	w.Events++
	w.Severities[e.Severity]++
	w.LastType = e.Type
	if e.Message != "" {
		w.LastMessage = e.Message
	}
	if e.Timestamp.Before(w.FirstEvent) {
		w.FirstEvent = e.Timestamp
	}
	if e.Timestamp.After(w.LastEvent) {
		w.LastEvent = e.Timestamp
	}
	t.byID[e.ADWID] = t.place(el, w, e.Type)
}

// place updates w's status for an event of type typ and moves it to the
// back of the list it now belongs in, returning its new element.
func (t *workflowTable) place(el *list.Element, w *Workflow, typ eventbus.EventType) *list.Element {
	wasRunning := w.Status == StatusRunning
	switch typ {
	case eventbus.WorkflowCompleted:
		w.Status = StatusCompleted
	case eventbus.WorkflowFailed:
		w.Status = StatusFailed
	case eventbus.WorkflowStarted:
		w.Status = StatusRunning
	}
	switch isRunning := w.Status == StatusRunning; {
	case wasRunning && isRunning:
		t.running.MoveToBack(el)
		return el
	case wasRunning:
		t.running.Remove(el)
		return t.finished.PushBack(w)
	case isRunning:
		t.finished.Remove(el)
		return t.running.PushBack(w)
	}
	return el // finished and still finished: keep its place
}

// evictOne forgets the workflow that finished longest ago or, if none has
// finished, the one whose last event is oldest.
func (t *workflowTable) evictOne() {
	from := &t.finished
	if from.Len() == 0 {
		from = &t.running
	}
	el := from.Front()
	if el == nil {
		return
	}
	from.Remove(el)
	delete(t.byID, el.Value.(*Workflow).ADWID)
	t.evicted++
}

// snapshot copies the table, the most recently active workflow first.
func (t *workflowTable) snapshot() workflowList {
	t.mu.Lock()
	out := workflowList{Workflows: make([]Workflow, 0, len(t.byID)), Max: t.max, Evicted: t.evicted, Through: t.through}
	for _, el := range t.byID {
		w := *el.Value.(*Workflow)
		w.Severities = maps.Clone(w.Severities)
		out.Workflows = append(out.Workflows, w)
	}
	t.mu.Unlock()
	slices.SortFunc(out.Workflows, func(a, b Workflow) int {
		return cmp.Or(b.LastEvent.Compare(a.LastEvent), cmp.Compare(a.ADWID, b.ADWID))
	})
	return out
}

// counts returns how many workflows the table holds and how many it evicted.
func (t *workflowTable) counts() (int, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID), t.evicted
}
