package dispatcher

// Failover tests: three replicas on a 3-node JetStream cluster (internal/natstest.Cluster) with
// R3 streams, a receiver that fails about 5% of requests, and a fault in JetStream while they
// deliver. Every test holds, every time: nothing lost, no order violation of first arrivals
// per room, everything delivered within Takeover + 10 s of the cluster being healthy again, no
// replica's Run ending with an error, and the held-deliveries gauge never negative.
//
// The light variant (the partition stream's leader killed and restarted) runs in CI, with
// `go test ./dispatcher` (not with -short). The heavier ones run only with ROOMHOOK_STRESS=1;
// the stress command is
//
//	ROOMHOOK_STRESS=1 go test -race -run Failover -count=20 -timeout 60m ./dispatcher
//
// and ROOMHOOK_TEST_LOG=1 adds the replicas' debug logs. A test that fails writes the
// goroutines of the test process and the partition consumers' state to its log.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/sender"
)

const (
	failoverEventsStream = "ROOMHOOK_EVENTS_DEFAULT"
	failoverPartStream   = "ROOMHOOK_PART_DEFAULT"
	failoverSpillStream  = "ROOMHOOK_SPILL_DEFAULT"
	failoverRooms        = 20
	failoverPerRoom      = 20
	failoverReplicas     = 3
)

func skipUnlessStress(t *testing.T) {
	t.Helper()
	if os.Getenv("ROOMHOOK_STRESS") == "" {
		t.Skip("a stress test: set ROOMHOOK_STRESS=1")
	}
}

// clusterReplica is one dispatcher connected to every node of a cluster.
type clusterReplica struct {
	*runningReplica
	metrics *Metrics
}

// runningReplica is a dispatcher running until the test ends, and how it ended.
type runningReplica struct {
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
	exited atomic.Pointer[error] // Run's error, when it returned one before the test stopped it
}

// runReplica runs d until the test ends, failing the test if Run returns an error first or
// does not return within 30 s of the end.
func runReplica(t testing.TB, d *Dispatcher, id string) *runningReplica {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningReplica{d: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			r.exited.Store(&err)
			t.Errorf("replica %s exited: %v", id, err)
		}
	}()
	t.Cleanup(func() {
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("replica %s did not stop within 30s", id)
		}
	})
	return r
}

