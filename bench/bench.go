package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Scenario names, in the order they run.
const (
	ScenarioRaw        = "raw"
	ScenarioThroughput = "throughput"
	ScenarioNotifier   = "notifier"
	ScenarioLatency    = "latency"
	ScenarioFanOut     = "fanout"
	ScenarioPerRoom    = "perroom"
	ScenarioIsolation  = "isolation"
	ScenarioBacklog    = "backlog"
	ScenarioScaleOut   = "scaleout"
)

// Scenarios lists every scenario name in the order they run.
func Scenarios() []string {
	return []string{ScenarioRaw, ScenarioThroughput, ScenarioNotifier, ScenarioLatency, ScenarioFanOut, ScenarioPerRoom, ScenarioIsolation, ScenarioBacklog, ScenarioScaleOut}
}

// Sizes are how much each scenario does.
type Sizes struct {
	Rooms        int // meetings running at once; also the raw client's concurrency
	Participants int // per meeting

	RawRequests      int           // raw: POSTs
	ThroughputEvents int           // throughput: events
	LatencyRate      float64       // latency and isolation: events per second
	LatencyFor       time.Duration // latency: how long to publish at LatencyRate
	FanOutEndpoints  int           // fanout: endpoints every event goes to, compared with 1
	FanOutEvents     int           // fanout: events, the same in both phases
	FanOutRooms      int           // fanout: meetings at once (0: Rooms); each endpoint holds up to one connection per room
	PerRoomRooms     int           // perroom: meetings at once, each room_created with its own URL
	PerRoomEvents    int           // perroom: events in each phase (without and with per-room URLs)
	IdleFor          time.Duration // perroom: how long idle CPU is measured once all is delivered
	NewRoomSamples   int           // perroom: new rooms registered one at a time at idle
	IsolationFor     time.Duration // isolation: each latency phase (alone, beside the bad endpoints)
	IsolationEvents  int           // isolation: events of each throughput phase
	BacklogEvents    int           // backlog: events queued while the endpoint is down
	ScaleOutEvents   int           // scaleout: events per phase
	ScaleOutRooms    int           // scaleout: meetings at once (each room's events go one by one)
	ScaleOutLatency  time.Duration // scaleout: receiver time per request
	ScaleOutReplicas int           // scaleout: replicas compared with one
}

// FullSizes are the sizes of a full run (several minutes per run).
func FullSizes() Sizes {
	return Sizes{
		Rooms: 100, Participants: 5,
		RawRequests: 50_000, ThroughputEvents: 50_000,
		LatencyRate: 1000, LatencyFor: 30 * time.Second,
		FanOutEndpoints: 200, FanOutEvents: 2_000, FanOutRooms: 10,
		PerRoomRooms: 10_000, PerRoomEvents: 50_000, IdleFor: 30 * time.Second, NewRoomSamples: 200,
		IsolationFor: 20 * time.Second, IsolationEvents: 20_000,
		BacklogEvents:  500_000,
		ScaleOutEvents: 30_000, ScaleOutRooms: 500, ScaleOutLatency: 20 * time.Millisecond, ScaleOutReplicas: 3,
	}
}

// QuickSizes shrink every scenario so that three runs of all of them take about two minutes
// on two CPUs: a smoke test, not a measurement.
func QuickSizes() Sizes {
	return Sizes{
		Rooms: 50, Participants: 4,
		RawRequests: 3_000, ThroughputEvents: 3_000,
		LatencyRate: 1000, LatencyFor: 2 * time.Second,
		FanOutEndpoints: 50, FanOutEvents: 120,
		PerRoomRooms: 300, PerRoomEvents: 3_000, IdleFor: 3 * time.Second, NewRoomSamples: 50,
		IsolationFor: 2 * time.Second, IsolationEvents: 2_000,
		BacklogEvents:  5_000,
		ScaleOutEvents: 2_000, ScaleOutRooms: 200, ScaleOutLatency: 20 * time.Millisecond, ScaleOutReplicas: 3,
	}
}

// Options configure a benchmark.
type Options struct {
	// NATSURL is an existing NATS server with JetStream; empty starts an embedded one for
	// every scenario run. On a shared server every run uses its own region and deletes its
	// streams afterwards.
	NATSURL string
	// Runs is how many times each scenario runs (default 3); figures are medians.
	Runs int
	// Sizes is how much each scenario does (default FullSizes).
	Sizes Sizes
	// Scenarios selects scenarios by name (default all).
	Scenarios []string
	// ReplicaCommand, when set, runs the backlog scenario's replica as a child process (for
	// example {"/usr/local/bin/roomhook", "serve"}, configured through ROOMHOOK_* variables) so
	// that its own peak RSS is measured. Otherwise the replica runs in-process and the figure
	// is the peak Go heap in use of the whole benchmark process, NATS server included.
	ReplicaCommand []string
	// Partitions and MaxInFlight configure the replicas (defaults 8 and 256, as roomhook's).
	Partitions, MaxInFlight int
	// Takeover is the replicas' takeover budget (default 10s, as roomhook's); shorter makes
	// replicas share partitions sooner at the cost of more frequent lease and ack traffic.
	Takeover time.Duration
	// IdleCPUProfile, when set, is a file to write a CPU profile of the perroom scenario's
	// idle window to (of its last run), to find what costs CPU while nothing is delivered.
	// It cannot be combined with a profile of the whole run.
	IdleCPUProfile string
	// Progress gets a line per scenario run; nil discards them.
	Progress io.Writer
	// Log receives the replicas' logs; nil discards them.
	Log *slog.Logger
}

