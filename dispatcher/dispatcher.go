package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/subscriber"
)

// Config is what a Dispatcher needs to know; the server fills it from ROOMHOOK_* variables.
type Config struct {
	Region          string
	Partitions      int           // rooms are spread over this many partitions (ownership units)
	MaxInFlight     int           // deliveries pulled and not yet settled, per drained spill queue
	Takeover        time.Duration // how soon a dead replica's work moves to another
	MaxEventBytes   int
	PerRoomWebhooks bool
	RoomGrace       time.Duration
	RoomTTL         time.Duration
	StreamMaxAge    time.Duration
	DLQMaxAge       time.Duration
	StreamReplicas  int
	// StreamCluster places the region's streams and buckets in this cluster of a NATS
	// super-cluster (ROOMHOOK_STREAM_CLUSTER); empty leaves it to the server.
	StreamCluster   string
	Retry           sender.RetrySchedule
	Credentials     signature.Credentials // signs for per-room endpoints and global ones without their own
	Endpoints       []endpoint.Endpoint   // global endpoints
	ReplicaID       string
	BreakerFailures int           // consecutive failed attempts that open a breaker (0: default)
	MaxProbeWait    time.Duration // longest wait between probes of an open breaker (0: default)
	// SpillAfter is how long a direct attempt may go unanswered before the endpoint's later
	// deliveries on that partition move to its spill queue (0: DefaultSpillAfter).
	SpillAfter time.Duration
	// MaxRoomURLs is how many webhook_urls of one room_created are registered (0: DefaultMaxRoomURLs).
	MaxRoomURLs int
	// MaxRoomEndpoints caps the live per-room endpoints (0: DefaultMaxRoomEndpoints).
	MaxRoomEndpoints int
	// RetireEvery is how often idle per-room endpoints are looked for (0: DefaultRetireEvery).
	RetireEvery time.Duration
	// StartupTimeout bounds how long start-up waits for JetStream (0: DefaultStartupTimeout).
	StartupTimeout time.Duration
	// MaxDraining is how many spill queues a replica drains at once, each with a consumer of
	// its own (0: DefaultMaxDraining); the others wait their turn, durably queued.
	MaxDraining int
}

// Defaults of the Config fields that have one.
const (
	DefaultSpillAfter       = time.Second
	DefaultMaxDraining      = 64
	DefaultMaxRoomURLs      = 5
	DefaultMaxRoomEndpoints = 50_000
	DefaultRetireEvery      = 20 * time.Second
	DefaultStartupTimeout   = 2 * time.Minute
)

// Partition bounds of ROOMHOOK_PARTITIONS.
const (
	MinPartitions = 1
	MaxPartitions = 1024
)

// ErrConfig marks an unusable Config.
var ErrConfig = errors.New("invalid dispatcher configuration")

func (c *Config) validate() error {
	switch {
	case c.Partitions < MinPartitions || c.Partitions > MaxPartitions:
		return fmt.Errorf("%w: partitions must be %d..%d, got %d", ErrConfig, MinPartitions, MaxPartitions, c.Partitions)
	case c.MaxInFlight < 1:
		return fmt.Errorf("%w: max in flight must be at least 1", ErrConfig)
	case c.Takeover < time.Second:
		return fmt.Errorf("%w: takeover must be at least 1s", ErrConfig)
	case c.ReplicaID == "":
		return fmt.Errorf("%w: replica id is empty", ErrConfig)
	case len(c.Retry.Steps) == 0:
		return fmt.Errorf("%w: retry schedule is empty", ErrConfig)
	}
	if c.SpillAfter <= 0 {
		c.SpillAfter = DefaultSpillAfter
	}
	if c.MaxDraining <= 0 {
		c.MaxDraining = DefaultMaxDraining
	}
	if c.MaxRoomURLs <= 0 {
		c.MaxRoomURLs = DefaultMaxRoomURLs
	}
	if c.MaxRoomEndpoints <= 0 {
		c.MaxRoomEndpoints = DefaultMaxRoomEndpoints
	}
	if c.RetireEvery <= 0 {
		c.RetireEvery = DefaultRetireEvery
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = DefaultStartupTimeout
	}
	return schema.ValidateRegion(c.Region)
}

