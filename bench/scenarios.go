package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/subscriber"
	"github.com/roomhook/roomhook/traffic"
)

// runName names a phase's traffic run: [a-z0-9]+, unique within a benchmark.
func runName(prefix string, run int) string { return fmt.Sprintf("%s%d", prefix, run) }

// newReceiver starts a verifying receiver whose deliveries go to the routing's current tracker.
func (e *env) newReceiver(latency time.Duration) (*receiver.Receiver, *routing, string, error) {
	rc, route, err := newRoutedReceiver(latency)
	if err != nil {
		return nil, nil, "", err
	}
	base, err := e.serve(rc)
	return rc, route, base, err
}

// newRoutedReceiver is newReceiver for a scenario that serves the receiver itself.
func newRoutedReceiver(latency time.Duration) (*receiver.Receiver, *routing, error) {
	route := &routing{}
	rc, err := receiver.New(receiver.Options{Credentials: benchCredentials, Latency: latency, OnEvent: route.onEvent})
	return rc, route, err
}

// publish plays run's traffic: events over rooms meetings at rate (0: as fast as possible).
// It returns when everything is published, with the time publishing started.
func (e *env) publish(ctx context.Context, run string, rooms, participants, events int, rate float64, tr *tracker) (time.Time, error) {
	g, err := traffic.NewGenerator(traffic.Config{Run: run, Seed: 1, Rooms: rooms, Participants: participants, Continuous: true})
	if err != nil {
		return time.Time{}, err
	}
	return e.publishFrom(ctx, run, g, events, rate, tr)
}

// pregenerated is a traffic.Source over events made before a timed window opens, as the raw
// and notifier rows make theirs: making synthetic meetings is the benchmark's own work, which
// a media node does whatever carries its webhooks, not a cost of the pipeline it is compared on.
type pregenerated struct {
	events []*roomhookv1.Event
	next   int
}

// pregenerate makes run's first n events over rooms meetings.
func pregenerate(run string, rooms, participants, n int) (*pregenerated, error) {
	g, err := traffic.NewGenerator(traffic.Config{Run: run, Seed: 1, Rooms: rooms, Participants: participants, Continuous: true})
	if err != nil {
		return nil, err
	}
	p := &pregenerated{events: make([]*roomhookv1.Event, 0, n)}
	for range n {
		evt, ok := g.Next()
		if !ok {
			break
		}
		p.events = append(p.events, evt)
	}
	return p, nil
}

// Next returns the next event made in advance, and false once they are all taken.
func (p *pregenerated) Next() (*roomhookv1.Event, bool) {
	if p.next >= len(p.events) {
		return nil, false
	}
	evt := p.events[p.next]
	p.events[p.next] = nil // published: garbage, as a media node's sent event is
	p.next++
	return evt, true
}

// publishFrom is publish with the events of src.
func (e *env) publishFrom(ctx context.Context, run string, src traffic.Source, events int, rate float64, tr *tracker) (time.Time, error) {
	_, js, err := e.connect("roomhook-bench-publisher")
	if err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	st, err := traffic.Publish(ctx, js, src, traffic.PublishOptions{Region: e.region, Rate: rate, Events: events,
		WaitForStream: 30 * time.Second, OnPublish: tr.published})
	if err != nil {
		return start, err
	}
	if st.Published != events || st.Duplicates > 0 || st.Retried > 0 {
		return start, fmt.Errorf("publishing %s: %+v, want %d events stored once", run, st, events)
	}
	return start, nil
}

// warmUp sends a little traffic through and waits for it, so that consumers, connections and
// caches exist before anything is timed.
func (e *env) warmUp(ctx context.Context, route *routing, run string, perEvent int) error {
	events := max(200/perEvent, 20)
	rooms := 20
	if perEvent >= 50 {
		rooms = 5 // a connection per room and endpoint: keep a wide fan-out's sockets few
	}
	tr := route.follow(newTracker(run, false))
	if _, err := e.publish(ctx, run, rooms, 3, events, 0, tr); err != nil {
		return err
	}
	return tr.wait(ctx, int64(events*perEvent), "warm-up")
}