// ErrOptions marks unusable Options.
var ErrOptions = errors.New("invalid benchmark options")

func (o *Options) fill() error {
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Sizes == (Sizes{}) {
		o.Sizes = FullSizes()
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios()
	}
	if o.Partitions == 0 {
		o.Partitions = 8
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 256
	}
	if o.Takeover == 0 {
		o.Takeover = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case o.Runs < 1:
		return fmt.Errorf("%w: runs must be at least 1", ErrOptions)
	case o.Sizes.Rooms < 1 || o.Sizes.ScaleOutRooms < 1 || o.Sizes.FanOutEndpoints < 1 || o.Sizes.ScaleOutReplicas < 2:
		return fmt.Errorf("%w: sizes need rooms, endpoints and at least 2 scale-out replicas", ErrOptions)
	case slices.Contains(o.Scenarios, ScenarioPerRoom) && (o.Sizes.PerRoomRooms < 1 || o.Sizes.PerRoomEvents < o.Sizes.PerRoomRooms ||
		o.Sizes.NewRoomSamples < 1 || o.Sizes.IdleFor <= 0):
		return fmt.Errorf("%w: the perroom scenario needs rooms, at least as many events, new-room samples and an idle time", ErrOptions)
	case slices.Contains(o.Scenarios, ScenarioIsolation) && o.Sizes.IsolationEvents < 1:
		return fmt.Errorf("%w: the isolation scenario needs events for its throughput phases", ErrOptions)
	case o.Sizes.LatencyRate <= 0:
		return fmt.Errorf("%w: latency rate must be positive", ErrOptions)
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios(), s) {
			return fmt.Errorf("%w: unknown scenario %q (have %v)", ErrOptions, s, Scenarios())
		}
	}
	return nil
}

// Run runs the selected scenarios Runs times each, run after run, and returns every figure.
// It stops at the first error, returning what was measured so far with it.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	b := &bench{opts: opts}
	rep := newReport(opts)
	rep.OpenFiles = raiseOpenFiles()
	for run := 1; run <= opts.Runs; run++ {
		figs := map[string]float64{}
		for _, name := range Scenarios() {
			if !slices.Contains(opts.Scenarios, name) {
				continue
			}
			start := time.Now()
			got, err := b.scenario(name)(ctx, run)
			if err != nil {
				return rep, fmt.Errorf("%s, run %d: %w", name, run, err)
			}
			for k, v := range got {
				figs[k] = v
			}
			fmt.Fprintf(opts.Progress, "%-10s run %d/%d (%s): %s\n", name, run, opts.Runs, time.Since(start).Round(100*time.Millisecond), rep.describe(name, got))
		}
		if raw, ok := figs[figRaw]; ok && raw > 0 {
			if thr, ok := figs[figThroughput]; ok {
				figs[figThroughputRatio] = thr / raw
			}
		}
		if raw, ok := figs[figRawCPU]; ok {
			if thr, ok := figs[figThroughputCPU]; ok {
				figs[figThroughputAbove] = thr - raw
			}
		}
		if lk, ok := figs[figNotifier]; ok && lk > 0 {
			if thr, ok := figs[figThroughput]; ok {
				figs[figNotifierRatio] = thr / lk
			}
		}
		rep.add(figs)
		rep.Notes = append(rep.Notes, b.notes...)
		b.notes = nil
	}
	return rep, nil
}

// bench is one benchmark in progress.
type bench struct {
	opts  Options
	notes []string // anomalies seen (events out of order, rejected requests)
}

type scenarioFunc func(ctx context.Context, run int) (map[string]float64, error)

func (b *bench) scenario(name string) scenarioFunc {
	switch name {
	case ScenarioRaw:
		return b.raw
	case ScenarioThroughput:
		return b.throughput
	case ScenarioNotifier:
		return b.notifier
	case ScenarioLatency:
		return b.latency
	case ScenarioFanOut:
		return b.fanOut
	case ScenarioPerRoom:
		return b.perRoom
	case ScenarioIsolation:
		return b.isolation
	case ScenarioBacklog:
		return b.backlog
	}
	return b.scaleOut
}

func (b *bench) notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}