// Dispatcher is one replica of roomhook's delivery pipeline.
type Dispatcher struct {
	js      jetstream.JetStream
	cfg     Config
	names   subscriber.Names
	log     *slog.Logger
	metrics *Metrics
	sender  *sender.Sender
	known   map[string]bool
	// unroutedEvery is how often the replica counts the unrouted events (unroutedEvery;
	// tests shorten it).
	unroutedEvery time.Duration
	// drainSlots bounds the spill queues drained at once: each has a consumer, and the
	// server allows 1,000 per stream by default whatever the number of endpoints.
	drainSlots chan struct{}

	dir      *endpoint.Directory
	rooms    jetstream.KeyValue
	breakers *breaker.Breakers
	activity *activityBook
	dlq      jetstream.Stream
	spillSt  jetstream.Stream
	eventsSt jetstream.Stream // for the stored time of events without created_at
	own      atomic.Pointer[subscriber.Ownership]
	ready    atomic.Bool
	// deferring: a replica of the first version still routes in this region, and this one
	// waits for it to stop before upgrading (see waitForFirstVersion).
	deferring atomic.Bool

	mu         sync.Mutex
	partitions map[int]*partition
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(d *Dispatcher) { d.log = l } }

// WithMetrics sets the metrics the dispatcher records into.
func WithMetrics(m *Metrics) Option { return func(d *Dispatcher) { d.metrics = m } }

// WithSender sets the HTTP sender.
func WithSender(s *sender.Sender) Option { return func(d *Dispatcher) { d.sender = s } }

// New prepares a dispatcher; Run starts it.
func New(js jetstream.JetStream, cfg Config, opts ...Option) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{js: js, cfg: cfg, names: subscriber.Names{Region: cfg.Region}, known: map[string]bool{},
		partitions: map[int]*partition{}, drainSlots: make(chan struct{}, cfg.MaxDraining), unroutedEvery: unroutedEvery}
	for _, n := range schema.KnownEventNames() {
		d.known[n] = true
	}
	for _, o := range opts {
		o(d)
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.metrics == nil {
		d.metrics = NewMetrics(nil)
	}
	if d.sender == nil {
		d.sender = sender.New()
	}
	return d, nil
}

// Names returns the JetStream names this dispatcher uses.
func (d *Dispatcher) Names() subscriber.Names { return d.names }

// Ready reports whether the dispatcher has provisioned what it needs and is taking work.
func (d *Dispatcher) Ready() bool { return d.ready.Load() }

// Deferring reports whether the dispatcher is waiting, before it provisions anything, for the
// first version's replicas in its region to stop: they deliver until then, and a rolling
// update may treat this replica as ready.
func (d *Dispatcher) Deferring() bool { return d.deferring.Load() }

// Owned lists the partitions this replica owns now, as units ("p0", "p1", ...).
func (d *Dispatcher) Owned() []string {
	own := d.own.Load()
	if own == nil {
		return nil
	}
	return own.Owned()
}

// Directory returns the endpoint directory once Run has started (nil before).
func (d *Dispatcher) Directory() *endpoint.Directory { return d.dir }

// Run provisions streams and buckets, joins the other replicas, and delivers until ctx ends.
// Then it stops pulling, lets attempts in progress finish, hands back what it holds and
// releases its work to the other replicas before returning. Every goroutine it starts has
// ended when it returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.waitForFirstVersion(ctx); err != nil {
		return err
	}
	res, err := d.provisionAtStart(ctx)
	if err != nil {
		return err
	}
	d.dir = endpoint.NewDirectory(res.Endpoints, d.cfg.Credentials, d.cfg.Endpoints, d.log)
	if err := d.registerGlobals(ctx); err != nil {
		return err
	}
	d.rooms = res.Rooms
	d.dlq = res.DLQ
	d.spillSt = res.Spill
	d.eventsSt = res.Events
	d.activity = newActivityBook()
	d.breakers = breaker.New(res.Health, d.cfg.ReplicaID, d.cfg.BreakerFailures, d.cfg.MaxProbeWait, d.log, d.breakerChanged)
	if err := d.upgrade(ctx); err != nil {
		return err
	}

	// Background work runs until the partitions have stopped, so that a partition handing
	// back its deliveries still sees endpoints and breakers.
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer func() {
		stopBG()
		bg.Wait()
	}()
	dirReady := make(chan error, 1)
	bg.Add(7)
	go func() {
		defer bg.Done()
		d.keepWatching(bgCtx, "endpoint directory", d.dir.Watch, dirReady)
	}()
	go func() {
		defer bg.Done()
		d.keepWatching(bgCtx, "endpoint breakers", d.breakers.Watch, nil)
	}()
	go func() {
		defer bg.Done()
		d.activity.flushEvery(bgCtx, res.Health, d.cfg.ReplicaID)
	}()
	go func() {
		defer bg.Done()
		d.keepProvisioned(bgCtx)
	}()
	go func() {
		defer bg.Done()
		d.sampleGauges(bgCtx, time.Second)
	}()
	go func() {
		defer bg.Done()
		d.watchSource(bgCtx)
	}()
	go func() {
		defer bg.Done()
		d.watchUnrouted(bgCtx, d.unroutedEvery)
	}()
	select {
	case <-d.dir.Ready():
	case err := <-dirReady:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}

	units := make([]string, 0, d.cfg.Partitions)
	for p := 0; p < d.cfg.Partitions; p++ {
		units = append(units, "p"+strconv.Itoa(p))
	}
	live, err := subscriber.NewKeyList(d.nc(), res.Members.Bucket())
	if err != nil {
		return err
	}
	defer live.Close()
	own := subscriber.NewOwnership(res.Members, live, res.Leases, d.cfg.ReplicaID, d.cfg.Takeover, units, d.runUnit,
		subscriber.WithOwnershipLogger(d.log),
		subscriber.WithOwnedChange(func(n int) { d.metrics.UnitsOwned.Set(float64(n)) }))
	d.own.Store(own)
	d.ready.Store(true)
	d.log.Info("dispatcher running", "replica", d.cfg.ReplicaID, "region", d.cfg.Region,
		"partitions", d.cfg.Partitions, "global_endpoints", len(d.cfg.Endpoints))
	own.Run(ctx)
	d.ready.Store(false)
	return nil
}

