package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/roomhook/roomhook/internal/natstest"
)

// A ready replica exports roomhook_ready and roomhook_nats_connected as 1, and the series of
// known label values at zero before any event (Metrics.Preset), so that rate() and alerts work
// from the start; when NATS goes away both gauges drop to 0 while /metrics keeps answering.
func TestReadinessGaugesAndPresetSeries(t *testing.T) {
	ns := natstest.NewServer(t)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ROOMHOOK_") {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
	c, err := LoadConfig(ScopeServe)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.HTTPAddr = ln.Addr().String()
	ln.Close()
	c.NATSURL, c.DataDir, c.ReplicaID = ns.ClientURL(), t.TempDir(), "gauges-test"
	c.APIKey, c.APISecret = "gauges-key", "gauges-secret-gauges-secret"
	c.WebhookURLs = []string{"http://127.0.0.1:9/webhook"} // never called: no event is published
	c.Partitions, c.Takeover, c.ShutdownGrace = 2, 2*time.Second, 10*time.Second

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)), "test") }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not return within 30s")
		}
	})
	base := "http://" + c.HTTPAddr
	metricsHave := func(lines ...string) func() bool {
		return func() bool {
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			for _, l := range lines {
				if !strings.Contains("\n"+string(body), "\n"+l+"\n") {
					return false
				}
			}
			return true
		}
	}
	eventually := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("serve returned: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("ready and connected, preset series at zero", 20*time.Second, metricsHave(
		"roomhook_ready 1",
		"roomhook_nats_connected 1",
		`roomhook_events_consumed_total{event="room_started"} 0`,
		`roomhook_dead_letters_total{reason="exhausted"} 0`,
		`roomhook_retries_total{endpoint="per_room"} 0`,
	))
	ns.Shutdown()
	eventually("not ready, not connected", 10*time.Second, metricsHave("roomhook_ready 0", "roomhook_nats_connected 0"))
}
