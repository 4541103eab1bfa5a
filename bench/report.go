package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Figure keys: one per table row.
const (
	figRaw             = "raw"
	figThroughput      = "throughput"
	figThroughputRatio = "throughput_ratio"
	figRawCPU          = "raw_cpu"
	figThroughputCPU   = "throughput_cpu"
	figThroughputAbove = "throughput_cpu_above_raw"
	figNotifier        = "notifier"
	figNotifierRatio   = "notifier_ratio"
	figP50             = "p50"
	figP99             = "p99"
	figP999            = "p999"
	figThroughputDups  = "throughput_repeats"
	figLatencyDups     = "latency_repeats"
	figFanOne          = "fanout_one"
	figFanOut          = "fanout"
	figFanRatio        = "fanout_ratio"
	figFanStoredOne    = "fanout_stored_one"
	figFanStoredMany   = "fanout_stored_many"
	figFanDups         = "fanout_repeats"
	figFanRetries      = "fanout_retries"
	figPerRoomA        = "perroom_a"
	figPerRoomB        = "perroom_b"
	figPerRoomRatio    = "perroom_ratio"
	figPerRoomAllRatio = "perroom_all_ratio"
	figPerRoomACPU     = "perroom_a_cpu"
	figPerRoomBCPU     = "perroom_b_cpu"
	figPerRoomExtraCPU = "perroom_extra_cpu"
	figPerRoomKnown    = "perroom_known"
	figPerRoomPeak     = "perroom_consumers"
	figPerRoomSteady   = "perroom_consumers_steady"
	figPerRoomDraining = "perroom_draining"
	figPerRoomIdleCPU  = "perroom_idle_cpu"
	figPerRoomNewP50   = "perroom_new_p50"
	figPerRoomNewP99   = "perroom_new_p99"
	figPerRoomDups     = "perroom_repeats"
	figIsoDups         = "iso_repeats"
	figBacklogDups     = "backlog_repeats"
	figScaleDups       = "scale_repeats"
	figIsoAlone        = "iso_alone"
	figIsoBeside       = "iso_beside"
	figIsoRatio        = "iso_ratio"
	figIsoRateAlone    = "iso_rate_alone"
	figIsoRateBeside   = "iso_rate_beside"
	figIsoRateRatio    = "iso_rate_ratio"
	figIsoPerMessage   = "iso_per_message"
	figBacklogQueue    = "backlog_queue"
	figBacklogMemory   = "backlog_memory"
	figBacklogResume   = "backlog_resume"
	figBacklogDrain    = "backlog_drain"
	figScaleOne        = "scale_one"
	figScaleMany       = "scale_many"
	figScaleRatio      = "scale_ratio"
)

// rowSpec is what a figure means and what it is held to.
type rowSpec struct {
	key, scenario, figure string
	target                string
	met                   func(median float64) bool
	zeroOK                bool // a count that is 0 in a healthy run (repeats, spill drainers), or a difference that a tiny run may put at 0 or below
}

// repeatsFigure is the figure of a scenario's repeats row.
const repeatsFigure = "repeated deliveries (an id again at the same URL)"

