package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/traffic"
)

// perRoom is issue 9's per-room scenario. Phase A plays PerRoomEvents events over PerRoomRooms
// meetings to 2 global endpoints; phase B, in a fresh env, plays the same events with every
// room_created carrying a URL of its own (as plugNmeet's LMS plugins do: a path and a
// per-meeting token), so distinct endpoints grow with rooms. Every delivery must arrive, each
// per-room one at its room's URL only, in order (the receivers check), and the global
// endpoints' rate in B is compared with A's. During B the server's consumers are sampled:
// roomhook may have one per partition and a few of its own, plus one per spill queue being
// drained. Once everything is delivered, B measures the CPU the whole process (replica and
// nats-server, both in-process) uses while idle with every endpoint known, then registers
// new rooms with new URLs one at a time and times each room_created to its receipt.
func (b *bench) perRoom(ctx context.Context, run int) (map[string]float64, error) {
	a, err := b.perRoomPhase(ctx, run, false)
	if err != nil {
		return nil, fmt.Errorf("phase A (global endpoints only): %w", err)
	}
	bs, err := b.perRoomPhase(ctx, run, true)
	if err != nil {
		return nil, fmt.Errorf("phase B (a URL per room): %w", err)
	}
	figs := map[string]float64{
		figPerRoomA: a.globalRate, figPerRoomB: bs.globalRate, figPerRoomKnown: float64(bs.known),
		figPerRoomPeak: float64(bs.peakConsumers), figPerRoomSteady: float64(bs.peakSteady), figPerRoomDraining: float64(bs.peakDraining),
		figPerRoomNewP50: bs.newP50, figPerRoomNewP99: bs.newP99, figPerRoomDups: a.repeats + bs.repeats,
	}
	if a.cpuPerEvent >= 0 && bs.cpuPerEvent >= 0 {
		figs[figPerRoomACPU], figs[figPerRoomBCPU] = a.cpuPerEvent, bs.cpuPerEvent
		figs[figPerRoomExtraCPU] = bs.cpuPerEvent - a.cpuPerEvent
	}
	if bs.idleCPU >= 0 {
		figs[figPerRoomIdleCPU] = bs.idleCPU
	}
	if a.globalRate > 0 {
		figs[figPerRoomRatio] = bs.globalRate / a.globalRate
		figs[figPerRoomAllRatio] = bs.allRate / a.globalRate
	}
	return figs, nil
}

// perRoomResult is what one phase of the per-room scenario measured; phase A measures only
// the rate and the repeats.
type perRoomResult struct {
	globalRate  float64 // deliveries per second to the 2 global endpoints together
	cpuPerEvent float64 // whole-process CPU µs per event, every delivery of it included; negative: not measured
	allRate     float64 // B: deliveries per second to the global endpoints and the rooms' URLs together
	repeats     float64
	known       int // distinct per-room URLs registered by the traffic

	peakConsumers, peakSteady, peakDraining int

	idleCPU        float64 // % of one core; negative when it could not be measured
	newP50, newP99 float64 // ms from publish of a new room's room_created to its receipt there
}

// roomPath is the path of a room's own URL on the per-room receiver.
func roomPath(room string) string { return "/room/" + room }

// roomURL is a room's own URL: its path, and a per-meeting token in the query as LMS plugins
// put one there.
func roomURL(base, room string) string {
	sum := sha256.Sum256([]byte(room))
	return base + roomPath(room) + "?token=" + hex.EncodeToString(sum[:8])
}

// perRoomURLs is a traffic.Source that gives every room_created of src the room's own URL.
type perRoomURLs struct {
	src        traffic.Source
	base       string
	registered int // room_created events given a URL
}

// Next is src's next event, a room_created with its room's URL.
func (p *perRoomURLs) Next() (*roomhookv1.Event, bool) {
	evt, ok := p.src.Next()
	if ok && evt.GetEvent() == schema.EventRoomCreated {
		evt.WebhookUrls = []string{roomURL(p.base, evt.GetRoom().GetRoomId())}
		p.registered++
	}
	return evt, ok
}

