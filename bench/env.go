package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/egress"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/subscriber"
)

// benchTargets is what the replicas' SSRF guard lets per-room URLs reach: the loopback
// receivers, and nothing else private.
const benchTargets = "127.0.0.1/32"

// benchCredentials sign and verify every webhook of the benchmark.
var benchCredentials = signature.Credentials{APIKey: "bench", APISecret: "bench-secret-0123456789abcdef0123456789"}

// env is what one scenario run works in: a NATS server (or a region of a shared one), the
// replicas, the receivers' HTTP servers, and what must be closed afterwards.
type env struct {
	opts   *Options
	url    string
	region string
	server *server.Server
	dir    string

	mu       sync.Mutex
	obs      jetstream.JetStream // the observer's connection, made on first use
	conns    []*nats.Conn
	replicas []*replica
	closers  []func() // HTTP servers and listeners, closed before the replicas stop
}

func (b *bench) newEnv() (*env, error) {
	e := &env{opts: &b.opts, url: b.opts.NATSURL, region: "default"}
	if e.url != "" {
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		e.region = "bench-" + hex.EncodeToString(suffix)
		return e, nil
	}
	dir, err := os.MkdirTemp("", "roomhook-bench-")
	if err != nil {
		return nil, err
	}
	e.dir = dir
	// Default limits, as an operator's nats-server has them: the figures claim that.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start() // does not block: it starts the server's own goroutines, which ns.Shutdown ends
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		os.RemoveAll(dir)
		return nil, errors.New("embedded NATS did not start")
	}
	e.server, e.url = ns, ns.ClientURL()
	return e, nil
}

// connect opens a new connection: publishers and every replica get their own, as separate
// processes would have.
func (e *env) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(e.url, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	e.mu.Lock()
	e.conns = append(e.conns, nc)
	e.mu.Unlock()
	return nc, js, nil
}

// observer is a connection of the env's own for looking at streams and consumers.
func (e *env) observer() (jetstream.JetStream, error) {
	e.mu.Lock()
	js := e.obs
	e.mu.Unlock()
	if js != nil {
		return js, nil
	}
	_, js, err := e.connect("roomhook-bench-observer")
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.obs == nil {
		e.obs = js
	}
	return e.obs, nil
}

func (e *env) names() subscriber.Names { return subscriber.Names{Region: e.region} }

// endpoints makes global endpoints of urls, signed with the bench credentials.
func endpoints(urls ...string) []endpoint.Endpoint {
	out := make([]endpoint.Endpoint, 0, len(urls))
	for _, u := range urls {
		out = append(out, endpoint.Endpoint{ID: endpoint.ID(u), URL: u, Credentials: benchCredentials, Global: true})
	}
	return out
}

// dispatcherConfig is roomhook's default configuration for this env's region.
func (e *env) dispatcherConfig(id string, eps []endpoint.Endpoint, retry sender.RetrySchedule) dispatcher.Config {
	return dispatcher.Config{
		Region: e.region, Partitions: e.opts.Partitions, MaxInFlight: e.opts.MaxInFlight, Takeover: e.opts.Takeover,
		MaxEventBytes: 1 << 20, PerRoomWebhooks: true, RoomGrace: 10 * time.Minute, RoomTTL: 48 * time.Hour,
		StreamMaxAge: time.Hour, DLQMaxAge: time.Hour, StreamReplicas: 1, Retry: retry,
		Credentials: benchCredentials, Endpoints: eps, ReplicaID: id,
	}
}

// replica is one dispatcher running in this process on its own connection.
type replica struct {
	d       *dispatcher.Dispatcher
	metrics *dispatcher.Metrics // its own, registered nowhere: the bench reads them directly
	cancel  context.CancelFunc
	done    chan struct{}
}

// retries is how many retries the env's in-process replicas scheduled after failed attempts:
// an attempt that timed out after its receiver had the request is sent again, so repeats
// without retries would point elsewhere.
func (e *env) retries() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	total := 0.0
	for _, r := range e.replicas {
		total += counterTotal(r.metrics.Retries)
	}
	return total
}

// counterTotal sums every series of a counter collector.
func counterTotal(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric)
	go func() { // ends when Collect returns: the loop below reads until ch is closed
		c.Collect(ch)
		close(ch)
	}()
	total := 0.0
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) == nil && pb.Counter != nil {
			total += pb.Counter.GetValue()
		}
	}
	return total
}

