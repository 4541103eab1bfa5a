package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/sender"
)

// Serve runs one dispatcher replica until ctx ends, then shuts down within
// ROOMHOOK_SHUTDOWN_GRACE. c must have passed Validate (LoadConfig(ScopeServe) does that);
// version is the build's, for the User-Agent, the logs and the admin service.
//
// The wiring, in order: NATS (embedded when ROOMHOOK_NATS_URL is empty) and JetStream, the
// global endpoints, the Prometheus registry and the dispatcher's metrics, the HTTP sender, the
// dispatcher, the HTTP server (healthHandler: /healthz, /readyz, /metrics), the dispatcher's
// Run and the admin service (startAdmin). Every goroutine Serve starts has returned when it
// returns, except a dispatcher that overran the grace: the process is about to exit, and JetStream
// redelivers what it held.
func Serve(ctx context.Context, c Config, log *slog.Logger, version string) error {
	applyMemoryLimit(log, os.DirFS("/"), os.Getenv("GOMEMLIMIT"))
	creds, dev := c.Credentials()
	natsURL := c.NATSURL
	if natsURL == "" {
		ns, err := startEmbeddedNATS(c.EmbeddedListen, c.DataDir)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		log.Warn("using an embedded NATS server: for development only; set ROOMHOOK_NATS_URL in production",
			"listen", c.EmbeddedListen, "data_dir", c.DataDir)
	}
	if dev {
		log.Warn("!!! NO ROOMHOOK_API_KEY / ROOMHOOK_API_SECRET SET: webhooks are signed with DEVELOPMENT credentials; receivers must not trust them !!!",
			"api_key", creds.APIKey)
	}
	nc, err := ConnectNATS(c, natsURL, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	endpoints, err := globalEndpoints(c, creds)
	if err != nil {
		return err
	}
	replicaID := c.ReplicaID
	if replicaID == "" {
		replicaID = defaultReplicaID()
	}
	dcfg, err := c.DispatcherConfig(replicaID, endpoints)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := dispatcher.NewMetrics(reg)
	// Every series of a known label value exists from the start, at zero, so that rate() and
	// alerts on a fresh replica see 0 instead of nothing.
	globalIDs := make([]string, 0, len(endpoints))
	for _, ep := range endpoints {
		globalIDs = append(globalIDs, ep.ID)
	}
	metrics.Preset(globalIDs, schema.KnownEventNames())
	guard, err := c.EgressGuard()
	if err != nil {
		return err
	}
	if guard.Enabled() {
		log.Info("egress guard on: webhooks to per-room URLs may not reach loopback, private, link-local or other non-global addresses",
			"guard", describeGuard(guard, c.AllowedTargets))
	} else {
		reason := "ROOMHOOK_ALLOW_PRIVATE_TARGETS=true"
		if c.AllowPrivateTargets == "" {
			reason = "the embedded development mode; set ROOMHOOK_ALLOW_PRIVATE_TARGETS=false to test the guard"
		}
		log.Warn("egress guard off: per-room webhook URLs may reach any address, this machine's included", "because", reason)
	}
	sender := sender.New(sender.WithTimeout(c.HTTPTimeout), sender.WithContentType(c.ContentType),
		sender.WithUserAgent("roomhook/"+version), sender.WithGuard(guard),
		sender.WithMaxConnsPerHost(c.MaxConnsPerHost), sender.WithMaxConns(c.MaxConns))
	d, err := dispatcher.New(js, dcfg, dispatcher.WithLogger(log), dispatcher.WithMetrics(metrics), dispatcher.WithSender(sender))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("ROOMHOOK_HTTP_ADDR: %w", err)
	}
	var adminSettled atomic.Bool
	ready := newReadiness(nc, js, d.Names(), func() bool { return d.Ready() && adminSettled.Load() })
	ready.deferring = d.Deferring
	registerReadinessMetrics(reg, ready)
	srv := &http.Server{Handler: healthHandler(ready, reg), ReadHeaderTimeout: 5 * time.Second}
	// background holds the goroutines Serve starts besides the dispatcher; stop ends them and
	// waits for them, on every way out.
	background, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		srv.Close()
		wg.Wait()
	}()
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server stopped", "error", err)
		}
	})
	if err := startIngest(background, &wg, c, js, reg, log); err != nil {
		return err
	}

	log.Info("roomhook starting", "version", version, "region", c.Region, "http", ln.Addr().String(), "replica", replicaID)
	if len(endpoints) == 0 {
		log.Info("no ROOMHOOK_WEBHOOK_URLS set: events go only to per-room URLs given with room_created; " +
			"to see webhooks arrive, run `go run . receive --addr 127.0.0.1:9000` and restart with ROOMHOOK_WEBHOOK_URLS=http://127.0.0.1:9000/webhook")
	}
	for _, ep := range endpoints {
		log.Info("webhooks go to", "endpoint", ep.ID, "url_host", endpoint.URLHost(ep.URL))
	}
	log.Info("publish events as protobuf roomhook.v1.Event on roomhook.events."+c.Region+".<room>.<event>; "+
		"for sample traffic run `go run . publish --nats "+RedactNATSURL(natsURL)+" --rooms 3`", "nats", RedactNATSURL(natsURL))

	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }() // joined below: every return waits for done or gives up after the grace
	wg.Go(func() {
		startAdmin(background, nc, c, replicaID, version, d.Ready, d.Directory, log, func() { adminSettled.Store(true) })
	})
	select {
	case err := <-done:
		if ctx.Err() == nil {
			return err
		}
		log.Info("shutdown complete")
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: handing back in-flight deliveries", "grace", c.ShutdownGrace)
	grace := time.NewTimer(c.ShutdownGrace)
	defer grace.Stop()
	select {
	case err := <-done:
		log.Info("shutdown complete")
		return err
	case <-grace.C:
		return fmt.Errorf("shutdown took longer than ROOMHOOK_SHUTDOWN_GRACE (%s); unsettled deliveries will be redelivered", c.ShutdownGrace)
	}
}

// defaultReplicaID names a replica when ROOMHOOK_REPLICA_ID is empty: the host name (the pod's
// name on Kubernetes) and a random suffix, so that a restarted process is a new member.
func defaultReplicaID() string {
	host, _ := os.Hostname() // no host name: the fallback below names it
	if host == "" {
		host = "roomhook"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return host + "-" + hex.EncodeToString(b)
}
