package dashboard_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getJSON decodes GET path on h into v.
func getJSON(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	rec := newRecorder()
	h.ServeHTTP(rec, mustRequest(t, path))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), v))
}

type workflowList struct {
	Workflows []struct {
		ADWID       string            `json:"adw_id"`
		Status      string            `json:"status"`
		FirstEvent  time.Time         `json:"first_event"`
		LastEvent   time.Time         `json:"last_event"`
		Events      int               `json:"events"`
		Severities  map[string]uint64 `json:"severities"`
		LastType    string            `json:"last_event_type"`
		LastMessage string            `json:"last_message"`
	} `json:"workflows"`
	Max     int    `json:"max"`
	Evicted uint64 `json:"evicted"`
	Through uint64 `json:"through"`
}

// TestWorkflows checks GET /api/workflows: status, first and last event
// time, counts by severity and last message of each workflow, most recent
// first.
func TestWorkflows(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(e eventbus.Event, sec int) eventbus.Event {
		e.Timestamp = t0.Add(time.Duration(sec) * time.Second)
		return e
	}
	publish(t, bus,
		at(ev("done", eventbus.WorkflowStarted, eventbus.SeverityInfo, "go"), 0),
		at(ev("broken", eventbus.WorkflowStarted, eventbus.SeverityInfo, "go"), 1),
		at(ev("done", eventbus.StepCompleted, eventbus.SeverityDebug, ""), 2),
		at(ev("broken", eventbus.StepFailed, eventbus.SeverityError, "table missing"), 3),
		at(ev("live", eventbus.StepStarted, eventbus.SeverityInfo, "step 1"), 4),
		at(ev("done", eventbus.WorkflowCompleted, eventbus.SeverityInfo, ""), 5),
		at(ev("broken", eventbus.WorkflowFailed, eventbus.SeverityCritical, "gave up"), 6),
		eventbus.Event{Type: eventbus.AgentMessage, Message: "no workflow"},
	)
	waitRecorded(t, d, 8)

	var got workflowList
	getJSON(t, d, "/api/workflows", &got)
	require.Len(t, got.Workflows, 3, "the event without an ADWID is no workflow")
	assert.Equal(t, uint64(8), got.Through)
	byID := map[string]int{}
	for i, w := range got.Workflows {
		byID[w.ADWID] = i
	}
	broken, done, live := got.Workflows[byID["broken"]], got.Workflows[byID["done"]], got.Workflows[byID["live"]]
	assert.Equal(t, "broken", got.Workflows[0].ADWID, "most recent first")
	assert.Equal(t, "failed", broken.Status)
	assert.Equal(t, "completed", done.Status)
	assert.Equal(t, "running", live.Status)
	assert.Equal(t, t0.Add(time.Second), broken.FirstEvent)
	assert.Equal(t, t0.Add(6*time.Second), broken.LastEvent)
	assert.Equal(t, map[string]uint64{"INFO": 1, "ERROR": 1, "CRITICAL": 1}, broken.Severities)
	assert.Equal(t, map[string]uint64{"INFO": 2, "DEBUG": 1}, done.Severities)
	assert.Equal(t, "gave up", broken.LastMessage)
	assert.Equal(t, "go", done.LastMessage, "the last event with a message")
	assert.Equal(t, 3, done.Events)
	assert.Equal(t, "workflow_failed", broken.LastType)
}

// TestWorkflowEviction checks WithMaxWorkflows: the workflow that finished
// longest ago goes first, even before older running ones; without a
// finished one, the running one whose last event is oldest.
func TestWorkflowEviction(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus, dashboard.WithMaxWorkflows(3))
	publish(t, bus,
		ev("run-old", eventbus.StepStarted, eventbus.SeverityInfo, ""),
		ev("fin-1", eventbus.WorkflowCompleted, eventbus.SeverityInfo, ""),
		ev("fin-2", eventbus.WorkflowFailed, eventbus.SeverityError, ""),
		ev("new-1", eventbus.StepStarted, eventbus.SeverityInfo, ""), // evicts fin-1
		ev("new-2", eventbus.StepStarted, eventbus.SeverityInfo, ""), // evicts fin-2
		ev("run-old", eventbus.StepStarted, eventbus.SeverityInfo, ""),
		ev("new-3", eventbus.StepStarted, eventbus.SeverityInfo, ""), // evicts new-1: oldest last event
	)
	waitRecorded(t, d, 7)
	var got workflowList
	getJSON(t, d, "/api/workflows", &got)
	var ids []string
	for _, w := range got.Workflows {
		ids = append(ids, w.ADWID)
	}
	assert.ElementsMatch(t, []string{"run-old", "new-2", "new-3"}, ids)
	assert.Equal(t, uint64(3), got.Evicted)
	assert.Equal(t, 3, got.Max)
	assert.Equal(t, uint64(3), d.Stats().EvictedWorkflows)
}

// TestMetrics checks GET /api/metrics: the bus's Metrics and
// Subscriptions, and the dashboard's own Stats.
func TestMetrics(t *testing.T) {
	bus := newBus(t)
	d := newDashboard(t, bus)
	_, err := bus.Subscribe(func(eventbus.Event) error { return nil }, eventbus.WithName("archive"))
	require.NoError(t, err)
	publish(t, bus, ev("a", eventbus.StepStarted, eventbus.SeverityInfo, ""), ev("a", eventbus.StepCompleted, eventbus.SeverityInfo, ""))
	waitRecorded(t, d, 2)
	var got struct {
		Bus struct {
			Published, Delivered uint64
			Subscribers          int
		} `json:"bus"`
		Subscriptions []struct {
			ID, Name  string
			Delivered uint64
		} `json:"subscriptions"`
		Dashboard dashboard.Stats `json:"dashboard"`
	}
	getJSON(t, d, "/api/metrics", &got)
	assert.Equal(t, uint64(2), got.Bus.Published)
	assert.Equal(t, 2, got.Bus.Subscribers)
	require.Len(t, got.Subscriptions, 2)
	assert.Equal(t, "dashboard", got.Subscriptions[0].Name)
	assert.Equal(t, "archive", got.Subscriptions[1].Name)
	assert.Equal(t, uint64(2), got.Subscriptions[1].Delivered)
	assert.Equal(t, uint64(2), got.Dashboard.Events)
}

// TestPageIsSafe checks the page's sources for what the CSP and the rule
// "event data is text" forbid: innerHTML and friends, inline scripts,
// inline styles and inline event handlers.
func TestPageIsSafe(t *testing.T) {
	static := os.DirFS("static")
	forbidden := map[string]*regexp.Regexp{
		"innerHTML and friends": regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`),
		"inline script":         regexp.MustCompile(`<script(?:\s+[^>]*)?>\s*[^<\s]`),
		"inline style":          regexp.MustCompile(`<style|\sstyle=`),
		"inline handler":        regexp.MustCompile(`\son[a-z]+=`),
	}
	files := 0
	require.NoError(t, fs.WalkDir(static, ".", func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		files++
		b, err := fs.ReadFile(static, path)
		require.NoError(t, err)
		for what, re := range forbidden {
			assert.Nil(t, re.FindIndex(b), "%s in %s", what, path)
		}
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(b, -1) {
			assert.Contains(t, string(tag), " src=", "a script without src in %s", path)
		}
		return nil
	}))
	assert.Equal(t, 4, files)
}
