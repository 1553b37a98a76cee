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
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/adws/eventbus/dashboard/internal/simulate"
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
	if err := simulate.Subscribe(bus); err != nil {
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

	simulate.Run(ctx, bus, simulate.Config{Rate: *rate, Pause: 800 * time.Millisecond, Seed: uint64(time.Now().UnixNano())})
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
