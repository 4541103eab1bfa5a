package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roomhook/roomhook/subscriber"
)

// Why a replica is not ready, for errors.Is; /readyz answers with the full text.
var (
	errNATSDisconnected   = errors.New("not connected to NATS")
	errDispatcherStopped  = errors.New("dispatcher not running (starting, or shutting down)")
	errJetStreamUnhealthy = errors.New("JetStream not usable")
)

// Readiness check timing. Kubernetes' default probe timeout is 1s, so the JetStream round trip
// must fit well inside it; the result is cached so that frequent probes (several kubelets, load
// balancers, dashboards) cost NATS at most one round trip per second per replica.
const (
	readinessTimeout = 800 * time.Millisecond
	readinessTTL     = time.Second
)

// readiness is what /readyz checks: this replica can deliver now. That means connected to
// NATS, the dispatcher running (streams and buckets provisioned, ownership joined), and
// JetStream answering with every stream and key-value bucket in place. A TCP connection alone
// is not enough: a server whose JetStream lost its meta leader, or that came back without its
// store (or without its memory-stored buckets), accepts connections but cannot deliver.
type readiness struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	streams []string
	running func() bool
	// deferring reports that the dispatcher waits for the first version's replicas to stop
	// before it upgrades the region; nil when it never does.
	deferring func() bool
	timeout   time.Duration
	ttl       time.Duration

	mu      sync.Mutex
	checked time.Time
	err     error
}

// newReadiness checks the streams and the buckets of names; running reports whether the
// dispatcher has provisioned and is taking work.
func newReadiness(nc *nats.Conn, js jetstream.JetStream, names subscriber.Names, running func() bool) *readiness {
	streams := []string{names.EventsStream(), names.PartStream(), names.SpillStream(), names.DLQStream()}
	for _, bucket := range []string{names.MembersBucket(), names.LeasesBucket(), names.RoomsBucket(),
		names.EndpointsBucket(), names.HealthBucket()} {
		streams = append(streams, kvStreamPrefix+bucket)
	}
	return &readiness{nc: nc, js: js, running: running, timeout: readinessTimeout, ttl: readinessTTL, streams: streams}
}

// kvStreamPrefix: a JetStream key-value bucket is stored in the stream KV_<bucket>.
const kvStreamPrefix = "KV_"

// check returns nil when the replica is ready, else why not. The connection and the
// dispatcher's state are read on every call, so a lost connection shows at once; only the
// JetStream round trip is cached.
func (r *readiness) check(ctx context.Context) error {
	if !r.nc.IsConnected() {
		return errNATSDisconnected
	}
	if r.isDeferring() {
		// Ready, so that a rolling update goes on and stops the old replicas, which deliver
		// until they stop; this replica provisions nothing before then.
		return nil
	}
	if !r.running() {
		return errDispatcherStopped
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < r.ttl {
		return r.err
	}
	// A probe that gives up must not leave a "canceled" verdict in the cache for others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	r.err = r.roundTrip(ctx)
	r.checked = time.Now()
	return r.err
}

func (r *readiness) isDeferring() bool { return r.deferring != nil && r.deferring() }

func (r *readiness) roundTrip(ctx context.Context) error {
	for _, name := range r.streams {
		if _, err := r.js.Stream(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("%w: stream %s is missing", errJetStreamUnhealthy, name)
			}
			return fmt.Errorf("%w: stream %s: %w", errJetStreamUnhealthy, name, err)
		}
	}
	return nil
}

// healthHandler serves /healthz (the process is alive), /readyz (it can deliver) and /metrics.
func healthHandler(r *readiness, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		if err := r.check(req.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if r.isDeferring() {
			w.Write([]byte("ready: waiting for the first version's replicas to stop before upgrading the region; they deliver until then\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}
