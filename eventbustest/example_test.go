package eventbustest_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/eventbustest"
)

// exampleT stands in for the *testing.T a real test has.
type exampleT struct {
	cleanups []func()
	logs     []string
}

func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) {
	fmt.Printf("test failed: "+format+"\n", args...)
}
func (t *exampleT) Helper()         {}
func (t *exampleT) Log(args ...any) { t.logs = append(t.logs, fmt.Sprint(args...)) }
func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func ExampleNew() {
	t := &exampleT{} // in a test: the test's *testing.T
	defer t.finish()

	bus := eventbustest.New(t, eventbus.WithMaxWorkers(0)) // closed when the test ends
	_, _ = bus.Subscribe(func(e eventbus.Event) error {
		fmt.Println("got", e.Type)
		return nil
	})
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.WorkflowStarted})
	// Output:
	// got workflow_started
}

func ExampleRecorder() {
	t := &exampleT{}
	defer t.finish()

	bus := eventbustest.New(t)
	failures := eventbustest.NewRecorder(t, bus, eventbus.Filter{
		Severities: []eventbus.Severity{eventbus.SeverityError},
	})

	// The code under test publishes from its own goroutines.
	go func() {
		ctx := context.Background()
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepStarted, Severity: eventbus.SeverityInfo})
		_ = bus.Publish(ctx, eventbus.Event{Type: eventbus.StepFailed, Severity: eventbus.SeverityError, Message: "disk full"})
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := failures.WaitFor(ctx, 1); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(failures.Types(), failures.Events()[0].Message)
	// Output:
	// [step_failed] disk full
}

// A test that needs every handler run in its log asks for it.
func ExampleLogDebug() {
	t := &exampleT{}
	defer t.finish()

	bus := eventbustest.New(t, eventbustest.LogDebug(), eventbus.WithMaxWorkers(0))
	_, _ = bus.Subscribe(func(eventbus.Event) error { return nil })
	_ = bus.Publish(context.Background(), eventbus.Event{Type: eventbus.StepStarted})
	fmt.Println(len(t.logs), "line:", strings.Contains(t.logs[0], `msg="handler finished"`))
	// Output:
	// 1 line: true
}