func (e *env) startReplica(id string, eps []endpoint.Endpoint, retry sender.RetrySchedule) (*replica, error) {
	_, js, err := e.connect("roomhook-bench-" + id)
	if err != nil {
		return nil, err
	}
	// roomhook's SSRF guard as configured in production, with the loopback receivers allowed
	// (ROOMHOOK_ALLOWED_TARGETS=127.0.0.1/32): per-room URLs go through the guarded pool.
	guard, err := egress.New(egress.Config{AllowedTargets: []string{benchTargets}})
	if err != nil {
		return nil, err
	}
	m := dispatcher.NewMetrics(nil)
	d, err := dispatcher.New(js, e.dispatcherConfig(id, eps, retry), dispatcher.WithLogger(e.opts.Log.With("replica", id)),
		dispatcher.WithSender(sender.New(sender.WithTimeout(sender.DefaultTimeout), sender.WithGuard(guard))),
		dispatcher.WithMetrics(m))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{d: d, metrics: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			e.opts.Log.Error("replica stopped", "replica", id, "error", err)
		}
	}()
	e.mu.Lock()
	e.replicas = append(e.replicas, r)
	e.mu.Unlock()
	return r, nil
}

// waitOwned waits until the replicas between them own every partition, each at least one,
// and no replica's set has changed for two ownership ticks (takeover/5 each): a replica that
// has joined is seen by the others at their next tick, which then hand its share over, so a
// shorter quiet spell can fall between two handovers and the measurement would start while
// partitions still move.
func (e *env) waitOwned(ctx context.Context, rs []*replica, timeout time.Duration) error {
	units := e.opts.Partitions // one unit per partition
	settle := 2*e.opts.Takeover/5 + 500*time.Millisecond
	deadline := time.Now().Add(timeout)
	var last []string
	var since time.Time
	for {
		total, empty := 0, false
		sets := make([]string, len(rs))
		for i, r := range rs {
			// Owned is safe to call only once Ready has reported true: Run sets up what
			// Owned reads before it marks the dispatcher ready.
			if !r.d.Ready() {
				empty = true
				continue
			}
			owned := r.d.Owned()
			sets[i] = strings.Join(owned, ",")
			total += len(owned)
			empty = empty || len(owned) == 0
		}
		switch {
		case total != units || empty:
			last = nil
		case !slices.Equal(sets, last):
			last, since = sets, time.Now()
		case time.Since(since) >= settle:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replicas own %d of %d units after %s", total, units, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// serve serves h on a new loopback port and returns its base URL.
func (e *env) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	e.serveOn(ln, h)
	return "http://" + ln.Addr().String(), nil
}

// serveOn serves h on ln until the env closes; the returned function stops it early. Either
// returns once Serve has.
func (e *env) serveOn(ln net.Listener, h http.Handler) func() {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	var served sync.WaitGroup
	served.Go(func() { _ = srv.Serve(ln) })
	var once sync.Once
	stop := func() {
		once.Do(func() { srv.Close() })
		served.Wait()
	}
	e.mu.Lock()
	e.closers = append(e.closers, stop)
	e.mu.Unlock()
	return stop
}

// deadAddress is a loopback address nothing listens on: connections are refused.
func deadAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// serveHanging accepts connections and reads them without ever answering, like a receiver
// stuck on a lock; the sender's timeout ends each attempt.
func (e *env) serveHanging() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	// The closer joins the accept loop before it reads conns and waits for the readers: every
	// readers.Go has happened by then.
	var conns []net.Conn
	var readers sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			readers.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	}()
	e.mu.Lock()
	e.closers = append(e.closers, func() {
		ln.Close()
		<-accepting
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	})
	e.mu.Unlock()
	return "http://" + ln.Addr().String(), nil
}

// close stops everything in an order that lets replicas stop quickly: receivers first (an
// attempt in progress is finished even during shutdown), then replicas, connections, server.
func (e *env) close() {
	e.mu.Lock()
	closers, replicas, conns := e.closers, e.replicas, e.conns
	e.closers, e.replicas, e.conns = nil, nil, nil
	e.mu.Unlock()
	for _, c := range closers {
		c()
	}
	for _, r := range replicas {
		r.cancel()
	}
	for _, r := range replicas {
		<-r.done
	}
	if e.server == nil && len(conns) > 0 {
		e.deleteRegion(conns[0])
	}
	for _, nc := range conns {
		nc.Close()
	}
	if e.server != nil {
		e.server.Shutdown()
		e.server.WaitForShutdown()
		os.RemoveAll(e.dir)
	}
}

// streamSuffix ends the name of every stream and bucket of this env's region.
func (e *env) streamSuffix() string {
	return "_" + strings.ToUpper(strings.ReplaceAll(e.region, "-", "_"))
}

// deleteRegion removes this run's streams and buckets from a shared server.
func (e *env) deleteRegion(nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	suffix := e.streamSuffix()
	names := js.StreamNames(ctx)
	var doomed []string
	for n := range names.Name() {
		if strings.HasSuffix(n, suffix) {
			doomed = append(doomed, n)
		}
	}
	for _, n := range doomed {
		_ = js.DeleteStream(ctx, n)
	}
}