// keepWatching runs a watch until ctx ends, starting it again with backoff when it fails, so
// a replica never goes on with a stale view. The first failure before the watch was ever
// ready is reported on failed (when given), which fails start-up.
func (d *Dispatcher) keepWatching(ctx context.Context, what string, watch func(context.Context) error, failed chan<- error) {
	delays := backoff.New(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		err := watch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch ended")
		}
		if failed != nil {
			select {
			case failed <- fmt.Errorf("watching %s: %w", what, err):
			default:
			}
		}
		wait := delays.Next()
		d.log.Warn("watching "+what+" stopped; starting again", "error", err, "retry_in", wait.Round(time.Millisecond).String())
		sleep(ctx, wait)
	}
}

// provisionAtStart provisions, retrying with backoff while JetStream is slow or electing a
// leader, until the start-up timeout. A refused configuration (a changed partition count) is
// not retried.
func (d *Dispatcher) provisionAtStart(ctx context.Context) (*subscriber.Resources, error) {
	deadline := time.Now().Add(d.cfg.StartupTimeout)
	delays := backoff.New(250*time.Millisecond, 5*time.Second)
	for {
		// Short attempts: streams made by an attempt that ran out of time stay made, and an
		// electing cluster answers the next attempt sooner than a long one would wait.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := d.provision(pctx)
		cancel()
		if err == nil {
			return res, nil
		}
		if errors.Is(err, subscriber.ErrPartitionsChanged) || ctx.Err() != nil || time.Now().After(deadline) {
			return nil, err
		}
		wait := delays.Next()
		d.log.Warn("waiting for JetStream to provision streams and buckets", "error", err,
			"retry_in", wait.Round(time.Millisecond).String(), "gives_up_in", time.Until(deadline).Round(time.Second).String())
		sleep(ctx, wait)
	}
}

func (d *Dispatcher) provision(ctx context.Context) (*subscriber.Resources, error) {
	return subscriber.Provision(ctx, d.js, d.names, subscriber.StreamSettings{
		MaxAge: d.cfg.StreamMaxAge, Replicas: d.cfg.StreamReplicas, DLQMaxAge: d.cfg.DLQMaxAge,
		Takeover: d.cfg.Takeover, RoomTTL: d.cfg.RoomTTL, Partitions: d.cfg.Partitions,
		Cluster: d.cfg.StreamCluster,
	})
}

// keepProvisioned puts back streams and buckets that disappeared (NATS restarted without its
// storage, or an operator deleted one), so the replica recovers without a restart. Messages
// that were in a lost stream are gone with it; durable NATS storage is what prevents that.
//
// It looks every 5 s or so, jittered; while re-provisioning fails it waits longer each time,
// up to 30 s, so that replicas facing a server in trouble do not ask it in step. A look that
// fails (the server is away) is one small request and keeps the 5 s, so that a server back
// without its storage is provisioned again soon.
func (d *Dispatcher) keepProvisioned(ctx context.Context) {
	delays := backoff.New(5*time.Second, 30*time.Second)
	for delays.Wait(ctx) {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		missing, err := subscriber.Missing(rctx, d.js, d.names)
		cancel()
		if err != nil || !missing {
			delays.Reset()
			continue
		}
		d.log.Warn("a roomhook stream or bucket is missing; creating it again")
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = d.provision(pctx)
		cancel()
		if err != nil {
			d.log.Error("re-provisioning failed", "error", err)
			continue
		}
		if err := d.registerGlobals(ctx); err != nil {
			d.log.Error("re-registering endpoints failed", "error", err)
			continue
		}
		delays.Reset()
	}
}

