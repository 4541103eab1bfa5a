package dashboard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// The region the test's roomhook runs in, and the target label Prometheus puts on it: the
// dashboard's $region and the alerts' grouping read the label.
const testRegion = "eu-test"

// rateWindow stands in for Grafana's $__rate_interval: four scrapes of one second.
const rateWindow = "4s"

// renderRun is how long a run that draws docs/dashboard.png lasts.
const renderRun = 60 * time.Second

// TestDashboardAndAlertsAgainstPrometheus runs a real roomhook (the server package, as
// `roomhook serve` runs it, on an embedded JetStream server) delivering to a receiver that
// answers 200 and one that answers 500, scraped every second by a real Prometheus that
// evaluates the chart's alert rules (with short `for`). Then every dashboard query returns
// data, every alert expression's series exist, and the failing endpoint's alerts fire while
// the healthy one's do not.
//
// ROOMHOOK_RENDER_PANELS=docs/dashboard.png (a path from the repository root) also draws the
// key panels of this run into that PNG, for docs/dashboard.md.
func TestDashboardAndAlertsAgainstPrometheus(t *testing.T) {
	bin := lookPrometheus(t)
	renderPath := os.Getenv("ROOMHOOK_RENDER_PANELS") // read before serveConfig clears ROOMHOOK_*
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	var okCount, failCount atomic.Int64
	okRecv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		okCount.Add(1)
		// A little latency, so the end-to-end percentiles are not all in the first bucket.
		time.Sleep(time.Duration(5+okCount.Load()%20) * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(okRecv.Close)
	failRecv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		failCount.Add(1)
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	}))
	t.Cleanup(failRecv.Close)
	okURL, failURL := okRecv.URL+"/webhook", failRecv.URL+"/webhook"
	okID, failID := endpointID(t, okURL), endpointID(t, failURL)

	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	cfg := serveConfig(t, ns.ClientURL(), okURL, failURL)
	startRoomhook(t, cfg)

	rules := testRules(t, cfg.Partitions)
	prom := startPrometheus(t, bin, cfg.HTTPAddr, map[string]string{"region": testRegion}, rules)
	api := prom.api
	start := time.Now()

	// Traffic: four rooms' events at about 40 a second, and now and then an event that is not
	// protobuf. Bounded in count and time; it stops when the checks are done.
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	trafficDone := make(chan error, 1)
	go func() { trafficDone <- publishTraffic(trafficCtx, js, 4000) }()
	defer func() {
		stopTraffic()
		if err := <-trafficDone; err != nil {
			t.Errorf("traffic: %v", err)
		}
	}()

	// The failing endpoint's breaker alert and the dead-letter and invalid-event alerts fire.
	mustFire := []map[string]string{
		{"alertname": "RoomhookBreakerOpen", "endpoint": failID},
		{"alertname": "RoomhookDeadLettersRising", "reason": "exhausted"},
		{"alertname": "RoomhookInvalidEvents"},
	}
	waitFor(t, 45*time.Second, "alerts firing: "+fmt.Sprint(mustFire), func() (bool, error) {
		alerts, err := api.alerts(ctx)
		if err != nil {
			return false, err
		}
		for _, want := range mustFire {
			if !hasAlert(alerts, "firing", want) {
				return false, nil
			}
		}
		return true, nil
	})

	// The oldest-undelivered alert: the failing endpoint's backlog ages, and the alert fires.
	oldest := `max(roomhook_oldest_undelivered_seconds{endpoint="` + failID + `"}) > 0`
	waitFor(t, 20*time.Second, oldest, func() (bool, error) { return hasData(t, api, oldest), nil })
	want := map[string]string{"alertname": "RoomhookOldestUndeliveredTooOld", "endpoint": failID}
	waitFor(t, 20*time.Second, "alert firing: "+fmt.Sprint(want), func() (bool, error) {
		alerts, err := api.alerts(ctx)
		return err == nil && hasAlert(alerts, "firing", want), err
	})

	// Nothing alerts about the healthy endpoint or the healthy replica.
	alerts, err := api.alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, quiet := range []map[string]string{
		{"endpoint": okID},
		{"alertname": "RoomhookNoReadyReplica"},
		{"alertname": "RoomhookNATSDisconnected"},
	} {
		if hasAlert(alerts, "", quiet) {
			t.Errorf("alert matching %v is pending or firing: %v", quiet, alerts)
		}
	}
	if !hasData(t, api, `sum(roomhook_partitions_owned) > 0`) {
		t.Errorf("roomhook_partitions_owned is 0 with a replica delivering")
	}
	if hasAlert(alerts, "", map[string]string{"alertname": "RoomhookPartitionsUnowned"}) {
		t.Errorf("RoomhookPartitionsUnowned is pending or firing with every partition owned: %v", alerts)
	}

	// The picture for the docs wants more than the few seconds the checks need.
	if renderPath != "" {
		if wait := time.Until(start.Add(renderRun)); wait > 0 {
			t.Logf("ROOMHOOK_RENDER_PANELS: running traffic for %s before drawing", renderRun)
			time.Sleep(wait) // not a check: the picture's length
		}
	}

	// Every alert expression's series exist: the expression less its final comparison has
	// data, so the alert can tell healthy from unhealthy.
	for _, r := range rules.alerts() {
		if !hasData(t, api, r.signal()) {
			t.Errorf("%s: %s returns no data", r.Alert, r.signal())
		}
	}

	// Every dashboard query returns data over the run, as Grafana would ask for it.
	end := time.Now()
	results := map[string][]series{}
	for _, q := range Queries() {
		expr := grafanaExpr(q.Expr)
		got, err := api.queryRange(ctx, expr, start, end, time.Second)
		if err != nil {
			t.Errorf("query %s: %v", expr, err)
			continue
		}
		if !anyValue(got) {
			t.Errorf("dashboard query %s returns no data", expr)
		}
		results[q.Expr] = got
	}
	if okCount.Load() == 0 || failCount.Load() == 0 {
		t.Errorf("receivers saw %d (ok) and %d (failing) requests", okCount.Load(), failCount.Load())
	}
	if renderPath != "" && !t.Failed() {
		if err := renderPanels(filepath.Join("..", renderPath), results, map[string]string{okID: "ok receiver", failID: "failing receiver"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", renderPath)
	}
}

// grafanaExpr substitutes the dashboard's variables the way Grafana does for this run.
func grafanaExpr(expr string) string {
	return strings.NewReplacer("$region", testRegion, "$__rate_interval", rateWindow).Replace(expr)
}

// testRules is the chart's rule file with short `for` (Prometheus evaluates every second) and
// thresholds a short run can cross, as the chart's values would set them.
func testRules(t *testing.T, partitions int) ruleFile {
	f := loadRules(t)
	thresholds := map[string]string{
		"RoomhookOldestUndeliveredTooOld": "0.5",
		"RoomhookPartitionsUnowned":       strconv.Itoa(partitions),
	}
	for gi, g := range f.Groups {
		for ri, r := range g.Rules {
			if th, ok := thresholds[r.Alert]; ok {
				r = r.withThreshold(th)
			}
			r.For = "2s"
			f.Groups[gi].Rules[ri] = r
		}
	}
	return f
}

func endpointID(t *testing.T, rawURL string) string {
	t.Helper()
	urls, err := endpoint.ParseWebhookURLs([]string{rawURL})
	if err != nil {
		t.Fatal(err)
	}
	return endpoint.ID(urls[0])
}

// serveConfig is the server's default configuration with every ROOMHOOK_ variable of the
// environment ignored, short retries and a quick breaker, so that a failing endpoint shows in
// seconds what it shows in hours in production.
func serveConfig(t *testing.T, natsURL string, webhookURLs ...string) server.Config {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ROOMHOOK_") {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
	c, err := server.LoadConfig(server.ScopeServe)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.Region = testRegion
	c.NATSURL, c.DataDir = natsURL, t.TempDir()
	c.APIKey, c.APISecret = "obs-key", "obs-secret-obs-secret-obs-secret"
	c.WebhookURLs = webhookURLs
	c.RetrySchedule = "0s,100ms,200ms,400ms"
	c.BreakerFailures, c.BreakerMaxProbeWait = 3, 500*time.Millisecond
	c.HTTPTimeout, c.Partitions, c.MaxInFlight, c.Takeover = 2*time.Second, 4, 16, 2*time.Second
	c.ShutdownGrace, c.ReplicaID = 15*time.Second, "dashboard-test"
	c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	return c
}

// startRoomhook runs server.Serve until the test ends and returns once /readyz answers 200.
func startRoomhook(t *testing.T, c server.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)), "test") }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not return within 30s of its context ending")
		}
	})
	waitFor(t, 30*time.Second, "roomhook ready", func() (bool, error) {
		select {
		case err := <-done:
			t.Fatalf("serve returned: %v", err)
		default:
		}
		return ready("http://" + c.HTTPAddr + "/readyz"), nil
	})
}

