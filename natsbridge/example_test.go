package natsbridge_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// runServer starts an embedded NATS server on a random local port, with
// JetStream storage in dir when dir is not empty.
func runServer(dir string) *server.Server {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: dir != "", StoreDir: dir,
	})
	if err != nil {
		log.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(waitFor) {
		log.Fatal("server not ready")
	}
	return s
}

// Two buses, as in two processes, bridged through NATS: bus A exports its
// failures, and bus B imports the events of workflow adw-7, selected on the
// server by subject.
func Example() {
	srv := runServer("")
	defer srv.WaitForShutdown()
	defer srv.Shutdown()

	ncA, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer ncA.Close()
	ncB, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer ncB.Close()

	busA, busB := eventbus.New(), eventbus.New()
	defer busA.Close()
	defer busB.Close()
	received := make(chan eventbus.Event, 1)
	_, _ = busB.Subscribe(func(e eventbus.Event) error {
		received <- e
		return nil
	})

	ctx := context.Background()
	exporter, err := natsbridge.New(ctx, busA, ncA, natsbridge.WithExport(eventbus.Filter{
		Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical},
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer exporter.Close()
	importer, err := natsbridge.New(ctx, busB, ncB, natsbridge.WithImport("adws.events.*.adw-7"))
	if err != nil {
		log.Fatal(err)
	}
	defer importer.Close()

	_ = busA.Publish(ctx, eventbus.Event{ADWID: "adw-7", Type: eventbus.StepStarted, Message: "not exported"})
	_ = busA.Publish(ctx, eventbus.Event{ADWID: "adw-7", Type: eventbus.StepFailed,
		Severity: eventbus.SeverityError, Message: "warehouse unreachable"})
	e := <-received
	fmt.Println(e.ADWID, e.Type, e.Severity, e.Message)

	if err := exporter.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	if err := importer.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("exported %d, imported %d\n", exporter.Stats().Exported, importer.Stats().Imported)
	// Output:
	// adw-7 step_failed ERROR warehouse unreachable
	// exported 1, imported 1
}

// With JetStream, the exporter waits until the stream has stored each event,
// and the importer acknowledges a message only after the bus's handlers
// succeeded. Importers that share a queue group share a durable consumer,
// which keeps their place in the stream while none of them runs.
func ExampleWithJetStream() {
	dir, err := os.MkdirTemp("", "natsbridge-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv := runServer(dir)
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	ctx := context.Background()
	busA, busB := eventbus.New(), eventbus.New()
	defer busA.Close()
	defer busB.Close()
	exporter, err := natsbridge.New(ctx, busA, nc, natsbridge.WithJetStream("ADWS"), natsbridge.WithExport())
	if err != nil {
		log.Fatal(err)
	}
	defer exporter.Close()

	// Published before any importer exists: the stream keeps it.
	err = busA.PublishAndWait(ctx, eventbus.Event{ADWID: "adw-1", Type: eventbus.WorkflowCompleted, Severity: eventbus.SeverityInfo})
	fmt.Println("stored:", err == nil)

	received := make(chan eventbus.Event, 1)
	_, _ = busB.Subscribe(func(e eventbus.Event) error {
		received <- e
		return nil
	})
	importer, err := natsbridge.New(ctx, busB, nc, natsbridge.WithJetStream("ADWS"),
		natsbridge.WithImport(""), natsbridge.WithQueueGroup("archivers"))
	if err != nil {
		log.Fatal(err)
	}
	defer importer.Close()
	e := <-received
	fmt.Println("imported:", e.ADWID, e.Type)
	// Output:
	// stored: true
	// imported: adw-1 workflow_completed
}

func ExampleSubject() {
	prefix := natsbridge.DefaultSubjectPrefix
	fmt.Println(natsbridge.Subject(prefix, eventbus.Event{Type: eventbus.StepFailed, ADWID: "adw-7"}))
	fmt.Println(natsbridge.Subject(prefix, eventbus.Event{Type: eventbus.StepFailed}))
	fmt.Println(natsbridge.Subject(prefix, eventbus.Event{Type: "billing.invoice", ADWID: "run 3"}))

	typ, adw, err := natsbridge.ParseSubject(prefix, "adws.events.billing%2Einvoice.run%203")
	fmt.Printf("%q %q %v\n", typ, adw, err)
	// Output:
	// adws.events.step_failed.adw-7
	// adws.events.step_failed._
	// adws.events.billing%2Einvoice.run%203
	// "billing.invoice" "run 3" <nil>
}

func ExampleDecode() {
	e, err := natsbridge.Decode([]byte(`{"id":"0b7e6f0e-3c1d-4d2a-9a43-5b0f1c2d3e4f","event_type":"step_failed",` +
		`"severity":"ERROR","timestamp":"2025-03-04T05:06:07Z","data":{"attempt":3}}`))
	fmt.Println(e.Type, e.Severity, e.Timestamp.Year(), e.Data["attempt"], err)

	_, err = natsbridge.Decode([]byte(`{"event_type":"step_failed"}`))
	fmt.Println(err)
	// Output:
	// step_failed ERROR 2025 3 <nil>
	// natsbridge: malformed message: missing id
}
