package dispatcher

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

func roomCreated(room string, id string, urls ...string) *roomhookv1.Event {
	evt := newEvent(room, "room_created", id, 1761815000)
	evt.WebhookUrls = urls
	return evt
}

func TestPerRoomWebhooks(t *testing.T) {
	ns := startServer(t, t.TempDir())
	global := newReceiver(t)
	lms1, lms2 := newReceiver(t), newReceiver(t)
	cfg := func(id string) Config {
		c := testConfig(id, global.URL())
		c.RoomGrace = time.Second
		return c
	}
	first := []*replica{startReplica(t, ns, cfg("a1")), startReplica(t, ns, cfg("a2"))}
	_, js := connect(t, ns)
	p := publisher{t, js}

	p.publish(roomCreated("math-101", "ev-math-0", lms1.URL(), lms2.URL()))
	p.publish(roomCreated("other", "ev-other-0")) // no per-room URLs
	p.publish(newEvent("math-101", "room_started", "ev-math-1", 0))
	p.publish(newEvent("other", "room_started", "ev-other-1", 0))
	waitFor(t, 10*time.Second, "first events", func() bool { return lms1.count() == 2 && lms2.count() == 2 })

	// Restart every replica: the registry lives in JetStream, not in a replica.
	for _, r := range first {
		r.stop()
	}
	startReplica(t, ns, cfg("b1"))
	startReplica(t, ns, cfg("b2"))
	p.publish(newEvent("math-101", "participant_joined", "ev-math-2", 0))
	p.publish(newEvent("other", "participant_joined", "ev-other-2", 0))
	p.publish(newEvent("math-101", "room_finished", "ev-math-3", 0))
	p.publish(newEvent("math-101", "analytics_proceeded", "ev-math-4", 0)) // late, within the grace
	waitFor(t, 10*time.Second, "events up to the late one", func() bool { return lms1.count() == 5 && lms2.count() == 5 })
	time.Sleep(1500 * time.Millisecond) // the grace passes
	p.publish(newEvent("math-101", "participant_left", "ev-math-5", 0))
	// The barrier: the room's next meeting registers the same URLs. ev-math-5, had it been
	// sent to them, would have come first, in the room's order at each URL.
	p.publish(roomCreated("math-101", "ev-math-6", lms1.URL(), lms2.URL()))
	waitFor(t, 10*time.Second, "global endpoint gets every event", func() bool { return global.count() == 10 })
	waitFor(t, 10*time.Second, "the next meeting's room_created at lms1 and lms2", func() bool {
		return slices.ContainsFunc(lms1.deliveries(), func(d received) bool { return d.ID == "ev-math-6" }) &&
			slices.ContainsFunc(lms2.deliveries(), func(d received) bool { return d.ID == "ev-math-6" })
	})

	for name, rc := range map[string]*receiver{"lms1": lms1, "lms2": lms2} {
		got := rc.deliveries()
		var ids []string
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		want := []string{"ev-math-0", "ev-math-1", "ev-math-2", "ev-math-3", "ev-math-4", "ev-math-6"}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("%s got %v, want %v (room_created first, only its room, nothing after the grace)", name, ids, want)
		}
	}
}

func TestSameURLForManyRoomsIsOneEndpoint(t *testing.T) {
	ns := startServer(t, t.TempDir())
	healthy := newReceiver(t)
	lmsAddr := reservePort(t)
	lms := newReceiver(t)
	lmsURL := "http://" + lmsAddr + "/webhook"
	cfg := isolationConfig("r1", healthy.URL())
	rep := startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}
	const rooms, perRoom = 200, 5
	for r := 0; r < rooms; r++ {
		p.publish(roomCreated(fmt.Sprintf("room-%d", r), fmt.Sprintf("ev-%d-0", r), lmsURL))
	}
	for i := 1; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 0))
		}
	}
	// While the shared URL is down, the global endpoint gets everything.
	waitFor(t, 30*time.Second, "healthy endpoint", func() bool { return healthy.count() == rooms*perRoom })
	views, _ := rep.d.Directory().Snapshot()
	perRoomEndpoints := 0
	for _, v := range views {
		if !v.Global {
			perRoomEndpoints++
			if v.URL != lmsURL {
				t.Errorf("unexpected per-room endpoint %s", v.URL)
			}
		}
	}
	if perRoomEndpoints != 1 {
		t.Errorf("%d per-room endpoints for one URL registered by %d rooms; want 1", perRoomEndpoints, rooms)
	}
	listenReceiver(t, lms, lmsAddr)
	waitFor(t, 60*time.Second, "every room's events at the shared URL", func() bool { return distinct(lms) == rooms*perRoom })
	checkOrder(t, "shared per-room URL", lms.deliveries(), eventIndex)
}