func rowSpecs(o Options) []rowSpec {
	s := o.Sizes
	memory := "peak Go heap in use, whole bench process (MB)"
	if len(o.ReplicaCommand) > 0 {
		memory = "peak RSS of the replica process (MB), run as in a 256 MiB container (GOMEMLIMIT 230 MiB, as roomhook sets itself there)"
	}
	return []rowSpec{
		{figRaw, ScenarioRaw, fmt.Sprintf("signed POSTs/s, %d concurrent, no NATS", s.Rooms), "", nil, false},
		{figRawCPU, ScenarioRaw, "CPU µs per POST, whole process (client, signing, receiver)", "", nil, false},
		{figThroughput, ScenarioThroughput, "events/s delivered, 1 endpoint", "", nil, false},
		{figThroughputRatio, ScenarioThroughput, "ratio to raw", ">= 0.50", func(m float64) bool { return m >= 0.5 }, false},
		{figThroughputDups, ScenarioThroughput, repeatsFigure, "", nil, true},
		{figThroughputCPU, ScenarioThroughput, "CPU µs per event delivered, whole process (publisher, nats-server, roomhook, receiver)", "", nil, false},
		{figThroughputAbove, ScenarioThroughput, "CPU µs per event above raw's per POST: what publishing, nats-server and roomhook add", "", nil, true},
		{figNotifier, ScenarioNotifier, "events/s delivered by LiveKit's ResourceURLNotifier (in memory, no NATS), 1 endpoint", "", nil, false},
		{figNotifierRatio, ScenarioNotifier, "roomhook throughput / notifier", ">= 1", func(m float64) bool { return m >= 1 }, false},
		{figP50, ScenarioLatency, fmt.Sprintf("p50 ms at %g ev/s", s.LatencyRate), "", nil, false},
		{figP99, ScenarioLatency, fmt.Sprintf("p99 ms at %g ev/s", s.LatencyRate), "<= 5", func(m float64) bool { return m <= 5 }, false},
		{figP999, ScenarioLatency, fmt.Sprintf("p99.9 ms at %g ev/s", s.LatencyRate), "", nil, false},
		{figLatencyDups, ScenarioLatency, repeatsFigure, "", nil, true},
		{figFanOne, ScenarioFanOut, "deliveries/s, 1 endpoint", "", nil, false},
		{figFanOut, ScenarioFanOut, fmt.Sprintf("deliveries/s, %d endpoints (same events)", s.FanOutEndpoints), "", nil, false},
		{figFanRatio, ScenarioFanOut, fmt.Sprintf("ratio %d endpoints to 1", s.FanOutEndpoints), ">= 0.7", func(m float64) bool { return m >= 0.7 }, false},
		{figFanStoredOne, ScenarioFanOut, "messages stored per event (partition + spill streams), 1 endpoint", "", nil, false},
		{figFanStoredMany, ScenarioFanOut, fmt.Sprintf("messages stored per event (partition + spill streams), %d endpoints", s.FanOutEndpoints),
			"<= 1.1", func(m float64) bool { return m <= 1.1 }, false},
		{figFanDups, ScenarioFanOut, repeatsFigure + ", both phases", "", nil, true},
		{figFanRetries, ScenarioFanOut, "retries scheduled after failed attempts (a timed-out attempt the receiver had is a repeat), both phases", "", nil, true},
		{figPerRoomA, ScenarioPerRoom, fmt.Sprintf("A: global deliveries/s, 2 global endpoints, %d rooms", s.PerRoomRooms), "", nil, false},
		{figPerRoomB, ScenarioPerRoom, "B: global deliveries/s, the same events, each room_created with its own URL", "", nil, false},
		{figPerRoomRatio, ScenarioPerRoom, "ratio B to A", ">= 0.8", func(m float64) bool { return m >= 0.8 }, false},
		{figPerRoomAllRatio, ScenarioPerRoom, "ratio B to A of all deliveries/s (B also delivers one per event to its room's URL: 1.5x A's work)", "", nil, false},
		{figPerRoomACPU, ScenarioPerRoom, "A: CPU µs per event (its 2 deliveries), whole process", "", nil, false},
		{figPerRoomBCPU, ScenarioPerRoom, "B: CPU µs per event (its 3 deliveries), whole process", "", nil, false},
		{figPerRoomExtraCPU, ScenarioPerRoom, "B - A: CPU µs of one per-room delivery, its share of registering the URL included", "", nil, true},
		{figPerRoomKnown, ScenarioPerRoom, "B: distinct per-room URLs registered (endpoints known)", "", nil, false},
		{figPerRoomPeak, ScenarioPerRoom, "B: peak consumers on the server", "", nil, false},
		{figPerRoomSteady, ScenarioPerRoom, "B: peak consumers not draining a spill queue (bound: partitions + 16)",
			fmt.Sprintf("<= %d", o.Partitions+16), func(m float64) bool { return m <= float64(o.Partitions+16) }, false},
		{figPerRoomDraining, ScenarioPerRoom, "B: peak consumers draining a spill queue (endpoints with a backlog)", "", nil, true},
		{figPerRoomIdleCPU, ScenarioPerRoom, fmt.Sprintf("idle CPU %% of one core over %s, roomhook + nats-server (whole bench process), all endpoints known", s.IdleFor),
			"<= 3", func(m float64) bool { return m <= 3 }, true},
		{figPerRoomNewP50, ScenarioPerRoom, "new room, new URL, at idle: p50 ms from publish of room_created to receipt at its URL", "", nil, false},
		{figPerRoomNewP99, ScenarioPerRoom, fmt.Sprintf("new room, new URL, at idle: p99 ms (%d rooms one at a time)", s.NewRoomSamples),
			"<= 50", func(m float64) bool { return m <= 50 }, false},
		{figPerRoomDups, ScenarioPerRoom, repeatsFigure + ", A + B + new rooms", "", nil, true},
		{figIsoAlone, ScenarioIsolation, "healthy p99 ms, alone", "", nil, false},
		{figIsoBeside, ScenarioIsolation, "healthy p99 ms, beside down + never answering + answering in 2 s", "", nil, false},
		{figIsoRatio, ScenarioIsolation, "p99 ratio beside to alone", "<= 2", func(m float64) bool { return m <= 2 }, false},
		{figIsoRateAlone, ScenarioIsolation, fmt.Sprintf("healthy deliveries/s, alone (%d events as fast as possible)", s.IsolationEvents), "", nil, false},
		{figIsoRateBeside, ScenarioIsolation, "healthy deliveries/s, beside the same 3 bad endpoints", "", nil, false},
		{figIsoRateRatio, ScenarioIsolation, "deliveries/s ratio beside to alone", ">= 0.8", func(m float64) bool { return m >= 0.8 }, false},
		{figIsoPerMessage, ScenarioIsolation, "spilled deliveries per stored message, the down endpoint's queues (as fast as possible)", "", nil, false},
		{figIsoDups, ScenarioIsolation, repeatsFigure + " at the healthy endpoint, both phases", "", nil, true},
		{figBacklogQueue, ScenarioBacklog, fmt.Sprintf("events/s queued while down (%d events)", s.BacklogEvents), "", nil, false},
		{figBacklogMemory, ScenarioBacklog, memory, "< 256", func(m float64) bool { return m < 256 }, false},
		{figBacklogResume, ScenarioBacklog, "seconds from its return to the first delivery (breaker probe)", "", nil, false},
		{figBacklogDrain, ScenarioBacklog, "drain events/s, first to last delivery", ">= 5000", func(m float64) bool { return m >= 5000 }, false},
		{figBacklogDups, ScenarioBacklog, repeatsFigure, "", nil, true},
		{figScaleOne, ScenarioScaleOut, fmt.Sprintf("events/s, 1 replica, receiver %s", s.ScaleOutLatency), "", nil, false},
		{figScaleMany, ScenarioScaleOut, fmt.Sprintf("events/s, %d replicas", s.ScaleOutReplicas), "", nil, false},
		{figScaleRatio, ScenarioScaleOut, fmt.Sprintf("ratio %d to 1", s.ScaleOutReplicas), ">= 2.5", func(m float64) bool { return m >= 2.5 }, false},
		{figScaleDups, ScenarioScaleOut, repeatsFigure + ", both phases", "", nil, true},
	}
}

