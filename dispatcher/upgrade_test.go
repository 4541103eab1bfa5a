package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/schema"
)

// TestUpgradeFromFirstVersion builds, by hand, what a region running the first version leaves
// behind: its events stream, its deliver stream holding queued deliveries for an endpoint,
// and its router consumer, whose ack floor covers the events it already queued. A v2 replica
// then delivers every pending delivery in order, then what the first version had not routed
// and what is published afterwards, nothing twice, and removes the first version's stream and
// consumer.
func TestUpgradeFromFirstVersion(t *testing.T) {
	ctx := context.Background()
	ns := startServer(t, t.TempDir())
	rc := newReceiver(t)
	cfg := testConfig("v2", rc.URL())
	id := endpoint.ID(rc.URL())
	_, js := connect(t, ns)
	p := publisher{t, js}

	// The first version's events stream, as it made it.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		MaxAge: cfg.StreamMaxAge, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	const rooms, routed = 3, 4 // routed events per room, queued by the first version
	room := func(r int) string { return fmt.Sprintf("up-%d", r) }
	evID := func(r, i int) string { return fmt.Sprintf("ev-%s-%d", room(r), i) }
	for i := 0; i < routed; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(room(r), "participant_joined", evID(r, i), 1761815000+int64(i)))
		}
	}

	// Its router read and acknowledged them, queueing each one for the endpoint.
	router, err := js.CreateOrUpdateConsumer(ctx, schema.EventsStreamName("default"), jetstream.ConsumerConfig{
		Durable: "roomhook_router", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	deliver, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "ROOMHOOK_DELIVER_DEFAULT", Subjects: []string{"roomhook.deliver.default.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := router.Fetch(rooms*routed, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		evt, err := schema.DecodeEvent(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		body, err := schema.MarshalBody(evt, schema.Fallback{ID: schema.StreamEventID(schema.EventsStreamName("default"), meta.Sequence.Stream), CreatedAt: meta.Timestamp.Unix()})
		if err != nil {
			t.Fatal(err)
		}
		q := queue.Queued{Room: evt.GetRoom().GetRoomId(), Event: evt.GetEvent(), EventID: evt.GetId(),
			EventSeq: meta.Sequence.Stream, Stored: meta.Timestamp, Body: body}
		subject := fmt.Sprintf("roomhook.deliver.default.%s.%d", id, queue.Partition(q.Room, cfg.Partitions))
		if _, err := js.PublishMsg(ctx, q.Msg(subject, fmt.Sprintf("%d:%s", q.EventSeq, id))); err != nil {
			t.Fatal(err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := batch.Error(); err != nil || n != rooms*routed {
		t.Fatalf("router fetched %d of %d events (%v)", n, rooms*routed, err)
	}
	if info, err := deliver.Info(ctx); err != nil || info.State.Msgs != uint64(rooms*routed) {
		t.Fatalf("deliver stream: %+v, %v", info, err)
	}
	if info, err := router.Info(ctx); err != nil || info.AckFloor.Stream != uint64(rooms*routed) {
		t.Fatalf("router consumer: %+v, %v", info, err)
	}
	// The first version stopped before routing these.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(room(r), "participant_joined", evID(r, routed), 1761815100))
	}

	startReplica(t, ns, cfg)
	// And these come after the upgrade.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(room(r), "participant_left", evID(r, routed+1), 1761815200))
	}
	total := rooms * (routed + 2)
	waitFor(t, 20*time.Second, "every pending, unrouted and new event", func() bool { return distinct(rc) == total })
	// A barrier: one more event per room, so any repeat of a routed event would be in by now.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(room(r), "participant_left", evID(r, routed+2), 1761815300))
	}
	total += rooms
	waitFor(t, 20*time.Second, "the barrier", func() bool { return distinct(rc) == total })

	got := rc.deliveries()
	checkOrder(t, "upgraded endpoint", got, eventIndex)
	for eid, c := range deliveredIDs(rc) {
		if c != 1 {
			t.Errorf("%s delivered %d times, want once (the first version already routed it)", eid, c)
		}
	}
	// The pending deliveries carry the first version's bodies: ids and rooms as queued.
	for _, g := range got {
		if eventIndex(g) < 0 {
			t.Errorf("unexpected delivery %q of room %q", g.ID, g.Room)
		}
	}

	if _, err := js.Stream(ctx, "ROOMHOOK_DELIVER_DEFAULT"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the first version's deliver stream is still there (err %v)", err)
	}
	if _, err := js.Consumer(ctx, schema.EventsStreamName("default"), "roomhook_router"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the first version's router consumer is still there (err %v)", err)
	}
	waitFor(t, 15*time.Second, "the moved deliveries drained", func() bool {
		return len(spillConsumers(t, js)) == 0 && spillMsgs(t, js, "roomhook.spill.default.>") == 0
	})
}
