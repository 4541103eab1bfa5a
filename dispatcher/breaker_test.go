package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/sender"
)

func TestBreakerProbesInsteadOfAStorm(t *testing.T) {
	ns := startServer(t, t.TempDir())
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var hits []time.Time
	flaky := newReceiver(t)
	flaky.status = func(received, int) int {
		mu.Lock()
		hits = append(hits, time.Now())
		mu.Unlock()
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	healthy := newReceiver(t)
	cfg := func(id string) Config {
		c := testConfig(id, flaky.URL(), healthy.URL())
		steps := []time.Duration{0}
		for i := 0; i < 300; i++ {
			steps = append(steps, 50*time.Millisecond) // without a breaker: a storm
		}
		c.Retry = sender.RetrySchedule{Steps: steps}
		c.MaxProbeWait = 400 * time.Millisecond
		return c
	}
	for i := 0; i < 3; i++ {
		startReplica(t, ns, cfg(fmt.Sprintf("r%d", i)))
	}
	_, js := connect(t, ns)
	const rooms, perRoom = 30, 5
	publishRooms(t, publisher{t, js}, rooms, perRoom)

	health, err := js.KeyValue(context.Background(), "ROOMHOOK_HEALTH_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	breakerState := func() breaker.State {
		e, err := health.Get(context.Background(), breaker.Key(endpoint.ID(flaky.URL())))
		if err != nil {
			return ""
		}
		var rec breaker.Record
		json.Unmarshal(e.Value(), &rec)
		return rec.State
	}
	waitFor(t, 10*time.Second, "the breaker to open", func() bool { return breakerState() == breaker.Open })
	// The healthy endpoint is not held up by the failing one.
	// Distinct events: replicas starting one after the other hand partitions over, and an
	// event handed back may reach the healthy endpoint twice (the guarantee allows repeats).
	waitFor(t, 20*time.Second, "healthy endpoint gets everything", func() bool { return distinct(healthy) == rooms*perRoom })
	if dup := healthy.count() - rooms*perRoom; dup > 0 {
		t.Logf("healthy endpoint got %d repeats", dup)
	}

	mu.Lock()
	before := len(hits)
	mu.Unlock()
	window := 3 * time.Second
	time.Sleep(window)
	mu.Lock()
	during := len(hits) - before
	mu.Unlock()
	// Open: one probe at a time across all three replicas, at most every 400ms, against
	// 30 rooms x 3 replicas retrying every 50ms without a breaker.
	if max := int(window/(400*time.Millisecond)) + 3; during > max {
		t.Errorf("endpoint got %d requests in %s while its breaker was open; want probes only (at most %d)", during, window, max)
	}
	t.Logf("%d requests in %s while open", during, window)

	down.Store(false)
	waitFor(t, 20*time.Second, "the breaker to close", func() bool { return breakerState() == breaker.Closed })
	waitFor(t, 20*time.Second, "the backlog", func() bool { return distinct(flaky) == rooms*perRoom })
	checkOrder(t, "recovered endpoint", flaky.deliveries(), eventIndex)
	if n := len(deadLetters(t, js, dlqSubject(endpoint.ID(flaky.URL())))); n != 0 {
		t.Errorf("%d dead letters; an open breaker must not use up the retry schedule", n)
	}
}

func TestOpenBreakerParksTheBacklogInJetStream(t *testing.T) {
	ns := startServer(t, t.TempDir())
	deadAddr := reservePort(t)
	deadURL := "http://" + deadAddr + "/webhook"
	back := newReceiver(t)
	cfg := isolationConfig("r1", deadURL)
	cfg.MaxProbeWait = 4 * time.Second // long enough between probes for workers to park
	metrics := NewMetrics(nil)
	startReplica(t, ns, cfg, WithMetrics(metrics))
	_, js := connect(t, ns)
	const rooms, perRoom = 20, 20
	publishRooms(t, publisher{t, js}, rooms, perRoom)

	held := func() float64 { return testutil.ToFloat64(metrics.Held.WithLabelValues(endpoint.ID(deadURL))) }
	waitFor(t, 10*time.Second, "deliveries held while the first probes fail", func() bool { return held() > 0 })
	// Once probes are seconds apart, the workers hand everything back and stop pulling.
	waitFor(t, 20*time.Second, "the backlog parked in JetStream", func() bool { return held() == 0 })
	listenReceiver(t, back, deadAddr)
	waitFor(t, 20*time.Second, "the whole backlog after the endpoint returns", func() bool { return distinct(back) == rooms*perRoom })
	checkOrder(t, "returned endpoint", back.deliveries(), eventIndex)
}