// startClusterReplica is startReplica for a cluster: the replica's connection lists every
// node and reconnects without limit. It does not wait for Ready.
func startClusterReplica(t testing.TB, c *natstest.Cluster, cfg Config, opts ...Option) *clusterReplica {
	t.Helper()
	_, js := natstest.Connect(t, c.ClientURLs())
	m := NewMetrics(nil)
	opts = append([]Option{WithLogger(testLogger().With("replica", cfg.ReplicaID)), WithMetrics(m),
		WithSender(sender.New(sender.WithTimeout(2 * time.Second)))}, opts...)
	d, err := New(js, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterReplica{runningReplica: runReplica(t, d, cfg.ReplicaID), metrics: m}
}

// failoverRig is a cluster, three replicas, a flaky receiver and a publisher that retries.
type failoverRig struct {
	t    *testing.T
	c    *natstest.Cluster
	rc   *receiver
	reps []*clusterReplica
	js   jetstream.JetStream
	cfg  Config

	minHeld atomic.Int64 // lowest held-deliveries gauge seen, over replicas

	// Partitions running on two replicas at once (the old owner still stopping, or a lease
	// taken from an owner that had not noticed losing it), sampled with the gauge.
	overlapMu    sync.Mutex
	overlapSince map[int]time.Time
	overlaps     []string

	// stop ends the rig's goroutines (publishing, sampling) when the test ends, before the
	// cluster is shut down; wg waits for them.
	stop chan struct{}
	wg   sync.WaitGroup

	pubMu      sync.Mutex
	stored     map[string]time.Time // when JetStream acknowledged each event's publish
	pubFailed  int                  // publish attempts that failed (and were retried)
	pubSlowest time.Duration        // longest time one event took to be stored, retries included
}

func newFailoverRig(t *testing.T) *failoverRig {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster")
	}
	start := time.Now()
	c := natstest.NewCluster(t)
	rc := newReceiver(t)
	var fails atomic.Int64
	rc.status = func(received, int) int {
		if rand.Float64() < 0.05 {
			fails.Add(1)
			return 500
		}
		return 200
	}
	f := &failoverRig{t: t, c: c, rc: rc, stored: map[string]time.Time{}, overlapSince: map[int]time.Time{}}
	f.cfg = testConfig("", rc.URL())
	f.cfg.StreamReplicas = 3
	// Started together, as a deployment's pods are.
	for i := 0; i < failoverReplicas; i++ {
		cfg := f.cfg
		cfg.ReplicaID = fmt.Sprintf("r%d", i)
		f.reps = append(f.reps, startClusterReplica(t, c, cfg))
	}
	f.waitOrDiagnose(60*time.Second, "every replica ready", func() bool {
		for _, r := range f.reps {
			if !r.d.Ready() {
				return false
			}
		}
		return true
	})
	f.waitOrDiagnose(20*time.Second, "every replica owns work", func() bool {
		for _, r := range f.reps {
			if len(r.d.Owned()) == 0 {
				return false
			}
		}
		return true
	})
	c.WaitStreamReady(t, "", failoverEventsStream, failoverPartStream)
	_, f.js = natstest.Connect(t, c.ClientURLs())
	t.Logf("cluster and replicas ready in %s", time.Since(start).Round(time.Millisecond))
	// Registered after the cluster's and the replicas' cleanups, so it runs before them.
	f.stop = make(chan struct{})
	t.Cleanup(func() {
		close(f.stop)
		f.wg.Wait()
	})
	f.wg.Add(1)
	go f.watchHeld()
	t.Cleanup(func() { t.Logf("receiver answered 500 to %d requests", fails.Load()) })
	return f
}

