package dashboard_test

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/adws/eventbus"
	"github.com/adws/eventbus/dashboard"
)

// A dashboard for a bus, served over HTTP, and a client of its event
// stream. In a service, give the Server to http.ListenAndServe or mount it
// under a path with http.StripPrefix; the page uses relative URLs.
func Example() {
	bus := eventbus.New()
	defer bus.Close()
	dash, err := dashboard.New(bus)
	if err != nil {
		log.Fatal(err)
	}
	defer dash.Close() // before the bus's Close and the HTTP server's Shutdown
	srv := httptest.NewServer(dash)
	defer srv.Close()

	ctx := context.Background()
	_ = bus.Publish(ctx, eventbus.Event{ADWID: "adw-7", Type: eventbus.WorkflowStarted, Message: "loading orders"})
	_ = bus.Publish(ctx, eventbus.Event{ADWID: "adw-7", Type: eventbus.StepFailed,
		Severity: eventbus.SeverityError, Message: "warehouse unreachable"})
	_ = bus.Publish(ctx, eventbus.Event{ADWID: "adw-7", Type: eventbus.WorkflowFailed,
		Severity: eventbus.SeverityCritical, Message: "gave up"})

	// Errors of workflow adw-7, from the first event the server still holds
	// (last_event_id=0), then live.
	res, err := http.Get(srv.URL + "/events?adw_id=adw-7&min_severity=ERROR&last_event_id=0")
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	for seen := 0; seen < 2 && lines.Scan(); {
		line := lines.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var e eventbus.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				log.Fatal(err)
			}
			fmt.Println("data:", e.ADWID, e.Severity, e.Message)
			seen++
			continue
		}
		fmt.Println(line)
	}
	// Output:
	// retry: 2000
	//
	// id: 2
	// event: step_failed
	// data: adw-7 ERROR warehouse unreachable
	//
	// id: 3
	// event: workflow_failed
	// data: adw-7 CRITICAL gave up
}

// requireBearer lets a request through only with the header
// "Authorization: Bearer <token>". Browsers' EventSource cannot set
// headers, so a page in a browser needs a cookie or a proxy that adds the
// header; scripts and other services can send it directly.
func requireBearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dashboard"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// The Server is an http.Handler, so authentication goes in front of it:
// here a bearer-token middleware.
func Example_bearerToken() {
	bus := eventbus.New()
	defer bus.Close()
	dash, err := dashboard.New(bus)
	if err != nil {
		log.Fatal(err)
	}
	defer dash.Close()
	srv := httptest.NewServer(requireBearer("s3cret", dash))
	defer srv.Close()

	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Printf("%q: %d\n", auth, res.StatusCode)
	}
	// Output:
	// "": 401
	// "Bearer wrong": 401
	// "Bearer s3cret": 200
}
