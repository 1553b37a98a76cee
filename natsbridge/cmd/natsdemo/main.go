// Command natsdemo shows events crossing between two event buses through
// NATS. It starts an embedded NATS server on 127.0.0.1 (a random port,
// JetStream storage in a temporary directory), two buses, "orders" and
// "billing", as two services would have, and bridges both both ways. Each
// service publishes a few events; each prints the events that arrive from
// the other, and the bridges' counters show that nothing looped back. It
// exits 0 once every event has crossed, within a few seconds, and 1 if
// something went wrong.
//
//	go run ./cmd/natsdemo              # core NATS
//	go run ./cmd/natsdemo -jetstream   # JetStream, at-least-once
//	go run ./cmd/natsdemo -url nats://127.0.0.1:4222   # an existing server
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/natsbridge"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "natsdemo:", err)
		os.Exit(1)
	}
}

// A service is one bus with its bridge, as one process would run it.
type service struct {
	name   string
	bus    *eventbus.Bus
	nc     *nats.Conn
	bridge *natsbridge.Bridge
}

func run(out io.Writer, args []string) error {
	flags := flag.NewFlagSet("natsdemo", flag.ContinueOnError)
	useJS := flags.Bool("jetstream", false, "bridge through JetStream (at-least-once) instead of core NATS")
	url := flags.String("url", "", "use the NATS server at this URL instead of an embedded one")
	timeout := flags.Duration("timeout", 10*time.Second, "give up if the events have not crossed by then")
	if err := flags.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if *url == "" {
		dir, err := os.MkdirTemp("", "natsdemo")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: dir,
		})
		if err != nil {
			return err
		}
		srv.Start()
		defer srv.WaitForShutdown()
		defer srv.Shutdown()
		if !srv.ReadyForConnections(*timeout) {
			return fmt.Errorf("embedded server not ready")
		}
		*url = srv.ClientURL()
		fmt.Fprintf(out, "embedded NATS server at %s, JetStream storage in %s\n", *url, dir)
	}
	mode := "core NATS"
	if *useJS {
		mode = "JetStream stream ADWS_DEMO"
	}
	fmt.Fprintf(out, "bridging two buses both ways through %s\n\n", mode)

	// Each service prints what arrives from the other; crossed counts them.
	var printMu sync.Mutex
	crossed := make(chan struct{}, 64)
	services := make([]*service, 0, 2)
	for _, name := range []string{"orders", "billing"} {
		nc, err := nats.Connect(*url, nats.Name("natsdemo-"+name))
		if err != nil {
			return err
		}
		defer nc.Close()
		bus := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)))
		defer bus.Close()
		_, err = bus.SubscribeAsync(func(ctx context.Context, e eventbus.Event) error {
			if natsbridge.Imported(ctx) {
				printMu.Lock()
				fmt.Fprintf(out, "%-8s <- %-18s %-8s %-7s %s\n", name, e.Type, e.ADWID, e.Severity, e.Message)
				printMu.Unlock()
				crossed <- struct{}{}
			}
			return nil
		}, eventbus.Ordered()) // each workflow's events in the order they were published
		if err != nil {
			return err
		}
		opts := []natsbridge.Option{
			natsbridge.WithExport(), natsbridge.WithImport(""), natsbridge.WithOrigin("natsdemo-" + name),
		}
		if *useJS {
			// Each service has its own durable consumer: both see every event.
			opts = append(opts, natsbridge.WithJetStream("ADWS_DEMO"), natsbridge.WithQueueGroup("natsdemo-"+name))
		}
		br, err := natsbridge.New(ctx, bus, nc, opts...)
		if err != nil {
			return err
		}
		defer br.Close()
		services = append(services, &service{name: name, bus: bus, nc: nc, bridge: br})
	}

	orders, billing := services[0], services[1]
	published := []struct {
		from *service
		e    eventbus.Event
	}{
		{orders, eventbus.Event{ADWID: "adw-1", Type: eventbus.WorkflowStarted, Source: "orders", Severity: eventbus.SeverityInfo, Message: "nightly order import"}},
		{orders, eventbus.Event{ADWID: "adw-1", Type: eventbus.StepCompleted, Source: "orders", Severity: eventbus.SeverityInfo, Message: "extracted 1200 orders", Data: map[string]any{"rows": 1200}}},
		{billing, eventbus.Event{ADWID: "adw-2", Type: eventbus.ToolCalled, Source: "billing", Severity: eventbus.SeverityDebug, Message: "invoice.render"}},
		{orders, eventbus.Event{ADWID: "adw-1", Type: eventbus.StepFailed, Source: "orders", Severity: eventbus.SeverityError, Message: "warehouse unreachable"}},
		{billing, eventbus.Event{Type: eventbus.AgentMessage, Source: "billing", Severity: eventbus.SeverityWarning, Message: "no workflow: a free-standing warning"}},
	}
	for _, p := range published {
		if err := p.from.bus.Publish(ctx, p.e); err != nil {
			return err
		}
	}
	for range published {
		select {
		case <-crossed:
		case <-ctx.Done():
			return fmt.Errorf("not every event crossed: %w", ctx.Err())
		}
	}

	fmt.Fprintln(out)
	for _, s := range services {
		if err := s.bridge.Drain(ctx); err != nil {
			return err
		}
	}
	for _, s := range services {
		st := s.bridge.Stats()
		fmt.Fprintf(out, "%-8s exported %d, imported %d, own messages dropped %d, imported events not re-exported %d, errors %d\n",
			s.name, st.Exported, st.Imported, st.Looped, st.NotReexported, st.ExportErrors+st.ImportErrors+st.Terminated+st.Naked)
		if st.ExportErrors+st.ImportErrors+st.Terminated+st.Naked+st.Dropped != 0 {
			return fmt.Errorf("%s: unexpected errors: %+v", s.name, st)
		}
	}
	if *useJS {
		// The stream and its durable consumers are the demo's own.
		js, err := jetstream.New(orders.nc)
		if err != nil {
			return err
		}
		if err := js.DeleteStream(ctx, "ADWS_DEMO"); err != nil {
			return err
		}
	}
	return nil
}
