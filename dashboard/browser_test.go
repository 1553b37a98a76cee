package dashboard_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
	"github.com/adws/eventbus/dashboard/internal/simulate"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath returns Debian's chromium, or skips the test where it is
// missing. DASHBOARD_CHROMIUM names another binary.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("DASHBOARD_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("browser tests skipped: chromium not found (/usr/bin/chromium or on PATH); " +
		"install it with `apt-get install chromium`, or set DASHBOARD_CHROMIUM")
	return ""
}

// newBrowser starts one headless chromium for the subtests of t, with a
// fresh profile and no network but loopback, and stops it at cleanup.
func newBrowser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(browser), "start chromium")
	return browser
}

// A tab is one page of the dashboard in the browser, with what the page
// wrote to its console and any dialog it opened.
type tab struct {
	ctx context.Context
	mu  sync.Mutex
	bad []string // console errors, exceptions, error log entries, dialogs
}

// openTab opens ts's page in a new tab of browser and waits until its
// stream is live.
func openTab(t *testing.T, browser context.Context, ts *httptest.Server) *tab {
	tb := &tab{}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(tb.listen))
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)
	tb.ctx = ctx
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/")))
	tb.waitFor(t, `document.querySelector('#conn').dataset.state === 'live'`)
	return tb
}

func (tb *tab) listen(ev any) {
	var bad string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			bad = "console.error"
		}
	case *runtime.EventExceptionThrown:
		bad = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			bad += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			bad = "log: " + ev.Entry.Text + " " + ev.Entry.URL
		}
	case *page.EventJavascriptDialogOpening:
		bad = "dialog: " + ev.Message
	}
	if bad != "" {
		tb.mu.Lock()
		tb.bad = append(tb.bad, bad)
		tb.mu.Unlock()
	}
}

// clean fails the test if the page wrote an error or opened a dialog,
// other than one containing an expected text.
func (tb *tab) clean(t *testing.T, expected ...string) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var bad []string
	for _, b := range tb.bad {
		if !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(b, e) }) {
			bad = append(bad, b)
		}
	}
	assert.Empty(t, bad, "console errors, exceptions or dialogs")
}

// waitFor waits, within the tab's deadline, until the page's JavaScript
// expression is true.
func (tb *tab) waitFor(t *testing.T, expr string) {
	t.Helper()
	_, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(3*time.Minute)))
	require.NoError(t, err, "waiting for %s", expr)
}

// eval returns the value of a JavaScript expression in the page, awaited
// if it is a promise.
func eval[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, expr)
	return v
}

// responsive is the bound, in milliseconds, on the page's own work for a
// click or a redraw with 1,000 workflows. Measured: a few milliseconds for a
// click, tens for a redraw; the bound leaves room for a loaded machine
// preempting the browser, and still fails work that grows with the square
// of the rows.
const responsive = 500.0

// statusesJS maps each workflow row's ADWID to the status it shows.
const statusesJS = `Object.fromEntries([...document.querySelectorAll('#workflows li')]
	.map(li => [li.dataset.adwId, li.querySelector('.status').textContent]))`

// rowJS is the row of the workflow whose ADWID is %q.
const rowJS = `document.querySelector('#workflows li[data-adw-id=%q]')`

