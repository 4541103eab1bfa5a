package dispatcher

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/roomhook/roomhook/schema"
)

func TestEndToEndTwoGlobalEndpoints(t *testing.T) {
	ns := startServer(t, t.TempDir())
	a, b := newReceiver(t), newReceiver(t)
	startReplica(t, ns, testConfig("r1", a.URL(), b.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}

	const rooms, perRoom = 5, 20
	for i := 0; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			room := fmt.Sprintf("room.%d é", r) // needs the token encoding
			p.publish(newEvent(room, "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
		}
	}
	for _, rc := range []*receiver{a, b} {
		waitFor(t, 20*time.Second, "all deliveries", func() bool { return rc.count() >= rooms*perRoom })
		got := rc.deliveries()
		checkOrder(t, "receiver", got, eventIndex)
		seen := map[string]bool{}
		for _, g := range got {
			seen[g.ID] = true
			if g.Header.Get("Authorization") == "" || g.Header.Get("Hash-Token") != g.Header.Get("Authorization") {
				t.Errorf("Authorization and Hash-Token must carry the same JWT")
			}
			if ct := g.Header.Get("Content-Type"); ct != "application/webhook+json" {
				t.Errorf("Content-Type = %q", ct)
			}
		}
		if len(seen) != rooms*perRoom {
			t.Errorf("distinct events = %d, want %d", len(seen), rooms*perRoom)
		}
	}
	// The body is exactly what schema renders for the event.
	first := a.deliveries()[0]
	want, err := schema.MarshalBody(newEvent(first.Room, "participant_joined", first.ID, 1761815000), schema.Fallback{})
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Body) != string(want) {
		t.Errorf("body\n got %s\nwant %s", first.Body, want)
	}
}

func TestEventWithoutIDGetsStableID(t *testing.T) {
	ns := startServer(t, t.TempDir())
	calls := 0
	a := newReceiver(t)
	a.status = func(r received, n int) int {
		calls++
		if n < 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	b := newReceiver(t)
	startReplica(t, ns, testConfig("r1", a.URL(), b.URL()))
	_, js := connect(t, ns)
	publisher{t, js}.publish(newEvent("r", "room_started", "", 0))
	waitFor(t, 10*time.Second, "delivery", func() bool { return a.count() == 1 && b.count() == 1 })
	ga, gb := a.deliveries()[0], b.deliveries()[0]
	if ga.ID == "" || ga.ID != gb.ID {
		t.Fatalf("ids: %q and %q; want the same non-empty id for every endpoint", ga.ID, gb.ID)
	}
	if string(ga.Body) != string(gb.Body) {
		t.Errorf("bodies differ between endpoints")
	}
	if a.tries[ga.ID] != 3 {
		t.Errorf("attempts = %d, want 3 (two 503s then 200), all with id %s", a.tries[ga.ID], ga.ID)
	}
}