// publishTraffic publishes meeting events for four rooms, one every 25ms, and every 40th a
// payload that is not protobuf, until ctx ends or max have gone out.
func publishTraffic(ctx context.Context, js jetstream.JetStream, max int) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	names := []string{"participant_joined", "track_published", "track_unpublished", "participant_left"}
	for i := 0; i < max; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		room := "room-" + strconv.Itoa(i%4)
		var err error
		if i%40 == 39 {
			var subject string
			if subject, err = (schema.Address{Region: testRegion, Room: room, Event: "participant_joined"}).Subject(); err != nil {
				return err
			}
			_, err = js.Publish(ctx, subject, []byte{0xff, 0xff, 0xff})
		} else {
			evt := &roomhookv1.Event{
				Event: proto.String(names[(i/4)%len(names)]), Id: proto.String("evt-" + strconv.Itoa(i)),
				Room: &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
			}
			_, err = schema.Publish(ctx, js, testRegion, evt)
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

func hasAlert(alerts []alert, state string, labels map[string]string) bool {
	for _, a := range alerts {
		if state != "" && a.State != state {
			continue
		}
		match := true
		for k, v := range labels {
			if a.Labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// hasData reports whether an instant query of expr returns at least one number now.
func hasData(t *testing.T, api promAPI, expr string) bool {
	t.Helper()
	got, err := api.query(context.Background(), expr)
	if err != nil {
		t.Errorf("query %s: %v", expr, err)
		return false
	}
	return anyValue(got)
}

func anyValue(ss []series) bool {
	for _, s := range ss {
		if s.hasValue() {
			return true
		}
	}
	return false
}