func (b *bench) perRoomPhase(ctx context.Context, run int, withURLs bool) (perRoomResult, error) {
	var res perRoomResult
	e, err := b.newEnv()
	if err != nil {
		return res, err
	}
	defer e.close()
	s := b.opts.Sizes

	// The 2 global endpoints, each on its own HTTP server, and one receiver serving every
	// room's URL (distinct URLs are distinct endpoints; that they share a port does not matter).
	grc, groute, err := newRoutedReceiver(0)
	if err != nil {
		return res, err
	}
	var globals []string
	for i := 1; i <= 2; i++ {
		base, err := e.serve(grc)
		if err != nil {
			return res, err
		}
		globals = append(globals, fmt.Sprintf("%s/global/%d", base, i))
	}
	rroute := &routing{}
	var misrouted atomic.Int64
	rrc, err := receiver.New(receiver.Options{Credentials: benchCredentials, OnEvent: func(d receiver.Delivery) {
		if d.Path != roomPath(d.Room) {
			misrouted.Add(1)
		}
		rroute.onEvent(d)
	}})
	if err != nil {
		return res, err
	}
	roomBase, err := e.serve(rrc)
	if err != nil {
		return res, err
	}

	r, err := e.startReplica("perroom", endpoints(globals...), sender.DefaultRetrySchedule())
	if err != nil {
		return res, err
	}
	if err := e.waitOwned(ctx, []*replica{r}, 30*time.Second); err != nil {
		return res, err
	}
	phase := "a"
	if withURLs {
		phase = "b"
	}
	name := runName("pr"+phase, run)
	if err := e.warmUp(ctx, groute, "warm"+name, 2); err != nil {
		return res, err
	}

	g, err := traffic.NewGenerator(traffic.Config{Run: name, Seed: 1, Rooms: s.PerRoomRooms, Participants: s.Participants, Continuous: true})
	if err != nil {
		return res, err
	}
	var src traffic.Source = g
	var urls *perRoomURLs
	var cs *consumerSampler
	if withURLs {
		urls = &perRoomURLs{src: g, base: roomBase}
		src = urls
		cs = e.sampleConsumers(ctx, 100*time.Millisecond)
		defer cs.finish()
	}
	gtr := groute.follow(newTracker(name, false))
	rtr := rroute.follow(newTracker(name, false))
	cpu := startCPU()
	start, err := e.publishFrom(ctx, name, src, s.PerRoomEvents, 0, gtr)
	if err != nil {
		return res, err
	}
	if err := gtr.wait(ctx, int64(2*s.PerRoomEvents), "global deliveries"); err != nil {
		return res, err
	}
	res.globalRate = perSecond(2*s.PerRoomEvents, gtr.lastReceipt().Sub(start))
	what := "perroom " + strings.ToUpper(phase)
	res.cpuPerEvent = -1
	if !withURLs {
		if per, ok := cpu.microsPer(s.PerRoomEvents); ok {
			res.cpuPerEvent = per
		}
		res.repeats = b.checkReceiver(what, run, grc)
		return res, nil
	}
	if err := rtr.wait(ctx, int64(s.PerRoomEvents), "per-room deliveries"); err != nil {
		return res, err
	}
	if per, ok := cpu.microsPer(s.PerRoomEvents); ok {
		res.cpuPerEvent = per
	}
	last := gtr.lastReceipt()
	if r := rtr.lastReceipt(); r.After(last) {
		last = r
	}
	res.allRate = perSecond(3*s.PerRoomEvents, last.Sub(start))
	res.known = urls.registered
	if paths := len(rrc.Stats().Paths); paths != urls.registered {
		b.notef("%s run %d: per-room deliveries reached %d URLs of the %d registered", what, run, paths, urls.registered)
	}

	// Drained spill queues lose their consumer; then the count is at its floor and nothing
	// is left to do: the process is idle.
	if err := e.waitNoDrainers(ctx, 30*time.Second); err != nil {
		b.notef("%s run %d: %v", what, run, err)
	}
	cs.finish()
	peak := cs.result()
	res.peakConsumers, res.peakSteady, res.peakDraining = peak.total, peak.steady, peak.draining
	if peak.err != nil {
		b.notef("%s run %d: counting consumers: %v", what, run, peak.err)
	}

	if res.idleCPU, err = idleCPU(ctx, s.IdleFor, b.opts.IdleCPUProfile); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		b.notef("%s run %d: idle CPU not measured: %v", what, run, err)
		res.idleCPU = -1
	}

	ntr, err := e.registerNewRooms(ctx, runName("prn", run), roomBase, rroute, s.NewRoomSamples)
	if err != nil {
		return res, err
	}
	res.newP50, res.newP99 = ntr.percentileMS(50), ntr.percentileMS(99)

	res.repeats = b.checkReceiver(what+" global endpoints", run, grc) + b.checkReceiver(what+" per-room URLs", run, rrc)
	if n := misrouted.Load(); n > 0 {
		b.notef("%s run %d: %d per-room deliveries reached another room's URL", what, run, n)
	}
	return res, nil
}

