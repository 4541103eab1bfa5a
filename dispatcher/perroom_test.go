package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/rooms"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/subscriber"
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

// TestRoomEndpointCap: at ROOMHOOK_MAX_ROOM_ENDPOINTS live per-room endpoints, a room with a
// new URL is refused that endpoint: no endpoint is made, the room's record lists none, the
// refusal is counted, and the room's events still reach the global endpoint, in order. The
// rooms registered before keep theirs.
func TestRoomEndpointCap(t *testing.T) {
	ns := startServer(t, t.TempDir())
	global, lms1, lms2, lms3 := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	cfg := testConfig("r1", global.URL())
	cfg.MaxRoomEndpoints = 2
	rep := startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}

	// One after the other: the cap is counted from what the replica has made.
	p.publish(roomCreated("room-1", "ev-1-0", lms1.URL()))
	waitFor(t, 10*time.Second, "room-1's URL", func() bool { return lms1.count() == 1 })
	p.publish(roomCreated("room-2", "ev-2-0", lms2.URL()))
	waitFor(t, 10*time.Second, "room-2's URL", func() bool { return lms2.count() == 1 })
	p.publish(roomCreated("room-3", "ev-3-0", lms3.URL()))
	for r := 1; r <= 3; r++ {
		p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-1", r), 0))
	}
	waitFor(t, 10*time.Second, "every event at the global endpoint", func() bool { return global.count() == 6 })
	waitFor(t, 10*time.Second, "room-1 and room-2 at their URLs", func() bool { return lms1.count() == 2 && lms2.count() == 2 })
	checkOrder(t, "global endpoint", global.deliveries(), eventIndex)

	if got := testutil.ToFloat64(rep.d.metrics.RoomEndpointsRefused); got != 1 {
		t.Errorf("roomhook_room_endpoints_refused_total %v, want 1", got)
	}
	views, _ := rep.d.Directory().Snapshot()
	var urls []string
	for _, v := range views {
		if !v.Global {
			urls = append(urls, v.URL)
		}
	}
	slices.Sort(urls)
	want := []string{lms1.URL(), lms2.URL()}
	slices.Sort(want)
	if !slices.Equal(urls, want) {
		t.Errorf("per-room endpoints %v, want room-1's and room-2's %v", urls, want)
	}
	kv, err := js.KeyValue(context.Background(), rep.d.names.RoomsBucket())
	if err != nil {
		t.Fatal(err)
	}
	records := map[string][]string{}
	for room, rec := range roomRecords(t, kv) {
		records[room] = rec.EndpointIDs()
	}
	wantRecords := map[string][]string{
		"room-1": {endpoint.ID(lms1.URL())}, "room-2": {endpoint.ID(lms2.URL())}, "room-3": {},
	}
	if fmt.Sprint(records) != fmt.Sprint(wantRecords) {
		t.Errorf("room records %v, want %v (the refused URL in none)", records, wantRecords)
	}
	if n := lms3.count(); n != 0 {
		t.Errorf("the refused URL got %d deliveries", n)
	}
}

// roomRecords reads every record of the rooms bucket, by room.
func roomRecords(t *testing.T, kv jetstream.KeyValue) map[string]rooms.Record {
	t.Helper()
	out := map[string]rooms.Record{}
	err := subscriber.ReadKV(context.Background(), kv, jetstream.AllKeys, func(e jetstream.KeyValueEntry) {
		var rec rooms.Record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Errorf("room record %s: %v", e.Key(), err)
		}
		out[rec.Room] = rec
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