// registerGlobals writes the configured global endpoints into the endpoints bucket
// (endpoint.Directory.Register), bounded: it makes a request or two per endpoint.
func (d *Dispatcher) registerGlobals(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.dir.Register(rctx)
}

func (d *Dispatcher) runUnit(ctx context.Context, unit string) {
	p, err := strconv.Atoi(strings.TrimPrefix(unit, "p"))
	if err != nil {
		return
	}
	if p == 0 {
		// One replica at a time retires idle per-room endpoints: the owner of partition 0.
		var wg sync.WaitGroup
		defer wg.Wait()
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.retireEvery(rctx, d.cfg.RetireEvery)
		}()
	}
	d.runPartition(ctx, p)
}

func (d *Dispatcher) addPartition(pt *partition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partitions[pt.p] = pt
}

func (d *Dispatcher) removePartition(pt *partition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.partitions[pt.p] == pt {
		delete(d.partitions, pt.p)
	}
}

// ownedPartitions lists the partitions running on this replica now.
func (d *Dispatcher) ownedPartitions() []*partition {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*partition, 0, len(d.partitions))
	for _, pt := range d.partitions {
		out = append(out, pt)
	}
	return out
}

func (d *Dispatcher) nc() *nats.Conn { return d.js.Conn() }

// endpointIDPattern is the form of endpoint.ID.
var endpointIDPattern = regexp.MustCompile(`^[a-z0-9]{1,64}$`)

// roomURLs keeps the per-room URLs of a room_created that may be registered: at most
// MaxRoomURLs, each valid; the others are logged (redacted) once with their reasons and
// counted, and the room's events still go to its valid URLs.
func (d *Dispatcher) roomURLs(room string, urls []string) []string {
	valid := make([]string, 0, len(urls))
	var ignored []string
	for _, u := range urls {
		if len(valid) >= d.cfg.MaxRoomURLs {
			d.metrics.RoomURLsIgnored.WithLabelValues(endpoint.URLReasonTooMany).Inc()
			ignored = append(ignored, endpoint.RedactURL(u)+" ("+endpoint.URLReasonTooMany+")")
			continue
		}
		c, err := endpoint.ValidateRoomURL(u)
		if err != nil {
			reason := endpoint.URLReasonInvalid
			var ue *endpoint.RoomURLError
			if errors.As(err, &ue) {
				reason = ue.Reason
			}
			d.metrics.RoomURLsIgnored.WithLabelValues(reason).Inc()
			ignored = append(ignored, err.Error())
			continue
		}
		if !slices.Contains(valid, c) {
			valid = append(valid, c)
		}
	}
	if len(ignored) > 0 {
		d.log.Warn("ignoring per-room webhook URLs", "room", room, "ignored", strings.Join(ignored, "; "),
			"registered", len(valid), "max_room_urls", d.cfg.MaxRoomURLs)
	}
	return valid
}

// breakerChanged keeps the breaker gauge in step with the shared breakers.
func (d *Dispatcher) breakerChanged(id string, prev, next breaker.State) {
	label := "per_room"
	if v, ok := d.dir.Get(id); ok && v.Global {
		label = id
	}
	wasOpen, isOpen := prev == breaker.Open || prev == breaker.HalfOpen, next == breaker.Open || next == breaker.HalfOpen
	switch {
	case isOpen && !wasOpen:
		d.metrics.BreakersOpen.WithLabelValues(label).Inc()
	case wasOpen && !isOpen:
		d.metrics.BreakersOpen.WithLabelValues(label).Dec()
	}
}

func (d *Dispatcher) eventLabel(name string) string {
	if d.known[name] {
		return name
	}
	return "other"
}

// retry runs op until it succeeds or ctx ends, with backoff and jitter: an event must not be
// skipped because the registry was briefly unreachable.
func retry(ctx context.Context, d *Dispatcher, what string, op func() error) {
	delays := backoff.New(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := op()
		if err == nil {
			return
		}
		wait := delays.Next()
		d.log.Warn(what+" failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond).String())
		sleep(ctx, wait)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
