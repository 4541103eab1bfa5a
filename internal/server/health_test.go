package server

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/subscriber"
)

// TestReadyzChecksJetStream checks the readiness check against a server that accepts
// connections but lacks what roomhook provisioned: nothing at all, as after a restart without
// its store, or one bucket, as after a restart that dropped the memory-stored buckets.
func TestReadyzChecksJetStream(t *testing.T) {
	t.Parallel()
	ns := natstest.NewRestartable(t, "", "")
	nc, js := natstest.Connect(t, ns.URL())
	names := subscriber.Names{Region: "default"}
	var running atomic.Bool
	running.Store(true)
	r := newReadiness(nc, js, names, running.Load)
	// The cache lasts past every step below; expire ends it where the test says, not a timer.
	r.ttl = time.Hour
	expire := func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.checked = time.Time{}
	}
	ctx := context.Background()
	checkMissing := func(when, missing string) {
		t.Helper()
		err := r.check(ctx)
		if !errors.Is(err, errJetStreamUnhealthy) || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: %v; want %s named as missing", when, err, missing)
		}
	}

	checkMissing("nothing provisioned", names.EventsStream())
	if _, err := subscriber.Provision(ctx, js, names, subscriber.StreamSettings{
		MaxAge: time.Hour, Replicas: 1, DLQMaxAge: time.Hour, Takeover: 2 * time.Second, RoomTTL: time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	// Cached: probes cost NATS at most one round trip per period.
	checkMissing("right after provisioning", names.EventsStream())
	expire()
	if err := r.check(ctx); err != nil {
		t.Errorf("everything provisioned: %v", err)
	}
	if err := js.DeleteKeyValue(ctx, names.LeasesBucket()); err != nil {
		t.Fatal(err)
	}
	expire()
	checkMissing("leases bucket gone", names.LeasesBucket())

	running.Store(false)
	if err := r.check(ctx); !errors.Is(err, errDispatcherStopped) {
		t.Errorf("dispatcher stopped: %v", err)
	}
	// A replica waiting for the first version's replicas to stop is ready before it has
	// provisioned anything, or a rolling update would never stop the old ones.
	var deferring atomic.Bool
	r.deferring = deferring.Load
	deferring.Store(true)
	if err := r.check(ctx); err != nil {
		t.Errorf("waiting for the first version, not running, leases bucket gone: %v; want ready", err)
	}
	rec := httptest.NewRecorder()
	healthHandler(r, prometheus.NewRegistry()).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "first version") {
		t.Errorf("/readyz while waiting for the first version: %d %q", rec.Code, rec.Body.String())
	}
	deferring.Store(false)
	running.Store(true)
	ns.Stop()
	natstest.WaitFor(t, 5*time.Second, "the client to notice", func() bool { return !nc.IsConnected() })
	if err := r.check(ctx); !errors.Is(err, errNATSDisconnected) {
		t.Errorf("disconnected: %v; a lost connection must show at once, not after the cache", err)
	}
}
