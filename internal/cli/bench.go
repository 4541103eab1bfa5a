package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/roomhook/roomhook/bench"
	"github.com/roomhook/roomhook/internal/server"
)

// Bench is `roomhook bench`: the end-to-end benchmark, one table of figures on stdout.
func Bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: roomhook bench [flags]\n\nRuns the end-to-end benchmark (scenarios: %s) and prints one Markdown table.\n\nFlags:\n",
			strings.Join(bench.Scenarios(), ", "))
		fs.PrintDefaults()
	}
	natsURL := fs.String("nats", "", "NATS server with JetStream to use; empty starts an embedded one per scenario run")
	runs := fs.Int("runs", 3, "runs of each scenario; figures are medians with min and max")
	quick := fs.Bool("quick", false, "small sizes: a smoke test that finishes in about two minutes")
	scenarios := fs.String("scenario", "", "comma-separated scenarios to run (default all)")
	rooms := fs.Int("rooms", 0, "meetings running at once in the raw, throughput, notifier and latency scenarios (default 100, 50 with --quick)")
	fanOut := fs.Int("fanout-endpoints", 0, "endpoints every event goes to in the fanout scenario, compared with 1 (default 200, 50 with --quick)")
	perRoom := fs.Int("perroom-rooms", 0, "rooms, each with its own URL, in the perroom scenario, with 5 events per room (default 10000, 300 with --quick)")
	backlog := fs.Int("backlog", 0, "events queued in the backlog scenario (default 500000, 5000 with --quick)")
	replicaProcess := fs.Bool("replica-process", true, "run the backlog replica as a child `roomhook serve` process so its own RSS is measured")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run to this file (go tool pprof -sample_index=alloc_space)")
	idleProfile := fs.String("idle-cpuprofile", "", "write a CPU profile of the perroom scenario's idle window to this file (not with --cpuprofile)")
	partitions := fs.Int("partitions", 0, "the replicas' ROOMHOOK_PARTITIONS (default 8)")
	maxInFlight := fs.Int("max-in-flight", 0, "the replicas' ROOMHOOK_MAX_IN_FLIGHT (default 256)")
	takeover := fs.Duration("takeover", 0, "the replicas' ROOMHOOK_TAKEOVER (default 10s, as roomhook's)")
	verbose := fs.Bool("v", false, "show the replicas' warnings and errors")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	opts := bench.Options{NATSURL: *natsURL, Runs: *runs, Sizes: bench.FullSizes(), Progress: os.Stderr}
	if *quick {
		opts.Sizes = bench.QuickSizes()
	}
	opts.Partitions, opts.MaxInFlight = *partitions, *maxInFlight
	opts.IdleCPUProfile = *idleProfile
	if *idleProfile != "" && *cpuProfile != "" {
		return fmt.Errorf("bench: --idle-cpuprofile and --cpuprofile cannot be used together (one CPU profile at a time)")
	}
	if *takeover > 0 {
		opts.Takeover = *takeover
	}
	if *backlog > 0 {
		opts.Sizes.BacklogEvents = *backlog
	}
	if *rooms > 0 {
		opts.Sizes.Rooms = *rooms
	}
	if *fanOut > 0 {
		opts.Sizes.FanOutEndpoints = *fanOut
	}
	if *perRoom > 0 {
		opts.Sizes.PerRoomRooms, opts.Sizes.PerRoomEvents = *perRoom, 5*(*perRoom)
	}
	if *scenarios != "" {
		opts.Scenarios = strings.Split(*scenarios, ",")
	}
	if *replicaProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: finding this program for the replica process: %w", err)
		}
		opts.ReplicaCommand = []string{exe, "serve"}
	}
	if *verbose {
		c, err := server.LoadConfig(server.ScopeClient)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		c.LogLevel = "warn"
		opts.Log = server.NewLogger(c, os.Stderr)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	rep, err := bench.Run(ctx, opts)
	if *memProfile != "" {
		if werr := writeAllocProfile(*memProfile); werr != nil && err == nil {
			err = werr
		}
	}
	if rep != nil {
		if werr := rep.WriteTable(os.Stdout); werr != nil && err == nil {
			err = werr
		}
	}
	fmt.Fprintf(os.Stderr, "bench took %s\n", time.Since(start).Round(time.Second))
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// writeAllocProfile writes what the process has allocated since it started, by call site.
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return nil
}
