package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
)

// BenchmarkClients100 serves one dashboard to 100 SSE clients while events
// are published at 10,000 a second, one event per operation, and checks
// that every client receives every event, in order and without a gap. The
// clients run in a child process (this test binary, as
// TestHelperSSEClients), so that the CPU the server's process uses, bus
// and publisher included, is measured apart from theirs. It reports the
// publish-to-client latency (p50, p99, max over every client's sample of
// one event in ten) and the CPU of both processes, in percent of one core over the run. Run it with
// a fixed count, for example -benchtime=20000x (two seconds).
//
// Each client may fall 10,000 events (one second) behind rather than the
// default 1,024 (100 ms): on a shared 2-core VM, a stream's goroutine
// sometimes waits longer than 100 ms for a CPU, and the client would get a
// gap instead of every event.
func BenchmarkClients100(b *testing.B) {
	const clients, rate = 100, 10000
	bus := eventbus.New(eventbus.WithLogger(infoLogger))
	defer bus.Close()
	d, err := dashboard.New(bus, dashboard.WithClientBuffer(rate))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(d)
	defer ts.Close()
	defer d.Close()

	child := startClients(b, ts.URL+"/events", clients, b.N)
	before := cpuTime(syscall.RUSAGE_SELF)
	b.ResetTimer()
	start := time.Now()
	publishPaced(b, bus, b.N, rate)
	res := child.result(b)
	wall := time.Since(start)
	b.StopTimer()
	server := cpuTime(syscall.RUSAGE_SELF) - before

	if res.Delivered != clients*b.N || res.Problem != "" {
		b.Fatalf("clients got %d deliveries of %d×%d: %s", res.Delivered, clients, b.N, res.Problem)
	}
	b.ReportMetric(float64(res.P50)/1e3, "p50-µs")
	b.ReportMetric(float64(res.P99)/1e3, "p99-µs")
	b.ReportMetric(float64(res.Max)/1e3, "max-µs")
	b.ReportMetric(100*server.Seconds()/wall.Seconds(), "server-cpu-%")
	b.ReportMetric(100*time.Duration(res.CPU).Seconds()/wall.Seconds(), "clients-cpu-%")
	if st := d.Stats(); st.Gaps > 0 || st.IntakeDropped > 0 {
		b.Fatalf("the server dropped events: %+v", st)
	}
}