// Row is one figure over every run.
type Row struct {
	Scenario string
	Figure   string
	Values   []float64 // one per run
	Target   string    // "" when none
	met      func(float64) bool
	zeroOK   bool // 0 is a legitimate value (a count of anomalies, an idle figure), or below 0 (a difference)
}

// Median of the runs (the mean of the middle two for an even count).
func (r Row) Median() float64 {
	if len(r.Values) == 0 {
		return 0
	}
	v := slices.Clone(r.Values)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Min of the runs.
func (r Row) Min() float64 {
	if len(r.Values) == 0 {
		return 0
	}
	return slices.Min(r.Values)
}

// Max of the runs.
func (r Row) Max() float64 {
	if len(r.Values) == 0 {
		return 0
	}
	return slices.Max(r.Values)
}

// Met says whether the median meets the target: "yes", "no", or "" without a target.
func (r Row) Met() string {
	switch {
	case r.met == nil || len(r.Values) == 0:
		return ""
	case r.met(r.Median()):
		return "yes"
	}
	return "no"
}

// Report is the outcome of Run.
type Report struct {
	Rows  []Row
	Runs  int
	Sizes Sizes
	NATS  string // "embedded" or the URL's host
	// OpenFiles is the process's open-file limit during the run (0: unknown).
	OpenFiles uint64
	Notes     []string // anomalies seen during the runs
	specs     []rowSpec
	byKey     map[string]int
}

func newReport(o Options) *Report {
	r := &Report{Runs: o.Runs, Sizes: o.Sizes, NATS: "embedded (one per scenario run)", specs: rowSpecs(o), byKey: map[string]int{}}
	if o.NATSURL != "" {
		r.NATS = "external"
	}
	for _, s := range r.specs {
		if !slices.Contains(o.Scenarios, s.scenario) {
			continue
		}
		if (s.key == figThroughputRatio || s.key == figThroughputAbove) && !slices.Contains(o.Scenarios, ScenarioRaw) {
			continue
		}
		if s.key == figNotifierRatio && !slices.Contains(o.Scenarios, ScenarioThroughput) {
			continue
		}
		r.byKey[s.key] = len(r.Rows)
		r.Rows = append(r.Rows, Row{Scenario: s.scenario, Figure: s.figure, Target: s.target, met: s.met, zeroOK: s.zeroOK})
	}
	return r
}

func (r *Report) add(figs map[string]float64) {
	for k, v := range figs {
		if i, ok := r.byKey[k]; ok {
			r.Rows[i].Values = append(r.Rows[i].Values, v)
		}
	}
}

// describe is a progress line's summary of one scenario run.
func (r *Report) describe(scenario string, figs map[string]float64) string {
	var parts []string
	for _, s := range r.specs {
		if v, ok := figs[s.key]; ok && s.scenario == scenario {
			parts = append(parts, s.figure+" "+formatFigure(v))
		}
	}
	return strings.Join(parts, "; ")
}

func formatFigure(v float64) string {
	switch {
	case v >= 1000:
		return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func groupThousands(digits string) string {
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteTable writes the machine, the sizes and one Markdown table of every figure.
func (r *Report) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "machine: %d CPUs (GOMAXPROCS %d), %s memory, %s, %s/%s; NATS: %s; open files: %d\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), totalMemory(), runtime.Version(), runtime.GOOS, runtime.GOARCH, r.NATS, r.OpenFiles)
	s := r.Sizes
	fmt.Fprintf(bw, "runs: %d; sizes: %d rooms x %d participants, raw %d POSTs, throughput %d events, latency %g ev/s for %s, "+
		"fan-out %d events over %d rooms x 1 and x %d endpoints, per-room %d events over %d rooms (idle %s, %d new rooms), "+
		"isolation %s per latency phase and %d events per throughput phase, backlog %d events, scale-out %d events over %d rooms\n\n",
		r.Runs, s.Rooms, s.Participants, s.RawRequests, s.ThroughputEvents, s.LatencyRate, s.LatencyFor,
		s.FanOutEvents, cmp.Or(s.FanOutRooms, s.Rooms), s.FanOutEndpoints, s.PerRoomEvents, s.PerRoomRooms, s.IdleFor, s.NewRoomSamples,
		s.IsolationFor, s.IsolationEvents, s.BacklogEvents, s.ScaleOutEvents, s.ScaleOutRooms)
	fmt.Fprintln(bw, "| scenario | figure | median | min | max | target | met |")
	fmt.Fprintln(bw, "|---|---|---:|---:|---:|---|---|")
	for _, row := range r.Rows {
		if len(row.Values) == 0 {
			continue
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s |\n", row.Scenario, row.Figure,
			formatFigure(row.Median()), formatFigure(row.Min()), formatFigure(row.Max()), row.Target, row.Met())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}

// totalMemory reads MemTotal from /proc/meminfo; "unknown" elsewhere.
func totalMemory() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown"
}
