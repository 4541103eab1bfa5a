package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/subscriber"
)

// Config is what a Dispatcher needs to know; main fills it from ROOMHOOK_* variables.
type Config struct {
	Region          string
	Partitions      int           // rooms are spread over this many partitions (ownership units)
	MaxInFlight     int           // deliveries pulled and not yet settled, per (endpoint, partition)
	Takeover        time.Duration // how soon a dead replica's work moves to another
	MaxEventBytes   int
	PerRoomWebhooks bool
	RoomGrace       time.Duration
	RoomTTL         time.Duration
	StreamMaxAge    time.Duration
	DLQMaxAge       time.Duration
	StreamReplicas  int
	Retry           RetrySchedule
	Credentials     signature.Credentials // signs for per-room endpoints and global ones without their own
	Endpoints       []Endpoint            // global endpoints
	ReplicaID       string
	BreakerFailures int           // consecutive failed attempts that open a breaker (0: default)
	MaxProbeWait    time.Duration // longest wait between probes of an open breaker (0: default)
}

// ErrConfig marks an unusable Config.
var ErrConfig = errors.New("invalid dispatcher configuration")

func (c Config) validate() error {
	switch {
	case c.Partitions < 1 || c.Partitions > 1024:
		return fmt.Errorf("%w: partitions must be 1..1024, got %d", ErrConfig, c.Partitions)
	case c.MaxInFlight < 1:
		return fmt.Errorf("%w: max in flight must be at least 1", ErrConfig)
	case c.Takeover < time.Second:
		return fmt.Errorf("%w: takeover must be at least 1s", ErrConfig)
	case c.ReplicaID == "":
		return fmt.Errorf("%w: replica id is empty", ErrConfig)
	case len(c.Retry.Steps) == 0:
		return fmt.Errorf("%w: retry schedule is empty", ErrConfig)
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
	sender  *Sender
	known   map[string]bool

	dir      *Directory
	rooms    *Rooms
	breakers *Breakers
	activity *activityBook
	dlq      jetstream.Stream
	own      atomic.Pointer[subscriber.Ownership]
	ready    atomic.Bool
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(d *Dispatcher) { d.log = l } }

// WithMetrics sets the metrics the dispatcher records into.
func WithMetrics(m *Metrics) Option { return func(d *Dispatcher) { d.metrics = m } }

// WithSender sets the HTTP sender.
func WithSender(s *Sender) Option { return func(d *Dispatcher) { d.sender = s } }

// New prepares a dispatcher; Run starts it.
func New(js jetstream.JetStream, cfg Config, opts ...Option) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{js: js, cfg: cfg, names: subscriber.Names{Region: cfg.Region}, known: map[string]bool{}}
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
		d.sender = NewSender()
	}
	return d, nil
}

// Names returns the JetStream names this dispatcher uses.
func (d *Dispatcher) Names() subscriber.Names { return d.names }

// Ready reports whether the dispatcher has provisioned what it needs and is taking work.
func (d *Dispatcher) Ready() bool { return d.ready.Load() }

// Owned lists the units (router, partitions) this replica owns now.
func (d *Dispatcher) Owned() []string {
	own := d.own.Load()
	if own == nil {
		return nil
	}
	return own.Owned()
}

// Directory returns the endpoint directory once Run has started (nil before).
func (d *Dispatcher) Directory() *Directory { return d.dir }

const routerUnit = "router"

// Run provisions streams and buckets, joins the other replicas, and delivers until ctx ends.
// Then it stops pulling, lets attempts in progress finish, hands back what it holds and
// releases its work to the other replicas before returning.
func (d *Dispatcher) Run(ctx context.Context) error {
	res, err := d.provision(ctx)
	if err != nil {
		return err
	}
	d.dir = NewDirectory(res.Endpoints, d.cfg.Credentials, d.cfg.Endpoints, d.log)
	if err := d.dir.Register(ctx); err != nil {
		return err
	}
	d.rooms = NewRooms(res.Rooms, d.cfg.RoomGrace)
	d.dlq = res.DLQ
	d.activity = newActivityBook()
	d.breakers = NewBreakers(res.Health, d.cfg.ReplicaID, d.cfg.BreakerFailures, d.cfg.MaxProbeWait, d.log, d.breakerChanged)
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	watchErr := make(chan error, 1)
	go func() { watchErr <- d.dir.Watch(watchCtx) }()
	go func() {
		if err := d.breakers.Watch(watchCtx); err != nil {
			d.log.Error("watching endpoint breakers failed", "error", err)
		}
	}()
	go d.activity.flushEvery(watchCtx, res.Health, d.cfg.ReplicaID, 2*time.Second)
	go d.keepProvisioned(watchCtx)
	select {
	case <-d.dir.Ready():
	case err := <-watchErr:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}

	units := []string{routerUnit}
	for p := 0; p < d.cfg.Partitions; p++ {
		units = append(units, "p"+strconv.Itoa(p))
	}
	own := subscriber.NewOwnership(res.Members, res.Leases, d.cfg.ReplicaID, d.cfg.Takeover, units, d.runUnit,
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

func (d *Dispatcher) provision(ctx context.Context) (*subscriber.Resources, error) {
	return subscriber.Provision(ctx, d.js, d.names, subscriber.StreamSettings{
		MaxAge: d.cfg.StreamMaxAge, Replicas: d.cfg.StreamReplicas, DLQMaxAge: d.cfg.DLQMaxAge,
		Takeover: d.cfg.Takeover, RoomTTL: d.cfg.RoomTTL,
	})
}

// keepProvisioned puts back streams and buckets that disappeared (NATS restarted without its
// storage, or an operator deleted one), so the replica recovers without a restart. Messages
// that were in a lost stream are gone with it; durable NATS storage is what prevents that.
func (d *Dispatcher) keepProvisioned(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		missing, err := subscriber.Missing(ctx, d.js, d.names)
		if err != nil || !missing {
			continue
		}
		d.log.Warn("a roomhook stream or bucket is missing; creating it again")
		if _, err := d.provision(ctx); err != nil {
			d.log.Error("re-provisioning failed", "error", err)
			continue
		}
		if err := d.dir.Register(ctx); err != nil {
			d.log.Error("re-registering endpoints failed", "error", err)
		}
	}
}

func (d *Dispatcher) runUnit(ctx context.Context, unit string) {
	if unit == routerUnit {
		d.runRouter(ctx)
		return
	}
	p, err := strconv.Atoi(strings.TrimPrefix(unit, "p"))
	if err != nil {
		return
	}
	d.runPartition(ctx, p)
}

// runPartition runs a worker for every known endpoint on partition p, starting new ones as
// endpoints appear, until ctx ends.
func (d *Dispatcher) runPartition(ctx context.Context, p int) {
	running := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		eps, changed := d.dir.Snapshot()
		for _, ep := range eps {
			if running[ep.ID] {
				continue
			}
			running[ep.ID] = true
			wg.Add(1)
			go func(ep EndpointView) {
				defer wg.Done()
				d.runWorker(ctx, ep, p)
			}(ep)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// breakerChanged keeps the breaker gauge in step with the shared breakers.
func (d *Dispatcher) breakerChanged(id string, prev, next BreakerState) {
	label := "per_room"
	if v, ok := d.dir.Get(id); ok && v.Global {
		label = id
	}
	wasOpen, isOpen := prev == BreakerOpen || prev == BreakerHalfOpen, next == BreakerOpen || next == BreakerHalfOpen
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
