package admin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
)

// status reports what the test produced: the paused endpoint's backlog is every event
// published to it, and the dead letters are counted by reason and by endpoint.
func TestStatus(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	paused, rejecting, healthy := newReceiver(t), newReceiver(t), newReceiver(t)
	rejecting.setStatus(400)
	r := startReplica(t, ns, testConfig("r1", paused.URL(), rejecting.URL(), healthy.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	pausedID, rejectingID, healthyID := endpoint.ID(paused.URL()), endpoint.ID(rejecting.URL()), endpoint.ID(healthy.URL())

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Region != testRegion || st.Replica != "r1" || st.Totals.Endpoints != 3 || st.Totals.Backlog != 0 ||
		st.DeadLetters.Total != 0 || len(st.DeadLetters.ByReason) != 0 || st.Unrouted != 0 {
		t.Fatalf("status before any event: %+v", st)
	}

	if _, err := c.PauseEndpoint(ctx, pausedID); err != nil {
		t.Fatal(err)
	}
	r.waitPaused(t, pausedID, true)
	const events = 23 // more than MaxInFlight per partition, so that some wait unpulled
	for n := range events {
		publish(t, js, fmt.Sprintf("room-%d", n%3), "participant_joined", fmt.Sprintf("ev-%d", n))
	}
	publishGarbage(t, js, "room-x")
	publishGarbage(t, js, "room-y")
	// A subject without the event token: stored, neither delivered nor dead-lettered.
	if _, err := js.Publish(ctx, "roomhook.events."+testRegion+".room-z", []byte("no event token")); err != nil {
		t.Fatal(err)
	}

	want := map[string]uint64{deadletter.ReasonRejected: events, deadletter.ReasonInvalid: 2}
	waitFor(t, 15*time.Second, "status to show every event", func() bool {
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		return st.DeadLetters.Total == events+2 && st.Totals.Backlog == events && len(healthy.deliveries()) == events
	})
	for reason, n := range want {
		if st.DeadLetters.ByReason[reason] != n {
			t.Errorf("dead letters %s: %d, want %d (all: %v)", reason, st.DeadLetters.ByReason[reason], n, st.DeadLetters.ByReason)
		}
	}
	if st.Unrouted != 1 {
		t.Errorf("unrouted events %d, want 1", st.Unrouted)
	}
	if len(st.DeadLetters.ByReason) != len(want) {
		t.Errorf("dead letters by reason %v, want only %v", st.DeadLetters.ByReason, want)
	}
	byID := map[string]EndpointStatus{}
	for _, es := range st.Endpoints {
		byID[es.ID] = es
	}
	if es := byID[pausedID]; es.Backlog != events || !es.Paused || es.InFlight > es.Backlog || es.DeadLetters != 0 {
		t.Errorf("paused endpoint %+v: want backlog %d, paused, no dead letters", es, events)
	}
	if es := byID[rejectingID]; es.Backlog != 0 || es.InFlight != 0 || es.DeadLetters != events {
		t.Errorf("rejecting endpoint %+v: want no backlog and %d dead letters", es, events)
	}
	if es := byID[healthyID]; es.Backlog != 0 || es.InFlight != 0 || es.DeadLetters != 0 {
		t.Errorf("healthy endpoint %+v: want nothing pending", es)
	}
	// What the replicas saw, written to the health bucket: successes up to 12 s later.
	waitFor(t, 20*time.Second, "last success and last error", func() bool {
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		for _, es := range st.Endpoints {
			byID[es.ID] = es
		}
		return !byID[healthyID].LastSuccess.IsZero() && byID[rejectingID].LastError != ""
	})
	if es := byID[rejectingID]; es.LastErrorAt.IsZero() || !es.LastSuccess.IsZero() {
		t.Errorf("rejecting endpoint %+v: want a last error with its time and no success", es)
	}
	if es := byID[pausedID]; !es.LastSuccess.IsZero() || es.LastError != "" {
		t.Errorf("paused endpoint %+v: want no attempt recorded", es)
	}
	if st.Totals.InFlight != byID[pausedID].InFlight {
		t.Errorf("total in flight %d, want the paused endpoint's %d", st.Totals.InFlight, byID[pausedID].InFlight)
	}
}