// checkReceiver notes what a healthy benchmark should never show and returns the repeated
// deliveries the receiver saw (the same id again on the same path), which at-least-once
// delivery allows and every scenario reports as a figure of its own.
func (b *bench) checkReceiver(what string, run int, rc *receiver.Receiver) float64 {
	s := rc.Stats()
	if s.OutOfOrder > 0 || s.Rejected > 0 || s.Duplicates > 0 {
		b.notef("%s run %d: receiver saw %d out of order, %d rejected, %d duplicates", what, run, s.OutOfOrder, s.Rejected, s.Duplicates)
	}
	return float64(s.Duplicates)
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// raw POSTs signed bodies with a bare HTTP client, as many at once as the pipeline has rooms.
func (b *bench) raw(ctx context.Context, run int) (map[string]float64, error) {
	e := &env{opts: &b.opts}
	defer e.close()
	rc, route, base, err := e.newReceiver(0)
	if err != nil {
		return nil, err
	}
	name := runName("raw", run)
	s := b.opts.Sizes
	g, err := traffic.NewGenerator(traffic.Config{Run: name, Seed: 1, Rooms: s.Rooms, Participants: s.Participants, Continuous: true})
	if err != nil {
		return nil, err
	}
	bodies := make([][]byte, s.RawRequests)
	for i := range bodies {
		evt, _ := g.Next()
		if bodies[i], err = schema.MarshalBody(evt, schema.Fallback{}); err != nil {
			return nil, err
		}
	}
	tr := route.follow(newTracker(name, false))
	transport := &http.Transport{MaxIdleConnsPerHost: s.Rooms, DisableCompression: true}
	defer transport.CloseIdleConnections()
	signer := signature.Signer{Credentials: benchCredentials}
	url := base + "/raw"

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, s.Rooms)
	cpu := startCPU()
	start := time.Now()
	for w := 0; w < s.Rooms; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				if err == nil {
					err = signer.Sign(req.Header, bodies[i], "", time.Now())
				}
				var resp *http.Response
				if err == nil {
					resp, err = transport.RoundTrip(req)
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuPer, cpuOK := cpu.microsPer(s.RawRequests)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	// The raw client keeps no order per room, so only refusals would be anomalies here.
	if got, st := tr.count.Load(), rc.Stats(); got != int64(s.RawRequests) || st.Rejected > 0 {
		return nil, fmt.Errorf("receiver accepted %d of %d: %v", got, s.RawRequests, st)
	}
	figs := map[string]float64{figRaw: perSecond(s.RawRequests, elapsed)}
	if cpuOK {
		figs[figRawCPU] = cpuPer
	}
	return figs, nil
}

// throughput publishes as fast as possible to one endpoint and times the deliveries.
func (b *bench) throughput(ctx context.Context, run int) (map[string]float64, error) {
	e, err := b.newEnv()
	if err != nil {
		return nil, err
	}
	defer e.close()
	rc, route, base, err := e.newReceiver(0)
	if err != nil {
		return nil, err
	}
	r, err := e.startReplica("throughput", endpoints(base+"/webhook"), sender.DefaultRetrySchedule())
	if err != nil {
		return nil, err
	}
	if err := e.waitOwned(ctx, []*replica{r}, 30*time.Second); err != nil {
		return nil, err
	}
	if err := e.warmUp(ctx, route, runName("warmthr", run), 1); err != nil {
		return nil, err
	}
	s := b.opts.Sizes
	src, err := pregenerate(runName("thr", run), s.Rooms, s.Participants, s.ThroughputEvents)
	if err != nil {
		return nil, err
	}
	tr := route.follow(newTracker(runName("thr", run), false))
	cpu := startCPU()
	start, err := e.publishFrom(ctx, runName("thr", run), src, s.ThroughputEvents, 0, tr)
	if err != nil {
		return nil, err
	}
	if err := tr.wait(ctx, int64(s.ThroughputEvents), "throughput"); err != nil {
		return nil, err
	}
	cpuPer, cpuOK := cpu.microsPer(s.ThroughputEvents)
	dups := b.checkReceiver("throughput", run, rc)
	figs := map[string]float64{figThroughput: perSecond(s.ThroughputEvents, tr.lastReceipt().Sub(start)), figThroughputDups: dups}
	if cpuOK {
		figs[figThroughputCPU] = cpuPer
	}
	return figs, nil
}

// latencyPhase publishes at the latency rate for d to a healthy endpoint, beside the bad
// endpoints of the isolation scenario when bad is set, and returns the healthy endpoint's
// tracker and repeats.
func (b *bench) latencyPhase(ctx context.Context, name string, d time.Duration, bad bool) (*tracker, float64, error) {
	s := b.opts.Sizes
	ph, err := b.healthyPhase(ctx, name, int(s.LatencyRate*d.Seconds()), s.LatencyRate, bad)
	return ph.tr, ph.repeats, err
}

// healthyRun is what one phase of the isolation scenario measured.
type healthyRun struct {
	tr      *tracker
	start   time.Time // when publishing started
	repeats float64   // at the healthy endpoint
	// Spilled deliveries per stored message in the down endpoint's queues (which nothing
	// drains during the phase): how well the spill writers batch. 0 without bad endpoints.
	perMessage float64
}

// healthyPhase publishes events at rate (0: as fast as possible) to a healthy endpoint and,
// when bad is set, to three bad ones for the same rooms: one down (connection refused), one
// that accepts and never answers, and one that answers in 2 s. It waits for every delivery
// at the healthy endpoint only.
func (b *bench) healthyPhase(ctx context.Context, name string, events int, rate float64, bad bool) (healthyRun, error) {
	fail := func(err error) (healthyRun, error) { return healthyRun{}, err }
	e, err := b.newEnv()
	if err != nil {
		return fail(err)
	}
	defer e.close()
	rc, route, base, err := e.newReceiver(0)
	if err != nil {
		return fail(err)
	}
	urls := []string{base + "/healthy"}
	var deadURL string
	if bad {
		dead, err := deadAddress()
		if err != nil {
			return fail(err)
		}
		hanging, err := e.serveHanging()
		if err != nil {
			return fail(err)
		}
		_, _, slow, err := e.newReceiver(slowAnswer)
		if err != nil {
			return fail(err)
		}
		deadURL = "http://" + dead + "/dead"
		urls = append(urls, deadURL, hanging+"/hanging", slow+"/slow")
	}
	r, err := e.startReplica(name, endpoints(urls...), sender.DefaultRetrySchedule())
	if err != nil {
		return fail(err)
	}
	if err := e.waitOwned(ctx, []*replica{r}, 30*time.Second); err != nil {
		return fail(err)
	}
	if err := e.warmUp(ctx, route, "warm"+name, 1); err != nil {
		return fail(err)
	}
	s := b.opts.Sizes
	tr := route.follow(newTracker(name, true))
	start, err := e.publish(ctx, name, s.Rooms, s.Participants, events, rate, tr)
	if err != nil {
		return fail(err)
	}
	if err := tr.wait(ctx, int64(events), name); err != nil {
		return fail(err)
	}
	run := healthyRun{tr: tr, start: start, repeats: b.checkReceiver(name, 0, rc)}
	if bad {
		if run.perMessage, err = e.spillPerMessage(ctx, endpoint.ID(deadURL)); err != nil {
			return fail(err)
		}
	}
	return run, nil
}

// spillPerMessage is how many deliveries each message of an endpoint's spill queues holds,
// on average.
func (e *env) spillPerMessage(ctx context.Context, endpointID string) (float64, error) {
	js, err := e.observer()
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := js.Stream(rctx, e.names().SpillStream())
	if err != nil {
		return 0, err
	}
	info, err := st.Info(rctx, jetstream.WithSubjectFilter(e.names().SpillEndpointFilter(endpointID)))
	if err != nil {
		return 0, err
	}
	var msgs uint64
	for _, n := range info.State.Subjects {
		msgs += n
	}
	deliveries := subscriber.SpillTotal(info.State.Subjects)
	if msgs == 0 {
		return 0, nil
	}
	return float64(deliveries) / float64(msgs), nil
}

// slowAnswer is how long the isolation scenario's slow endpoint takes to answer.
const slowAnswer = 2 * time.Second

func (b *bench) latency(ctx context.Context, run int) (map[string]float64, error) {
	tr, dups, err := b.latencyPhase(ctx, runName("lat", run), b.opts.Sizes.LatencyFor, false)
	if err != nil {
		return nil, err
	}
	return map[string]float64{figP50: tr.percentileMS(50), figP99: tr.percentileMS(99), figP999: tr.percentileMS(99.9), figLatencyDups: dups}, nil
}

func (b *bench) isolation(ctx context.Context, run int) (map[string]float64, error) {
	alone, dupsAlone, err := b.latencyPhase(ctx, runName("isoalone", run), b.opts.Sizes.IsolationFor, false)
	if err != nil {
		return nil, err
	}
	beside, dupsBeside, err := b.latencyPhase(ctx, runName("isobeside", run), b.opts.Sizes.IsolationFor, true)
	if err != nil {
		return nil, err
	}
	a, bs := alone.percentileMS(99), beside.percentileMS(99)
	figs := map[string]float64{figIsoAlone: a, figIsoBeside: bs}
	if a > 0 {
		figs[figIsoRatio] = bs / a
	}
	// Throughput: the same comparison with events published as fast as possible.
	n := b.opts.Sizes.IsolationEvents
	rates := [2]float64{}
	dups := dupsAlone + dupsBeside
	for i, bad := range []bool{false, true} {
		ph, err := b.healthyPhase(ctx, runName(fmt.Sprintf("isothr%d", i), run), n, 0, bad)
		if err != nil {
			return nil, err
		}
		rates[i], dups = perSecond(n, ph.tr.lastReceipt().Sub(ph.start)), dups+ph.repeats
		if bad {
			figs[figIsoPerMessage] = ph.perMessage
		}
	}
	figs[figIsoRateAlone], figs[figIsoRateBeside], figs[figIsoDups] = rates[0], rates[1], dups
	if rates[0] > 0 {
		figs[figIsoRateRatio] = rates[1] / rates[0]
	}
	return figs, nil
}

// fanOut sends the same events to one endpoint and then, in a fresh env, to FanOutEndpoints
// endpoints, each its own HTTP server (its own connections), and compares the delivery rates.
// It also counts what roomhook stores per event in each phase: one copy in the partition
// stream, plus whatever went to spill queues, which must not grow with healthy endpoints.
func (b *bench) fanOut(ctx context.Context, run int) (map[string]float64, error) {
	one, err := b.fanOutPhase(ctx, run, 1)
	if err != nil {
		return nil, err
	}
	many, err := b.fanOutPhase(ctx, run, b.opts.Sizes.FanOutEndpoints)
	if err != nil {
		return nil, err
	}
	figs := map[string]float64{
		figFanOne: one.rate, figFanOut: many.rate, figFanDups: one.repeats + many.repeats, figFanRetries: one.retries + many.retries,
		figFanStoredOne: one.storedPerEvent, figFanStoredMany: many.storedPerEvent,
	}
	if one.rate > 0 {
		figs[figFanRatio] = many.rate / one.rate
	}
	return figs, nil
}

// fanOutResult is what one fan-out phase measured.
type fanOutResult struct {
	rate           float64 // deliveries per second
	storedPerEvent float64 // messages stored in the partition and spill streams per event
	repeats        float64
	retries        float64 // retries the replica scheduled after failed attempts
}

func (b *bench) fanOutPhase(ctx context.Context, run, n int) (fanOutResult, error) {
	e, err := b.newEnv()
	if err != nil {
		return fanOutResult{}, err
	}
	defer e.close()
	s := b.opts.Sizes
	rc, route, err := newRoutedReceiver(0)
	if err != nil {
		return fanOutResult{}, err
	}
	urls := make([]string, n)
	for i := range urls {
		base, err := e.serve(rc)
		if err != nil {
			return fanOutResult{}, err
		}
		urls[i] = fmt.Sprintf("%s/ep/%02d", base, i)
	}
	r, err := e.startReplica("fanout", endpoints(urls...), sender.DefaultRetrySchedule())
	if err != nil {
		return fanOutResult{}, err
	}
	if err := e.waitOwned(ctx, []*replica{r}, 30*time.Second); err != nil {
		return fanOutResult{}, err
	}
	name := runName(fmt.Sprintf("fan%dx", n), run)
	if err := e.warmUp(ctx, route, "warm"+name, n); err != nil {
		return fanOutResult{}, err
	}
	storedBefore, err := e.storedMessages(ctx)
	if err != nil {
		return fanOutResult{}, err
	}
	tr := route.follow(newTracker(name, false))
	// Fewer rooms than the other scenarios: the benchmark holds both ends of every
	// connection in one process: 200 endpoints x 100 rooms would be 40,000 sockets, past the
	// usual 20,000 open files (a lane per room and endpoint, one more while it drains).
	rooms := s.Rooms
	if s.FanOutRooms > 0 {
		rooms = s.FanOutRooms
	}
	start, err := e.publish(ctx, name, rooms, s.Participants, s.FanOutEvents, 0, tr)
	if err != nil {
		return fanOutResult{}, err
	}
	deliveries := s.FanOutEvents * n
	if err := tr.wait(ctx, int64(deliveries), "fan-out"); err != nil {
		return fanOutResult{}, err
	}
	storedAfter, err := e.storedMessages(ctx)
	if err != nil {
		return fanOutResult{}, err
	}
	repeats := b.checkReceiver(fmt.Sprintf("fanout to %d", n), run, rc)
	if paths := rc.Stats().Paths; len(paths) != n {
		return fanOutResult{}, fmt.Errorf("deliveries reached %d of %d endpoints", len(paths), n)
	}
	return fanOutResult{
		rate:           perSecond(deliveries, tr.lastReceipt().Sub(start)),
		storedPerEvent: float64(storedAfter-storedBefore) / float64(s.FanOutEvents),
		repeats:        repeats,
		retries:        e.retries(),
	}, nil
}

// storedMessages is how many messages roomhook's partition and spill streams have stored
// since they were created (their last sequence numbers): a work-queue stream deletes what
// was acknowledged, so what it holds now would undercount.
func (e *env) storedMessages(ctx context.Context) (uint64, error) {
	js, err := e.observer()
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, name := range []string{e.names().PartStream(), e.names().SpillStream()} {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := js.Stream(rctx, name)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = st.Info(rctx); err == nil {
				total += info.State.LastSeq
			}
		}
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // nothing was ever stored there
		}
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return total, nil
}