// watchHeld samples every replica's held-deliveries gauge, and which replicas run each
// partition, until the test ends.
func (f *failoverRig) watchHeld() {
	defer f.wg.Done()
	ep := endpoint.ID(f.rc.URL())
	for {
		running := map[int][]string{}
		for _, r := range f.reps {
			if v := int64(testutil.ToFloat64(r.metrics.Held.WithLabelValues(ep))); v < f.minHeld.Load() {
				f.minHeld.Store(v)
			}
			for _, pt := range r.d.ownedPartitions() {
				running[pt.p] = append(running[pt.p], r.d.cfg.ReplicaID)
			}
		}
		f.overlapMu.Lock()
		for p := 0; p < f.cfg.Partitions; p++ {
			since, was := f.overlapSince[p]
			switch on := len(running[p]) > 1; {
			case on && !was:
				f.overlapSince[p] = time.Now()
			case !on && was:
				f.overlaps = append(f.overlaps, fmt.Sprintf("p%d on two replicas from %s for %s", p,
					since.Format("15:04:05.000"), time.Since(since).Round(time.Millisecond)))
				delete(f.overlapSince, p)
			}
		}
		f.overlapMu.Unlock()
		select {
		case <-f.reps[0].done:
			return
		case <-f.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func failoverID(room, i int) string { return fmt.Sprintf("ev-%d-%d", room, i) }

// publishAll publishes every event, room after room for each index, retrying each publish
// (same Nats-Msg-Id, so a retry of a stored one is dropped as a duplicate) until JetStream
// takes it, as a media node does through an election. It returns when all are stored, or
// when the test ends first.
func (f *failoverRig) publishAll(pace time.Duration) {
	for i := 0; i < failoverPerRoom; i++ {
		for r := 0; r < failoverRooms; r++ {
			room := fmt.Sprintf("room-%d", r)
			evt := newEvent(room, "participant_joined", failoverID(r, i), 1761815000)
			msg := nats.NewMsg(fmt.Sprintf("roomhook.events.default.%s.participant_joined", room))
			msg.Data = mustMarshal(f.t, evt)
			msg.Header.Set(nats.MsgIdHdr, evt.GetId())
			began := time.Now()
			deadline := began.Add(60 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := f.js.PublishMsg(ctx, msg)
				cancel()
				if err == nil {
					now := time.Now()
					f.pubMu.Lock()
					f.stored[evt.GetId()] = now
					f.pubSlowest = max(f.pubSlowest, now.Sub(began))
					f.pubMu.Unlock()
					break
				}
				f.pubMu.Lock()
				f.pubFailed++
				f.pubMu.Unlock()
				if time.Now().After(deadline) {
					f.t.Errorf("publish %s: %v", evt.GetId(), err)
					return
				}
				if !f.pause(50 * time.Millisecond) {
					return
				}
			}
			if !f.pause(pace) {
				return
			}
		}
	}
}

// waitHealthy waits until the cluster has a meta leader, every node is current, and both
// streams roomhook reads have a leader with every node current; it returns when that held.
func (f *failoverRig) waitHealthy() time.Time {
	f.t.Helper()
	f.c.WaitJetStreamReady(f.t)
	f.c.WaitStreamReady(f.t, "", failoverEventsStream, failoverPartStream)
	return time.Now()
}

// waitOrDiagnose waits for cond; when timeout passes first it writes what the replicas and
// consumers hold, the missing events and every goroutine, and fails the test.
func (f *failoverRig) waitOrDiagnose(timeout time.Duration, what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			f.diagnose()
			// Say whether it is a delay or a stall: how long it takes yet, up to 45 s.
			later := time.Now()
			for !cond() && time.Since(later) < 45*time.Second {
				time.Sleep(50 * time.Millisecond)
			}
			if cond() {
				f.t.Logf("%s came %s after the deadline", what, time.Since(later).Round(time.Millisecond))
			} else {
				f.t.Logf("%s still not there 45s after the deadline", what)
				f.streamState()
			}
			f.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *failoverRig) diagnose() {
	t := f.t
	t.Helper()
	seen := map[string]bool{}
	for _, r := range f.rc.deliveries() {
		seen[r.ID] = true
	}
	var missing []string
	for r := 0; r < failoverRooms; r++ {
		for i := 0; i < failoverPerRoom; i++ {
			if id := failoverID(r, i); !seen[id] {
				missing = append(missing, id)
			}
		}
	}
	if len(missing) > 0 {
		if len(missing) > 40 {
			missing = append(missing[:40], "...")
		}
		t.Logf("not delivered (%d distinct of %d): %s", len(seen), failoverRooms*failoverPerRoom, strings.Join(missing, " "))
	}
	ep := endpoint.ID(f.rc.URL())
	for _, r := range f.reps {
		t.Logf("replica %s: ready=%v owns=%v held=%v", r.d.cfg.ReplicaID, r.d.Ready(), r.d.Owned(),
			testutil.ToFloat64(r.metrics.Held.WithLabelValues(ep)))
		for _, pt := range r.d.ownedPartitions() {
			for _, rt := range pt.snapshot() {
				rt.mu.Lock()
				t.Logf("  p%d route %s: spilled=%v drainer=%v pending=%d writing=%d lanes=%d", pt.p, rt.id, rt.spilled,
					rt.drainer != nil, len(rt.pending), rt.writing, len(rt.lanes))
				rt.mu.Unlock()
			}
		}
	}
	t.Logf("cluster: meta leader n%d, events leader n%d, part leader n%d", f.c.MetaLeader(),
		f.c.StreamLeader("", failoverEventsStream), f.c.StreamLeader("", failoverPartStream))
	f.streamState()
	if f.js != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if st, err := f.js.Stream(ctx, failoverPartStream); err == nil {
			for p := 0; p < f.cfg.Partitions; p++ {
				cons, err := st.Consumer(ctx, f.d0().names.PartConsumer(p))
				if err != nil {
					t.Logf("consumer part_%d: %v", p, err)
					continue
				}
				ci := cons.CachedInfo()
				t.Logf("consumer part_%d: delivered=%d ack_floor=%d ack_pending=%d redelivered=%d pending=%d waiting=%d",
					p, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumRedelivered, ci.NumPending, ci.NumWaiting)
			}
		} else {
			t.Logf("partition stream: %v", err)
		}
	}
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	t.Logf("goroutines:\n%s", b.String())
}

// streamState writes the events and partition streams' state and the partition stream's
// source, and what the spill stream holds (per subject) with its consumers.
func (f *failoverRig) streamState() {
	if f.js == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := f.js.Stream(ctx, failoverSpillStream); err != nil {
		f.t.Logf("stream %s: %v", failoverSpillStream, err)
	} else if si, err := st.Info(ctx, jetstream.WithSubjectFilter(">")); err != nil {
		f.t.Logf("stream %s: %v", failoverSpillStream, err)
	} else {
		f.t.Logf("stream %s: msgs=%d first=%d last=%d subjects=%v", failoverSpillStream, si.State.Msgs, si.State.FirstSeq, si.State.LastSeq, si.State.Subjects)
		for ci := range st.ListConsumers(ctx).Info() {
			f.t.Logf("  consumer %s: filter=%s delivered=%d ack_floor=%d ack_pending=%d pending=%d waiting=%d",
				ci.Name, ci.Config.FilterSubject, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumPending, ci.NumWaiting)
		}
	}
	for _, name := range []string{failoverEventsStream, failoverPartStream} {
		st, err := f.js.Stream(ctx, name)
		if err != nil {
			f.t.Logf("stream %s: %v", name, err)
			continue
		}
		si := st.CachedInfo()
		leader := ""
		if si.Cluster != nil {
			leader = si.Cluster.Leader
		}
		f.t.Logf("stream %s: leader=%s msgs=%d first=%d last=%d", name, leader, si.State.Msgs, si.State.FirstSeq, si.State.LastSeq)
		for _, src := range si.Sources {
			errText := ""
			if src.Error != nil {
				errText = src.Error.Error()
			}
			f.t.Logf("  source %s: lag=%d active=%s error=%q", src.Name, src.Lag, src.Active, errText)
		}
	}
}

func (f *failoverRig) d0() *Dispatcher { return f.reps[0].d }

// orderViolations lists, for every room, each first arrival of an event older than one that
// had already arrived for the first time.
func orderViolations(got []received) []string {
	last := map[string]int{}
	seen := map[string]bool{}
	var out []string
	for _, r := range got {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		s := eventIndex(r)
		if prev, ok := last[r.Room]; ok && s < prev {
			out = append(out, fmt.Sprintf("room %s got #%d after #%d at %s", r.Room, s, prev, r.At.Format("15:04:05.000")))
			continue
		}
		last[r.Room] = s
	}
	return out
}

// finish waits until everything is delivered within Takeover + 10 s of healthyAt and checks
// what every failover test must hold. An event that JetStream stored only after healthyAt
// (the publisher's retries outlasted the election) has its bound counted from when it was
// stored: no event waits longer than Takeover + 10 s past the later of the two.
func (f *failoverRig) finish(published <-chan struct{}, healthyAt time.Time) {
	t := f.t
	t.Helper()
	select {
	case <-published:
	case <-time.After(60 * time.Second):
		t.Fatal("publishing did not end within 60s")
	}
	if t.Failed() {
		return
	}
	total := failoverRooms * failoverPerRoom
	bound := f.cfg.Takeover + 10*time.Second
	f.pubMu.Lock()
	lastStored := healthyAt
	for _, at := range f.stored {
		if at.After(lastStored) {
			lastStored = at
		}
	}
	t.Logf("publishing: %d attempts failed and were retried; one event took up to %s to be stored; the last was stored %s after the cluster was healthy",
		f.pubFailed, f.pubSlowest.Round(time.Millisecond), lastStored.Sub(healthyAt).Round(time.Millisecond))
	f.pubMu.Unlock()
	f.waitOrDiagnose(time.Until(lastStored.Add(bound)), fmt.Sprintf("all %d events within %s of the cluster being healthy (or of their store)", total, bound),
		func() bool { return distinct(f.rc) == total })
	t.Logf("all delivered %s after the cluster was healthy", time.Since(healthyAt).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond) // a late duplicate counts
	got := f.rc.deliveries()
	// Each event's first arrival, against the later of the cluster being healthy and its store.
	first := map[string]time.Time{}
	for _, g := range got {
		if _, ok := first[g.ID]; !ok {
			first[g.ID] = g.At
		}
	}
	var worst time.Duration
	worstID := ""
	f.pubMu.Lock()
	for id, at := range first {
		from := healthyAt
		if st := f.stored[id]; st.After(from) {
			from = st
		}
		if lag := at.Sub(from); lag > worst {
			worst, worstID = lag, id
		}
	}
	f.pubMu.Unlock()
	t.Logf("slowest first arrival: %s, %s after the later of the cluster being healthy and its store", worstID, worst.Round(time.Millisecond))
	if worst > bound {
		t.Errorf("%s arrived %s after the later of the cluster being healthy and its store; want within %s", worstID, worst.Round(time.Millisecond), bound)
	}
	checkOrder(t, "endpoint", got, eventIndex)
	if v := orderViolations(got); len(v) > 0 {
		if len(v) > 20 {
			v = v[:20]
		}
		t.Errorf("%d order violations of first arrivals:\n%s", len(orderViolations(got)), strings.Join(v, "\n"))
	}
	dups := map[string]int{}
	for _, g := range got {
		dups[g.ID]++
	}
	var repeated []string
	for id, n := range dups {
		if n > 1 {
			repeated = append(repeated, fmt.Sprintf("%s×%d", id, n))
		}
	}
	sort.Strings(repeated)
	t.Logf("%d deliveries of %d events: %d duplicates (%d events repeated)", len(got), total, len(got)-total, len(repeated))
	f.overlapMu.Lock()
	if len(f.overlaps) > 0 || len(f.overlapSince) > 0 {
		t.Logf("partitions running on two replicas at once (sampled every 50 ms): %s; still now: %v",
			strings.Join(f.overlaps, ", "), f.overlapSince)
	}
	f.overlapMu.Unlock()
	if min := f.minHeld.Load(); min < 0 {
		t.Errorf("held-deliveries gauge went down to %d", min)
	}
	for _, r := range f.reps {
		if e := r.exited.Load(); e != nil {
			t.Errorf("replica %s exited: %v", r.d.cfg.ReplicaID, *e)
		}
	}
}

// startPublishing publishes every event in the background, paced so that the fault lands
// mid-delivery; the channel closes when all are stored.
func (f *failoverRig) startPublishing(pace time.Duration) <-chan struct{} {
	done := make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(done)
		f.publishAll(pace)
	}()
	return done
}

// pause waits d, or less if the test ends meanwhile; false when it ended.
func (f *failoverRig) pause(d time.Duration) bool {
	select {
	case <-f.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// killLeaderAndRestart kills stream's leader once a fifth of the events has arrived and
// starts it again on its store 2 s later.
func (f *failoverRig) killLeaderAndRestart(stream string) time.Time {
	t := f.t
	t.Helper()
	total := failoverRooms * failoverPerRoom
	f.waitOrDiagnose(30*time.Second, "a fifth delivered", func() bool { return distinct(f.rc) >= total/5 })
	leader := f.c.StreamLeader("", stream)
	if leader < 0 {
		t.Fatalf("%s has no leader", stream)
	}
	f.c.Kill(leader)
	t.Logf("killed n%d, %s's leader, at %d distinct delivered", leader, stream, distinct(f.rc))
	time.Sleep(2 * time.Second)
	f.c.Restart(leader)
	healthy := f.waitHealthy()
	t.Logf("n%d restarted; cluster healthy at %d distinct delivered", leader, distinct(f.rc))
	return healthy
}

// TestFailoverReplicasStartTogetherOnR3 is a deployment's first start: three replicas started
// at once on a fresh 3-node cluster, provisioning R3 streams and buckets concurrently while
// the cluster places them, all become ready and none exits (issue 10 saw two of three exit
// with "provision stream ROOMHOOK_DLQ_EU: context deadline exceeded" in 3 of about 20 starts).
// It runs in CI; the stress target repeats it.
func TestFailoverReplicasStartTogetherOnR3(t *testing.T) {
	f := newFailoverRig(t) // fails unless every replica is ready within 60 s
	for _, r := range f.reps {
		if e := r.exited.Load(); e != nil {
			t.Errorf("replica %s exited: %v", r.d.cfg.ReplicaID, *e)
		}
	}
	f.waitOrDiagnose(20*time.Second, "every partition owned", func() bool {
		owned := map[string]bool{}
		for _, r := range f.reps {
			for _, u := range r.d.Owned() {
				owned[u] = true
			}
		}
		return len(owned) == f.cfg.Partitions
	})
}

// TestFailoverPartLeaderKilled is the light variant, run in CI.
func TestFailoverPartLeaderKilled(t *testing.T) {
	f := newFailoverRig(t)
	published := f.startPublishing(5 * time.Millisecond)
	healthy := f.killLeaderAndRestart(failoverPartStream)
	f.finish(published, healthy)
}

func TestFailoverEventsLeaderKilled(t *testing.T) {
	skipUnlessStress(t)
	f := newFailoverRig(t)
	published := f.startPublishing(5 * time.Millisecond)
	healthy := f.killLeaderAndRestart(failoverEventsStream)
	f.finish(published, healthy)
}

func TestFailoverFollowerKilled(t *testing.T) {
	skipUnlessStress(t)
	f := newFailoverRig(t)
	published := f.startPublishing(5 * time.Millisecond)
	f.waitOrDiagnose(30*time.Second, "a fifth delivered", func() bool { return distinct(f.rc) >= failoverRooms*failoverPerRoom/5 })
	// A follower of both streams: a node that leads neither (killing the events stream's
	// leader is TestFailoverEventsLeaderKilled).
	follower := -1
	for i := 0; i < f.c.Size(); i++ {
		if i != f.c.StreamLeader("", failoverPartStream) && i != f.c.StreamLeader("", failoverEventsStream) {
			follower = i
			break
		}
	}
	f.c.Kill(follower)
	t.Logf("killed n%d, a follower of both streams", follower)
	time.Sleep(2 * time.Second)
	f.c.Restart(follower)
	f.finish(published, f.waitHealthy())
}

func TestFailoverPartLeaderStepDowns(t *testing.T) {
	skipUnlessStress(t)
	f := newFailoverRig(t)
	published := f.startPublishing(20 * time.Millisecond) // about 8 s of publishing
	total := failoverRooms * failoverPerRoom
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var downs atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(700 * time.Millisecond):
			}
			if f.c.StepDown(failoverPartStream) == nil {
				downs.Add(1)
			}
		}
	}()
	// Step down while delivering: until nine tenths have arrived, or 20 s.
	deadline := time.Now().Add(20 * time.Second)
	for distinct(f.rc) < total*9/10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d step-downs of %s while delivering", downs.Load(), failoverPartStream)
	f.finish(published, f.waitHealthy())
}

// TestFailoverWholeClusterRestarted stops every node at once mid-delivery (a power cut, a
// rollout that restarted every pod) and starts them again on their stores 2 s later. While
// JetStream is gone the replicas cannot ack, pull or renew leases; the publisher retries.
func TestFailoverWholeClusterRestarted(t *testing.T) {
	skipUnlessStress(t)
	f := newFailoverRig(t)
	published := f.startPublishing(5 * time.Millisecond)
	f.waitOrDiagnose(30*time.Second, "a fifth delivered", func() bool { return distinct(f.rc) >= failoverRooms*failoverPerRoom/5 })
	f.c.KillAll()
	down := time.Now()
	t.Logf("killed every node at %d distinct delivered", distinct(f.rc))
	time.Sleep(2 * time.Second)
	f.c.RestartAll()
	healthy := f.waitHealthy()
	t.Logf("every node restarted; cluster healthy %s after the kill, at %d distinct delivered",
		time.Since(down).Round(time.Millisecond), distinct(f.rc))
	f.finish(published, healthy)
}
