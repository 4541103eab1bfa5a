package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomhook/roomhook/endpoint"
)

// TestRetirePassReadsRoomsOnlyWhenTheyChange: a retirement pass reads the rooms bucket (every
// room's registration) only when it changed since the last pass, so that a region with many
// running rooms and nothing new costs no read per room every ROOMHOOK_RETIRE_EVERY.
func TestRetirePassReadsRoomsOnlyWhenTheyChange(t *testing.T) {
	ctx := context.Background()
	ns := startServer(t, t.TempDir())
	global := newReceiver(t)
	hook := newPathReceiver(t)
	c := testConfig("r1", global.URL())
	c.RetireEvery = time.Hour // the passes of this test are the only ones
	rep := startReplica(t, ns, c)
	_, js := connect(t, ns)
	p := publisher{t, js}
	url := func(room string) string { return fmt.Sprintf("%s/hook/%s", hook.srv.URL, room) }
	for r := 0; r < 3; r++ {
		room := fmt.Sprintf("run-%d", r)
		p.publish(roomCreated(room, "ev-"+room, url(room)))
	}
	waitFor(t, 20*time.Second, "room_created at each room's URL", func() bool { return distinct(hook) == 3 })

	// Every read of the rooms bucket makes a consumer on its stream: watch for their creation
	// on the replica's connection, with a barrier after each pass.
	obs, _ := connect(t, ns)
	seen := make(chan *nats.Msg, 64)
	for _, subj := range []string{"$JS.API.CONSUMER.CREATE.KV_ROOMHOOK_ROOMS_DEFAULT", "$JS.API.CONSUMER.CREATE.KV_ROOMHOOK_ROOMS_DEFAULT.>", "retire-barrier"} {
		if _, err := obs.ChanSubscribe(subj, seen); err != nil {
			t.Fatal(err)
		}
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	live := &liveEndpoints{}
	pass := func() int {
		t.Helper()
		if _, err := rep.d.retireIdle(ctx, live); err != nil {
			t.Fatal(err)
		}
		if err := rep.nc.Publish("retire-barrier", nil); err != nil {
			t.Fatal(err)
		}
		reads := 0
		for {
			select {
			case m := <-seen:
				if m.Subject == "retire-barrier" {
					return reads
				}
				reads++
			case <-time.After(10 * time.Second):
				t.Fatal("the barrier after a retirement pass never came")
			}
		}
	}
	if n := pass(); n == 0 {
		t.Fatal("the first pass did not read the rooms bucket")
	}
	if !live.ids[endpoint.ID(url("run-0"))] {
		t.Errorf("the first pass did not find run-0's endpoint live: %v", live.ids)
	}
	if n := pass(); n != 0 {
		t.Errorf("a pass with no room changed read the rooms bucket %d times, want 0", n)
	}
	p.publish(roomCreated("run-3", "ev-run-3", url("run-3")))
	waitFor(t, 20*time.Second, "run-3's room_created", func() bool { return distinct(hook) == 4 })
	if n := pass(); n == 0 {
		t.Error("a pass after a room registered did not read the rooms bucket")
	}
	if !live.ids[endpoint.ID(url("run-3"))] {
		t.Errorf("the pass after run-3 registered did not find its endpoint live")
	}
}
