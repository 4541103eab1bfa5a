package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/schema"
)

// TestSpilledDeliveriesAreBatched: a down endpoint's backlog is stored several deliveries to
// a message, counted exactly in deliveries, and delivered once each, in order, when the
// endpoint is back; a spilled message that cannot be read is dead-lettered invalid with the
// cause and stops nothing else of its queue.
func TestSpilledDeliveriesAreBatched(t *testing.T) {
	const rooms, perRoom = 10, 40
	const total = rooms * perRoom
	ns := startServer(t, t.TempDir())
	deadAddr := reservePort(t)
	dead := newReceiver(t)
	deadURL := "http://" + deadAddr + "/webhook"
	id := endpoint.ID(deadURL)
	rep := startReplica(t, ns, isolationConfig("r1", deadURL))
	_, js := connect(t, ns)

	// Published as fast as the server takes them, so the endpoint's spill writers find
	// several deliveries waiting each time.
	for i := 0; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			room := fmt.Sprintf("room-%d", r)
			evt := newEvent(room, "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000)
			subject, err := schema.Address{Region: "default", Room: room, Event: "participant_joined"}.Subject()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: mustMarshal(t, evt)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("publishing did not complete")
	}

	spilled := func() uint64 {
		n, err := rep.d.spillCount(context.Background(), rep.d.names.SpillEndpointFilter(id))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, 30*time.Second, "the whole backlog in the spill stream", func() bool { return spilled() == total })
	st, err := js.Stream(context.Background(), rep.d.names.SpillStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d deliveries stored in %d messages", total, info.State.Msgs)
	if info.State.Msgs >= total {
		t.Errorf("%d deliveries took %d stored messages; want fewer, several to a message", total, info.State.Msgs)
	}

	// A message no version writes: the batch header with a body that is not a batch.
	bad := nats.NewMsg(rep.d.names.SpillSubject(id, 0, 1))
	bad.Header.Set(queue.HeaderBatch, "1")
	bad.Data = []byte("\xffnot a batch")
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = js.PublishMsg(pctx, bad)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if got := spilled(); got != total+1 {
		t.Errorf("backlog %d deliveries, want %d", got, total+1)
	}

	listenReceiver(t, dead, deadAddr)
	dls := waitDeadLetters(t, js, dlqSubject(id), 1, 30*time.Second)
	if dls[0].Reason != deadletter.ReasonInvalid || !strings.Contains(dls[0].Detail, queue.ErrBadBatch.Error()) {
		t.Errorf("dead letter %q %q; want %q naming %q", dls[0].Reason, dls[0].Detail, deadletter.ReasonInvalid, queue.ErrBadBatch)
	}
	waitFor(t, 60*time.Second, "the backlog once the endpoint is back", func() bool { return distinct(dead) == total })
	waitSettled(t, js, 30*time.Second)
	got := dead.deliveries()
	checkOrder(t, "returned endpoint", got, eventIndex)
	if len(got) != total {
		t.Errorf("%d deliveries of %d events: a delivery was repeated without a restart", len(got), total)
	}
}

// TestReplicaKilledWhileDrainingBatches: a replica dies while it drains an endpoint's batched
// backlog, some batches half delivered. The survivor takes its partitions over and the
// endpoint gets every event, each room's first arrivals in order; the repeats this may cost
// (the dead replica's half-delivered batches, its spilled deliveries not yet acknowledged in
// the partition) are logged.
func TestReplicaKilledWhileDrainingBatches(t *testing.T) {
	const rooms, perRoom = 20, 30
	ns := startServer(t, t.TempDir())
	addr := reservePort(t)
	rc := newReceiver(t)
	rc.delay = 2 * time.Millisecond
	url := "http://" + addr + "/webhook"
	id := endpoint.ID(url)
	var reps []*replica
	for i := 0; i < 2; i++ {
		reps = append(reps, startReplica(t, ns, isolationConfig(fmt.Sprintf("r%d", i), url)))
	}
	waitFor(t, 10*time.Second, "both replicas own work", func() bool {
		return len(reps[0].d.Owned()) > 0 && len(reps[1].d.Owned()) > 0
	})
	_, js := connect(t, ns)
	p := publisher{t, js}
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			for r := 0; r < rooms; r++ {
				p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
			}
		}
	}
	publish(0, perRoom)
	waitFor(t, 30*time.Second, "the backlog in the spill stream", func() bool {
		n, err := reps[1].d.spillCount(context.Background(), reps[1].d.names.SpillEndpointFilter(id))
		return err == nil && n == rooms*perRoom
	})
	listenReceiver(t, rc, addr)
	waitFor(t, 30*time.Second, "part of the backlog delivered", func() bool { return rc.count() >= rooms*perRoom/4 })
	reps[0].kill()
	publish(perRoom, perRoom+10) // the survivor's barrier: later events of every room
	total := rooms * (perRoom + 10)
	waitFor(t, 60*time.Second, "every event after the kill", func() bool { return distinct(rc) == total })
	waitSettled(t, js, 30*time.Second)
	got := rc.deliveries()
	checkOrder(t, "endpoint", got, eventIndex)
	t.Logf("%d deliveries of %d events after a replica was killed mid-drain: %d repeats", len(got), total, len(got)-total)
}

// A batch published again (its acknowledgement lost) has the same message id, so the spill
// stream drops it; a batch of other events, even with the same first, last and count, does not.
func TestBatchMsgID(t *testing.T) {
	seqs := func(ss ...uint64) []queue.Queued {
		out := make([]queue.Queued, len(ss))
		for i, s := range ss {
			out[i].EventSeq = s
		}
		return out
	}
	a := batchMsgID("ep", seqs(5, 7, 9))
	tests := []struct {
		name string
		id   string
		same bool
	}{
		{"the same batch again", batchMsgID("ep", seqs(5, 7, 9)), true},
		{"another event in the middle", batchMsgID("ep", seqs(5, 8, 9)), false},
		{"another endpoint", batchMsgID("other", seqs(5, 7, 9)), false},
		{"fewer events", batchMsgID("ep", seqs(5, 9)), false},
	}
	for _, tt := range tests {
		if (tt.id == a) != tt.same {
			t.Errorf("%s: id %q against %q, want same %v", tt.name, tt.id, a, tt.same)
		}
	}
}