// registerNewRooms publishes, one at a time, room_created events of new rooms each with a new
// URL of its own and waits for each at its URL: the tracker has their times from publish to
// receipt.
func (e *env) registerNewRooms(ctx context.Context, run, base string, route *routing, n int) (*tracker, error) {
	_, js, err := e.connect("roomhook-bench-publisher")
	if err != nil {
		return nil, err
	}
	g, err := traffic.NewGenerator(traffic.Config{Run: run, Seed: 2, Rooms: n, Participants: 1})
	if err != nil {
		return nil, err
	}
	tr := route.follow(newTracker(run, true))
	for sent := 0; sent < n; {
		evt, ok := g.Next()
		if !ok {
			return nil, fmt.Errorf("the traffic ran out after %d of %d new rooms", sent, n)
		}
		if evt.GetEvent() != schema.EventRoomCreated {
			continue
		}
		evt.WebhookUrls = []string{roomURL(base, evt.GetRoom().GetRoomId())}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		tr.published(evt.GetId(), time.Now())
		_, err := schema.Publish(pctx, js, e.region, evt)
		cancel()
		if err != nil {
			return nil, err
		}
		sent++
		if err := tr.wait(ctx, int64(sent), "new room"); err != nil {
			return nil, err
		}
		// A pause between rooms, so that each one is registered on an idle pipeline.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return tr, nil
}

// idleCPU is the CPU time this process uses over d, as % of one core. With a profile path it
// also writes a CPU profile of those d there (each run overwrites the last).
func idleCPU(ctx context.Context, d time.Duration, profile string) (float64, error) {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return 0, fmt.Errorf("idle CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, fmt.Errorf("idle CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	before, err := processCPU()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	after, err := processCPU()
	if err != nil {
		return 0, err
	}
	return 100 * float64(after-before) / float64(time.Since(start)), nil
}

// consumerPeaks are the highest consumer counts a consumerSampler saw.
type consumerPeaks struct {
	total    int   // every consumer of the region
	draining int   // those draining a spill queue
	steady   int   // total less draining, sample by sample
	err      error // the last error counting, if any
}

// consumerSampler counts the region's consumers until finished.
type consumerSampler struct {
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	peaks consumerPeaks
}

// sampleConsumers counts the region's consumers every interval until finish.
func (e *env) sampleConsumers(ctx context.Context, every time.Duration) *consumerSampler {
	cs := &consumerSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		total, draining, err := e.consumerCount(ctx)
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if err != nil {
			cs.peaks.err = err
			return
		}
		cs.peaks.total = max(cs.peaks.total, total)
		cs.peaks.draining = max(cs.peaks.draining, draining)
		cs.peaks.steady = max(cs.peaks.steady, total-draining)
	}
	go func() {
		defer close(cs.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sample()
			select {
			case <-cs.stop:
				sample()
				return
			case <-t.C:
			}
		}
	}()
	return cs
}

// finish stops sampling, after one last sample; it may be called more than once.
func (cs *consumerSampler) finish() {
	cs.once.Do(func() { close(cs.stop) })
	<-cs.done
}

func (cs *consumerSampler) result() consumerPeaks {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.peaks
}

// consumerCount is how many consumers the region has and how many of them drain a spill
// queue (spill_<endpoint>_<partition>). On the embedded server it counts every consumer of the
// server, as the dispatcher's tests do; consumers being deleted are in the server's total
// without details, and count as draining (they drained a spill queue a moment ago: the
// others are long-lived). On a shared server it counts the consumers of the region's streams.
func (e *env) consumerCount(ctx context.Context) (total, draining int, err error) {
	if e.server != nil {
		jsz, err := e.server.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true})
		if err != nil {
			return 0, 0, err
		}
		for _, a := range jsz.AccountDetails {
			for _, s := range a.Streams {
				total += len(s.Consumer)
				for _, c := range s.Consumer {
					if strings.HasPrefix(c.Name, "spill_") {
						draining++
					}
				}
			}
		}
		if jsz.Consumers > total {
			draining += jsz.Consumers - total
			total = jsz.Consumers
		}
		return total, draining, nil
	}
	js, err := e.observer()
	if err != nil {
		return 0, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	streams := js.ListStreams(rctx)
	for info := range streams.Info() {
		if strings.HasSuffix(info.Config.Name, e.streamSuffix()) {
			total += info.State.Consumers
		}
	}
	if err := streams.Err(); err != nil {
		return 0, 0, err
	}
	st, err := js.Stream(rctx, e.names().SpillStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return total, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	names := st.ConsumerNames(rctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, "spill_") {
			draining++
		}
	}
	return total, draining, names.Err()
}

// waitNoDrainers waits until no consumer drains a spill queue.
func (e *env) waitNoDrainers(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, draining, err := e.consumerCount(ctx)
		if err == nil && draining == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d spill queues still drained %s after every delivery arrived (last error: %v)", draining, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