// publishPaced publishes n events at rate per second, each stamped with
// the time it was published; it sleeps only when it is a millisecond or
// more ahead of the schedule.
func publishPaced(b *testing.B, bus *eventbus.Bus, n, rate int) {
	ctx := context.Background()
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if ahead := time.Until(start.Add(time.Duration(i) * interval)); ahead >= time.Millisecond {
			time.Sleep(ahead)
		}
		e := benchEvent
		e.Timestamp = time.Now()
		if err := bus.Publish(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime returns the user plus system CPU time of who.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clientResult is what the client process reports: deliveries in all,
// latency percentiles and the CPU it used once its clients were connected,
// in nanoseconds, and what went wrong, if anything.
type clientResult struct {
	Delivered     int
	P50, P99, Max int64
	CPU           int64
	Problem       string
}

// A clientProcess is the child that runs the clients.
type clientProcess struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

// startClients starts the child with its clients and returns once every
// client's stream is open.
func startClients(b *testing.B, url string, clients, events int) *clientProcess {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSSEClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DASHBOARD_SSE_CLIENTS="+strconv.Itoa(clients),
		"DASHBOARD_SSE_URL="+url, "DASHBOARD_SSE_EVENTS="+strconv.Itoa(events))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &clientProcess{cmd: cmd, out: bufio.NewScanner(stdout)}
	for p.out.Scan() {
		if p.out.Text() == "ready" {
			return p
		}
	}
	_ = cmd.Wait()
	b.Fatal("the client process ended before its clients were connected")
	return nil
}

// result waits for the child's report and for the child to exit.
func (p *clientProcess) result(b *testing.B) clientResult {
	var res clientResult
	for p.out.Scan() {
		if j, ok := strings.CutPrefix(p.out.Text(), "result "); ok {
			if err := json.Unmarshal([]byte(j), &res); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := p.cmd.Wait(); err != nil {
		b.Fatalf("client process: %v", err)
	}
	return res
}

// latencySample is how often a client times an event: one in ten, each
// client a different tenth.
const latencySample = 10

// TestHelperSSEClients is BenchmarkClients100's child process; it skips
// unless run as one. It opens DASHBOARD_SSE_CLIENTS streams, prints
// "ready", reads DASHBOARD_SSE_EVENTS events on each, and prints a result
// line.
func TestHelperSSEClients(t *testing.T) {
	url := os.Getenv("DASHBOARD_SSE_URL")
	if url == "" {
		t.Skip("run by BenchmarkClients100 as its client process")
	}
	clients, _ := strconv.Atoi(os.Getenv("DASHBOARD_SSE_CLIENTS"))
	events, _ := strconv.Atoi(os.Getenv("DASHBOARD_SSE_EVENTS"))
	var opened, done sync.WaitGroup
	results := make([]sseClient, clients)
	for i := range results {
		c := &results[i]
		c.sample, c.offset = latencySample, uint64(i%latencySample)
		opened.Add(1)
		done.Go(func() { c.run(url, events, opened.Done) })
	}
	opened.Wait()
	before := cpuTime(syscall.RUSAGE_SELF)
	fmt.Println("ready")
	done.Wait()
	res := summarise(results)
	res.CPU = int64(cpuTime(syscall.RUSAGE_SELF) - before)
	line, _ := json.Marshal(res)
	fmt.Println("result " + string(line))
}

// An sseClient reads one stream, checks that its ids run 1, 2, 3, ...
// without a gap, and keeps the latency of every sample-th event, from the
// event's timestamp to its arrival; the offset spreads the samples of
// different clients over different events.
type sseClient struct {
	sample, offset uint64
	latencies      []int64
	delivered      int
	problem        string
}

func (c *sseClient) run(url string, events int, opened func()) {
	c.latencies = make([]int64, 0, events/int(c.sample)+1)
	res, err := http.Get(url)
	if err != nil {
		c.problem = err.Error()
		opened()
		return
	}
	defer res.Body.Close()
	r := bufio.NewReaderSize(res.Body, 64<<10)
	_, err = r.ReadSlice('\n') // the retry field: the stream is registered
	opened()
	var id uint64
	for c.delivered < events && err == nil {
		var line []byte
		if line, err = r.ReadSlice('\n'); err == nil {
			c.problem = c.line(line, &id)
		}
		if c.problem != "" {
			return
		}
	}
	if err != nil {
		c.problem = err.Error()
	}
}

var (
	idPrefix    = []byte("id: ")
	gapPrefix   = []byte("event: gap")
	dataPrefix  = []byte("data: ")
	stampPrefix = []byte(`"timestamp":"`)
)

// line handles one line of the stream. It reads the clock and parses the
// timestamp only for sampled events, so that the clients' own work stays
// small beside the server's.
func (c *sseClient) line(line []byte, id *uint64) string {
	switch {
	case bytes.HasPrefix(line, idPrefix):
		got, err := strconv.ParseUint(string(bytes.TrimSpace(line[len(idPrefix):])), 10, 64)
		if err != nil || got != *id+1 {
			return fmt.Sprintf("got id %q after %d", line, *id)
		}
		*id = got
	case bytes.HasPrefix(line, gapPrefix):
		return "gap"
	case bytes.HasPrefix(line, dataPrefix):
		c.delivered++
		if *id%c.sample != c.offset {
			return ""
		}
		arrived := time.Now()
		_, rest, _ := bytes.Cut(line, stampPrefix)
		stamp, _, _ := bytes.Cut(rest, []byte(`"`))
		ts, err := time.Parse(time.RFC3339Nano, string(stamp))
		if err != nil {
			return "bad timestamp: " + err.Error()
		}
		c.latencies = append(c.latencies, arrived.Sub(ts).Nanoseconds())
	}
	return ""
}

func summarise(clients []sseClient) clientResult {
	var all []int64
	var res clientResult
	for _, c := range clients {
		all = append(all, c.latencies...)
		res.Delivered += c.delivered
		if c.problem != "" && res.Problem == "" {
			res.Problem = c.problem
		}
	}
	if len(all) == 0 {
		return res
	}
	slices.Sort(all)
	res.P50, res.P99, res.Max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	return res
}
