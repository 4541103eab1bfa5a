package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/subscriber"
)

// The held-deliveries gauge is set from what the owned partitions hold, never counted up and
// down: it follows a partition's work, drops to 0 when the partition is handed over, and is
// never negative (issue 10 saw -5 and -14 with the first core's Inc/Sub counting).
func TestHeldGaugeFollowsCountsAndNeverGoesNegative(t *testing.T) {
	url := "http://127.0.0.1:9/webhook"
	cfg := testConfig("r1", url)
	m := NewMetrics(nil)
	d, err := New(nil, cfg, WithMetrics(m), WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	d.dir = endpoint.NewDirectory(nil, cfg.Credentials, cfg.Endpoints, testLogger())
	id := endpoint.ID(url)

	pt := &partition{d: d, p: 0, routes: map[string]*route{}}
	r := pt.route(id)
	r.pending = []delivery{{}, {}}                   // two waiting to be spilled
	r.lanes["room-a"] = &lane{queue: []delivery{{}}} // one in a direct lane
	// Two held by a drainer, in one batch: it counts deliveries, not stored messages.
	dr := &drainer{r: r, held: subscriber.NewHeldSet(), lanes: map[string]*drainLane{
		"room-b": {queue: []queue.Queued{{Seq: 1, Part: 0, Parts: 2}, {Seq: 1, Part: 1, Parts: 2}}},
	}}
	dr.held.Add(1, ackOnlyMsg{})
	r.drainer = dr
	d.addPartition(pt)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.sampleGauges(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	held := func() float64 { return testutil.ToFloat64(m.Held.WithLabelValues(id)) }
	lowest := 0.0
	watch := func(want float64) func() bool {
		return func() bool {
			v := held()
			lowest = min(lowest, v)
			return v == want
		}
	}
	waitFor(t, 5*time.Second, "held gauge at 5", watch(5))
	// The drainer settles both of its deliveries, and the lane its one.
	dr.mu.Lock()
	delete(dr.lanes, "room-b")
	dr.mu.Unlock()
	dr.held.Release(1)
	r.mu.Lock()
	delete(r.lanes, "room-a")
	r.mu.Unlock()
	waitFor(t, 5*time.Second, "held gauge at 2", watch(2))
	// The partition is handed over with deliveries still held: the gauge goes to 0, not below.
	d.removePartition(pt)
	waitFor(t, 5*time.Second, "held gauge at 0 after the handover", watch(0))
	if lowest < 0 {
		t.Errorf("held gauge went down to %v", lowest)
	}
}

// ackOnlyMsg is a held message whose only use here is being acknowledged.
type ackOnlyMsg struct{ jetstream.Msg }

func (ackOnlyMsg) Ack() error { return nil }
