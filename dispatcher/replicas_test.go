package dispatcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/sender"
)

// deliveredBy counts the 2xx deliveries a replica made to ep.
func deliveredBy(m *Metrics, url string) float64 {
	return testutil.ToFloat64(m.Deliveries.WithLabelValues(endpoint.ID(url), sender.Delivered.String(), "2xx"))
}

func TestReplicasShareWorkAndSurviveAKill(t *testing.T) {
	ns := startServer(t, t.TempDir())
	a, b := newReceiver(t), newReceiver(t)
	cfg := func(id string) Config {
		c := testConfig(id, a.URL(), b.URL())
		c.Partitions = 16
		return c
	}
	metrics := []*Metrics{NewMetrics(nil), NewMetrics(nil), NewMetrics(nil)}
	var reps []*replica
	for i := range metrics {
		reps = append(reps, startReplica(t, ns, cfg(fmt.Sprintf("r%d", i)), WithMetrics(metrics[i])))
	}
	// Let ownership settle so all three take their share before traffic starts.
	waitFor(t, 10*time.Second, "every replica owns work", func() bool {
		for _, r := range reps {
			if len(r.d.Owned()) == 0 {
				return false
			}
		}
		return true
	})
	_, js := connect(t, ns)
	p := publisher{t, js}
	const rooms, perRoom = 50, 40 // 2,000 events
	publishAll := func(from, to int) {
		for i := from; i < to; i++ {
			for r := 0; r < rooms; r++ {
				p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
			}
		}
	}
	publishAll(0, perRoom/2)
	waitFor(t, 20*time.Second, "a part delivered", func() bool { return a.count() >= rooms*perRoom/4 })
	victim := reps[0]
	victim.kill()
	killedAt := time.Now()
	publishAll(perRoom/2, perRoom)

	for _, rc := range []*receiver{a, b} {
		waitFor(t, 40*time.Second, "every event at every endpoint", func() bool { return distinct(rc) == rooms*perRoom })
		checkOrder(t, "endpoint", rc.deliveries(), eventIndex)
	}
	t.Logf("all delivered %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	for i, m := range metrics[1:] {
		if n := deliveredBy(m, a.URL()) + deliveredBy(m, b.URL()); n == 0 {
			t.Errorf("surviving replica r%d delivered nothing", i+1)
		}
	}
	total := 0.0
	for _, m := range metrics {
		total += deliveredBy(m, a.URL()) + deliveredBy(m, b.URL())
	}
	if got := a.count() + b.count(); float64(got) > total {
		t.Errorf("receivers got %d deliveries, replicas report %v", got, total)
	}
}

func distinct(rc *receiver) int {
	seen := map[string]bool{}
	for _, r := range rc.deliveries() {
		seen[r.ID] = true
	}
	return len(seen)
}

func TestRestartLosesNothingAndRepeatsNothingAcknowledged(t *testing.T) {
	ns := startServer(t, t.TempDir())
	slow := newReceiver(t)
	slow.status = func(received, int) int { time.Sleep(10 * time.Millisecond); return 200 }
	start := func(gen int) []*replica {
		var reps []*replica
		for i := 0; i < 2; i++ {
			reps = append(reps, startReplica(t, ns, testConfig(fmt.Sprintf("g%d-r%d", gen, i), slow.URL())))
		}
		return reps
	}
	first := start(1)
	_, js := connect(t, ns)
	p := publisher{t, js}
	const rooms, perRoom = 10, 30
	for i := 0; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
		}
	}
	waitFor(t, 20*time.Second, "some deliveries", func() bool { return slow.count() >= 40 })
	for _, r := range first {
		r.stop()
	}
	stoppedWith := slow.count()
	if stoppedWith >= rooms*perRoom {
		t.Fatalf("everything was delivered before the stop; the test needs pending events")
	}
	start(2)
	waitFor(t, 30*time.Second, "every event", func() bool { return distinct(slow) == rooms*perRoom })
	// The barrier: one more event per room. A duplicate of a room's event would be sent before
	// it, in the room's order.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, perRoom), 1761815000))
	}
	waitFor(t, 30*time.Second, "every room's barrier event", func() bool { return distinct(slow) == rooms*(perRoom+1) })
	got := slow.deliveries()
	if len(got) != rooms*(perRoom+1) {
		seen := map[string]int{}
		for _, g := range got {
			seen[g.ID]++
		}
		for id, n := range seen {
			if n > 1 {
				t.Errorf("%s delivered %d times", id, n)
			}
		}
	}
	checkOrder(t, "endpoint", got, eventIndex)
	t.Logf("%d delivered before the stop, %d after", stoppedWith, len(got)-stoppedWith)
}

// TestHandoverSettlesWhatOtherEndpointsStillHold is a rolling restart: the replica stops
// gracefully while one endpoint has every event and another, slower one still has some of
// them queued in memory. The stopping replica delivers those before it lets the partitions
// go, so the next owner sends nothing again: each endpoint gets each event once, in order.
// (Before, the queued deliveries were dropped at the handover and their events handed back,
// and the next owner sent them to both endpoints: repeats at the one that had them.)
func TestHandoverSettlesWhatOtherEndpointsStillHold(t *testing.T) {
	ns := startServer(t, t.TempDir())
	fast, slow := newReceiver(t), newReceiver(t)
	slow.delay = 40 * time.Millisecond // each answer; the rooms' lanes wait side by side
	first := startReplica(t, ns, testConfig("first", fast.URL(), slow.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	const rooms, perRoom = 4, 8 // the slow endpoint's queue: 8 × 40 ms a room, within the settle
	for i := 0; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
		}
	}
	waitFor(t, 10*time.Second, "every event at the fast endpoint", func() bool { return distinct(fast) == rooms*perRoom })
	if n := slow.count(); n >= rooms*perRoom {
		t.Fatalf("the slow endpoint had all %d events before the stop; the test needs some still queued", n)
	}
	first.stop()
	startReplica(t, ns, testConfig("next", fast.URL(), slow.URL()))
	for r := 0; r < rooms; r++ { // the barrier: a repeat of a room's event would come before it
		p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, perRoom), 1761815000))
	}
	for name, rc := range map[string]*receiver{"fast": fast, "slow": slow} {
		waitFor(t, 20*time.Second, name+" endpoint's barrier events", func() bool { return distinct(rc) == rooms*(perRoom+1) })
		for id, n := range deliveredIDs(rc) {
			if n != 1 {
				t.Errorf("%s endpoint: %s delivered %d times, want once", name, id, n)
			}
		}
		checkOrder(t, name+" endpoint", rc.deliveries(), eventIndex)
	}
}
