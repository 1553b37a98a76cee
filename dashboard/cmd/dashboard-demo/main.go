// Command dashboard-demo serves the eventbus dashboard for a bus on which
// simulated agentic data workflows run: workflows of a few steps, each step
// an agent that calls tools, some steps failing, an alerting handler that
// sometimes fails and an indexing handler that is sometimes slow.
//
//	go run ./cmd/dashboard-demo                  # http://127.0.0.1:8080/
//	go run ./cmd/dashboard-demo -addr :9090      # another address
//	go run ./cmd/dashboard-demo -duration 5s     # stop by itself (for CI)
//
// It prints the dashboard's URL and runs until interrupted or, with
// -duration, until that time has passed; then it stops the simulation,
// the dashboard, the HTTP server and the bus, in that order, and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard-demo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, args []string) error {
	flags := flag.NewFlagSet("dashboard-demo", flag.ContinueOnError)
	addr := flags.String("addr", "127.0.0.1:8080", "address to serve the dashboard on")
	duration := flags.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	rate := flags.Float64("rate", 2, "workflows started per second")
	if err := flags.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	bus := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)),
		eventbus.WithSlowHandlerThreshold(250*time.Millisecond))
	defer bus.Close()
	if err := subscribeHandlers(bus); err != nil {
		return err
	}
	dash, err := dashboard.New(bus)
	if err != nil {
		return err
	}
	defer dash.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: dash, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "dashboard: http://%s/\n", ln.Addr())

	simulate(ctx, bus, *rate)
	fmt.Fprintln(out, "stopping")
	// Close the dashboard first: it ends the event streams, which
	// http.Server.Shutdown would otherwise wait for.
	_ = dash.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return bus.Close()
}

// subscribeHandlers adds the services a workflow platform would have: an
// archive, an alerter that sometimes cannot reach its pager, and an
// indexer that is sometimes slow.
func subscribeHandlers(bus *eventbus.Bus) error {
	_, err := bus.SubscribeAsync(func(context.Context, eventbus.Event) error { return nil },
		eventbus.WithName("archive"))
	if err != nil {
		return err
	}
	_, err = bus.Subscribe(func(e eventbus.Event) error {
		if rand.IntN(5) == 0 {
			return errors.New("pager unreachable")
		}
		return nil
	}, eventbus.WithName("alerts"), eventbus.Filter{Severities: []eventbus.Severity{eventbus.SeverityError, eventbus.SeverityCritical}})
	if err != nil {
		return err
	}
	_, err = bus.Subscribe(func(e eventbus.Event) error {
		if rand.IntN(40) == 0 {
			time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		}
		return nil
	}, eventbus.WithName("search-indexer"), eventbus.Ordered(),
		eventbus.Filter{Types: []eventbus.EventType{eventbus.StepCompleted, eventbus.ToolReturned}})
	return err
}