// newPage returns a bus, its dashboard and an httptest server for it; the
// dashboard closes before the server, at cleanup.
func newPage(t *testing.T, opts ...dashboard.Option) (*eventbus.Bus, *dashboard.Server, *httptest.Server) {
	bus := newBus(t)
	d, err := dashboard.New(bus, append([]dashboard.Option{dashboard.WithRetry(200 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	ts := httptest.NewServer(d)
	t.Cleanup(func() {
		require.NoError(t, d.Close())
		ts.Close()
	})
	return bus, d, ts
}

// TestBrowser drives the page in headless Chromium.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	browser := newBrowser(t)
	t.Run("loads without console errors", func(t *testing.T) { testLoads(t, browser) })
	t.Run("three workflows with their statuses", func(t *testing.T) { testThreeWorkflows(t, browser) })
	t.Run("event data is text", func(t *testing.T) { testDataIsText(t, browser) })
	t.Run("reconnects and shows what it missed", func(t *testing.T) { testReconnects(t, browser) })
	t.Run("a gap reloads the workflow list", func(t *testing.T) { testGapReloads(t, browser) })
	t.Run("responsive with 1000 workflows", func(t *testing.T) { testThousandWorkflows(t, browser) })
	t.Run("screenshot", func(t *testing.T) { testScreenshot(t, browser) })
}

func testLoads(t *testing.T, browser context.Context) {
	_, _, ts := newPage(t)
	tb := openTab(t, browser, ts)
	tb.waitFor(t, `document.querySelectorAll('#subs tbody tr').length === 1`) // the metrics came in
	assert.Equal(t, "Live", eval[string](t, tb, `document.querySelector('#conn').textContent`))
	tb.clean(t)
}

func testThreeWorkflows(t *testing.T, browser context.Context) {
	bus, _, ts := newPage(t)
	tb := openTab(t, browser, ts)
	publish(t, bus,
		ev("adw-ok", eventbus.WorkflowStarted, eventbus.SeverityInfo, "start"),
		ev("adw-bad", eventbus.WorkflowStarted, eventbus.SeverityInfo, "start"),
		ev("adw-run", eventbus.WorkflowStarted, eventbus.SeverityInfo, "start"),
		ev("adw-ok", eventbus.StepCompleted, eventbus.SeverityInfo, "step done"),
		ev("adw-bad", eventbus.StepFailed, eventbus.SeverityError, "table missing"),
		ev("adw-run", eventbus.StepStarted, eventbus.SeverityInfo, "step 2"),
		ev("adw-ok", eventbus.WorkflowCompleted, eventbus.SeverityInfo, "done"),
		ev("adw-bad", eventbus.WorkflowFailed, eventbus.SeverityCritical, "gave up"),
	)
	tb.waitFor(t, `document.querySelectorAll('#workflows li[data-status="failed"]').length === 1`)
	assert.Equal(t, map[string]string{"adw-ok": "completed", "adw-bad": "failed", "adw-run": "running"},
		eval[map[string]string](t, tb, statusesJS))
	assert.Equal(t, "crit 1", eval[string](t, tb, fmt.Sprintf(rowJS, "adw-bad")+`.querySelector('.sev-CRITICAL').textContent`))
	assert.Equal(t, 2, eval[int](t, tb, `document.querySelectorAll('#errors li').length`), "the error feed")
	tb.clean(t)
}

func testDataIsText(t *testing.T, browser context.Context) {
	bus, _, ts := newPage(t)
	tb := openTab(t, browser, ts)
	const evil = `<img src=x onerror=alert(1)>`
	publish(t, bus, ev("adw-xss", eventbus.StepFailed, eventbus.SeverityError, evil),
		ev(evil, eventbus.AgentMessage, eventbus.SeverityInfo, `<b>bold</b>`))
	tb.waitFor(t, `document.querySelectorAll('#workflows li').length === 2`)
	_, err := chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(rowJS, "adw-xss")+`.click()`))
	require.NoError(t, err)
	assert.Equal(t, evil, eval[string](t, tb, fmt.Sprintf(rowJS, "adw-xss")+`.querySelector('.message').textContent`))
	assert.Equal(t, evil, eval[string](t, tb, `document.querySelector('#timeline .message').textContent`))
	assert.Equal(t, evil, eval[string](t, tb, fmt.Sprintf(rowJS, evil)+`.querySelector('.id').textContent`))
	assert.Equal(t, 0, eval[int](t, tb, `document.querySelectorAll('main img, main b').length`), "no element made from event data")
	tb.clean(t) // no dialog opened, no CSP violation reported
}

func testReconnects(t *testing.T, browser context.Context) {
	bus, d, ts := newPage(t)
	tb := openTab(t, browser, ts)
	publish(t, bus, ev("adw-before", eventbus.WorkflowStarted, eventbus.SeverityInfo, "before"))
	tb.waitFor(t, `document.querySelectorAll('#workflows li').length === 1`)
	before := d.Stats()

	ts.CloseClientConnections() // cut the stream on the server side
	publish(t, bus,
		ev("adw-during", eventbus.WorkflowStarted, eventbus.SeverityInfo, "published while cut"),
		ev("adw-during", eventbus.WorkflowCompleted, eventbus.SeverityInfo, "finished while cut"),
		ev("adw-before", eventbus.WorkflowFailed, eventbus.SeverityError, "failed while cut"))
	tb.waitFor(t, fmt.Sprintf(rowJS, "adw-during")+`?.dataset.status === 'completed'`)
	tb.waitFor(t, fmt.Sprintf(rowJS, "adw-before")+`.dataset.status === 'failed'`)
	tb.waitFor(t, `document.querySelector('#conn').dataset.state === 'live'`)
	after := d.Stats()
	assert.Greater(t, after.Connections, before.Connections, "the page opened a new stream")
	assert.Greater(t, after.Resumes, before.Resumes, "with Last-Event-ID")
	assert.Equal(t, before.Gaps, after.Gaps, "and missed nothing")
	// The browser logs the cut itself as a failed load of the stream.
	tb.clean(t, "net::ERR_INCOMPLETE_CHUNKED_ENCODING")
}

// publishWorkflows publishes n workflows of three events each; every
// seventh fails, the others complete.
func publishWorkflows(t *testing.T, bus *eventbus.Bus, n int) {
	for i := range n {
		id := fmt.Sprintf("adw-%04d", i)
		end := eventbus.WorkflowCompleted
		if i%7 == 0 {
			end = eventbus.WorkflowFailed
		}
		publish(t, bus, ev(id, eventbus.WorkflowStarted, eventbus.SeverityInfo, "start"),
			ev(id, eventbus.StepCompleted, eventbus.SeverityInfo, "step"),
			ev(id, end, eventbus.SeverityInfo, "end"))
	}
}

// listedJS is true once the list shows n workflows, none of them running.
func listedJS(n int) string {
	return fmt.Sprintf(`document.querySelectorAll('#workflows li').length === %d && `+
		`document.querySelectorAll('#workflows li[data-status="running"]').length === 0`, n)
}

// testGapReloads publishes a burst far beyond a small client buffer: the
// page gets a gap, reloads the workflow list, and shows every workflow with
// its final status.
func testGapReloads(t *testing.T, browser context.Context) {
	bus, d, ts := newPage(t, dashboard.WithClientBuffer(8))
	tb := openTab(t, browser, ts)
	publishWorkflows(t, bus, 200)
	tb.waitFor(t, listedJS(200))
	assert.Equal(t, 29, eval[int](t, tb, `document.querySelectorAll('#workflows li[data-status="failed"]').length`))
	assert.Positive(t, d.Stats().Gaps, "the page fell behind")
	tb.clean(t)
}

func testThousandWorkflows(t *testing.T, browser context.Context) {
	// A client buffer that holds the whole burst: this test is about the
	// page, not about gaps.
	bus, d, ts := newPage(t, dashboard.WithClientBuffer(4000))
	tb := openTab(t, browser, ts)
	const n = 1000
	start := time.Now()
	publishWorkflows(t, bus, n)
	tb.waitFor(t, listedJS(n))
	t.Logf("%d workflows (%d events) published and listed in %v", n, 3*n, time.Since(start).Round(time.Millisecond))
	require.Zero(t, d.Stats().Gaps, "the page kept up")

	click := eval[map[string]float64](t, tb, `(() => {
		const t0 = performance.now();
		`+fmt.Sprintf(rowJS, "adw-0500")+`.click();
		const rows = document.querySelectorAll('#timeline li').length;
		return {ms: performance.now() - t0, rows};
	})()`)
	t.Logf("click to timeline: %.1f ms", click["ms"])
	assert.Equal(t, 3.0, click["rows"], "the timeline of adw-0500")
	assert.Less(t, click["ms"], responsive, "a click opens a timeline promptly")
	// Redraw every row at once, as after a reload of the list: the page's
	// own work, timed in the page, so that a busy machine's scheduling
	// (which delays animation frames by seconds at a load of 20 on two
	// cores) does not decide the result.
	redraw := eval[float64](t, tb, `(() => {
		for (const wf of state.workflows.values()) state.dirty.add(wf);
		const t0 = performance.now();
		render();
		return performance.now() - t0;
	})()`)
	t.Logf("redrawing 1000 rows: %.1f ms", redraw)
	assert.Less(t, redraw, responsive, "the list redraws promptly")
	tb.clean(t)
}

// testScreenshot runs the demo's simulation (cmd/dashboard-demo's, faster)
// against a bus with the demo's handlers, waits until the page shows a mix
// of running, completed and failed workflows, opens a failed one's
// timeline, and saves the screenshot the README shows.
var updateScreenshot = flag.Bool("update-screenshot", false, "replace testdata/dashboard.png, the README's screenshot")

func testScreenshot(t *testing.T, browser context.Context) {
	bus := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)),
		eventbus.WithSlowHandlerThreshold(250*time.Millisecond))
	t.Cleanup(func() { require.NoError(t, bus.Close()) })
	require.NoError(t, simulate.Subscribe(bus))
	d, err := dashboard.New(bus)
	require.NoError(t, err)
	ts := httptest.NewServer(d)
	t.Cleanup(func() {
		require.NoError(t, d.Close())
		ts.Close()
	})
	ctx, stop := context.WithCancel(t.Context())
	var sim sync.WaitGroup
	sim.Go(func() { simulate.Run(ctx, bus, simulate.Config{Rate: 8, Pause: 150 * time.Millisecond, Seed: 15}) })
	defer func() { stop(); sim.Wait() }()

	tb := openTab(t, browser, ts)
	count := func(status string) string {
		return `document.querySelectorAll('#workflows li[data-status="` + status + `"]').length`
	}
	tb.waitFor(t, count("failed")+` >= 2 && `+count("completed")+` >= 4 && `+count("running")+` >= 3 && `+
		`parseInt(document.querySelector('#summary').textContent) >= 150`)
	_, err = chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](
		`document.querySelector('#workflows li[data-status="failed"]').click()`))
	require.NoError(t, err)
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.Greater(t, len(png), 10_000, "a screenshot of a page with content")
	require.Equal(t, "\x89PNG", string(png[:4]))
	// Every run saves its screenshot (git ignores it); -update-screenshot
	// also replaces the one the README shows.
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "dashboard-latest.png"), png, 0o644))
	if *updateScreenshot {
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "dashboard.png"), png, 0o644))
	}
	tb.clean(t)
}