// backlog queues events while the endpoint refuses connections, then brings it back. The
// replica runs roomhook's defaults: retry schedule and circuit breaker, whose probes back off
// to a minute apart, so the first delivery after the return is reported on its own and the
// drain is timed from it to the last.
func (b *bench) backlog(ctx context.Context, run int) (map[string]float64, error) {
	e, err := b.newEnv()
	if err != nil {
		return nil, err
	}
	defer e.close()
	s := b.opts.Sizes
	rc, route, err := newRoutedReceiver(0)
	if err != nil {
		return nil, err
	}
	addr, err := deadAddress()
	if err != nil {
		return nil, err
	}
	url := "http://" + addr + "/backlog"

	var sampler *peakSampler
	var proc *replicaProcess
	if len(b.opts.ReplicaCommand) > 0 {
		if proc, err = e.startReplicaProcess(ctx, "backlog", []string{url}, sender.DefaultRetrySchedule()); err != nil {
			return nil, err
		}
		sampler = startSampler(100*time.Millisecond, func() (uint64, error) { return processMemory(proc.pid(), "VmRSS") })
	} else {
		r, err := e.startReplica("backlog", endpoints(url), sender.DefaultRetrySchedule())
		if err != nil {
			return nil, err
		}
		if err := e.waitOwned(ctx, []*replica{r}, 30*time.Second); err != nil {
			return nil, err
		}
		sampler = startSampler(100*time.Millisecond, heapInUse)
	}

	name := runName("backlog", run)
	tr := route.follow(newTracker(name, false))
	start, err := e.publish(ctx, name, s.Rooms, s.Participants, s.BacklogEvents, 0, tr)
	if err != nil {
		sampler.finish()
		return nil, err
	}
	if err := e.waitQueued(ctx, s.BacklogEvents); err != nil {
		sampler.finish()
		return nil, err
	}
	queued := time.Since(start)

	ln, err := listenAgain(addr)
	if err != nil {
		sampler.finish()
		return nil, err
	}
	back := time.Now()
	e.serveOn(ln, rc)
	err = tr.wait(ctx, int64(s.BacklogEvents), "backlog drain")
	peak := sampler.finish()
	if proc != nil {
		if hwm, herr := processMemory(proc.pid(), "VmHWM"); herr == nil {
			peak = max(peak, hwm)
		}
	}
	if err != nil {
		return nil, err
	}
	dups := b.checkReceiver("backlog", run, rc)
	return map[string]float64{
		figBacklogDups:   dups,
		figBacklogQueue:  perSecond(s.BacklogEvents, queued),
		figBacklogMemory: float64(peak) / (1 << 20),
		figBacklogResume: tr.firstReceipt().Sub(back).Seconds(),
		figBacklogDrain:  perSecond(s.BacklogEvents, tr.lastReceipt().Sub(tr.firstReceipt())),
	}, nil
}

// waitQueued waits until n deliveries of the down endpoint wait in the spill stream.
func (e *env) waitQueued(ctx context.Context, n int) error {
	js, err := e.observer()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10*time.Minute + time.Duration(n)*time.Millisecond)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := js.Stream(rctx, e.names().SpillStream())
		if err == nil {
			info, ierr := st.Info(rctx, jetstream.WithSubjectFilter(e.names().SpillSubjects()))
			if ierr == nil && subscriber.SpillTotal(info.State.Subjects) >= uint64(n) {
				cancel()
				return nil
			}
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("%d deliveries were not spilled in time", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listenAgain listens on an address that was closed a moment ago.
func listenAgain(addr string) (net.Listener, error) {
	var err error
	delays := backoff.New(50*time.Millisecond, 200*time.Millisecond)
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(delays.Next())
	}
	return nil, fmt.Errorf("bringing the endpoint back on %s: %w", addr, err)
}

// scaleOut compares one replica with several when every request takes the receiver a while.
func (b *bench) scaleOut(ctx context.Context, run int) (map[string]float64, error) {
	one, dupsOne, err := b.scalePhase(ctx, run, 1)
	if err != nil {
		return nil, err
	}
	many, dupsMany, err := b.scalePhase(ctx, run, b.opts.Sizes.ScaleOutReplicas)
	if err != nil {
		return nil, err
	}
	figs := map[string]float64{figScaleOne: one, figScaleMany: many, figScaleDups: dupsOne + dupsMany}
	if one > 0 {
		figs[figScaleRatio] = many / one
	}
	return figs, nil
}

// scalePhase runs the scale-out traffic through replicas replicas and returns the delivery
// rate and the repeats the receiver saw.
func (b *bench) scalePhase(ctx context.Context, run, replicas int) (float64, float64, error) {
	e, err := b.newEnv()
	if err != nil {
		return 0, 0, err
	}
	defer e.close()
	s := b.opts.Sizes
	rc, route, base, err := e.newReceiver(s.ScaleOutLatency)
	if err != nil {
		return 0, 0, err
	}
	eps := endpoints(base + "/webhook")
	rs := make([]*replica, replicas)
	for i := range rs {
		if rs[i], err = e.startReplica(fmt.Sprintf("scale-%d", i), eps, sender.DefaultRetrySchedule()); err != nil {
			return 0, 0, err
		}
	}
	if err := e.waitOwned(ctx, rs, 3*time.Minute); err != nil {
		return 0, 0, err
	}
	name := runName(fmt.Sprintf("scale%dx", replicas), run)
	if err := e.warmUp(ctx, route, "warm"+name, 1); err != nil {
		return 0, 0, err
	}
	tr := route.follow(newTracker(name, false))
	start, err := e.publish(ctx, name, s.ScaleOutRooms, s.Participants, s.ScaleOutEvents, 0, tr)
	if err != nil {
		return 0, 0, err
	}
	if err := tr.wait(ctx, int64(s.ScaleOutEvents), "scale-out"); err != nil {
		return 0, 0, err
	}
	dups := b.checkReceiver(name, run, rc)
	return perSecond(s.ScaleOutEvents, tr.lastReceipt().Sub(start)), dups, nil
}
