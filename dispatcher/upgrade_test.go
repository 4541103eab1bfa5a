package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/rooms"
	"github.com/roomhook/roomhook/schema"
)

// firstVersion is a region running the first version, made by hand on a fresh server: its
// events stream, its deliver stream, and its router consumer, with a route method that queues
// events for one endpoint (rc) as its router did; cfg is the configuration of this version's
// replicas for that endpoint.
type firstVersion struct {
	t       *testing.T
	ns      *server.Server
	rc      *receiver
	cfg     Config
	js      jetstream.JetStream
	p       publisher
	id      string // the endpoint's id
	router  jetstream.Consumer
	deliver jetstream.Stream
}

func newFirstVersion(t *testing.T) *firstVersion {
	t.Helper()
	ctx := context.Background()
	ns := startServer(t, t.TempDir())
	rc := newReceiver(t)
	cfg := testConfig("v2", rc.URL())
	_, js := connect(t, ns)
	// The first version's events stream, as it made it.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
		MaxAge: cfg.StreamMaxAge, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
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
	return &firstVersion{t: t, ns: ns, rc: rc, cfg: cfg, js: js, p: publisher{t, js}, id: endpoint.ID(rc.URL()),
		router: router, deliver: deliver}
}

// route reads n events with the router consumer, queues each for the endpoint in the deliver
// stream, and acknowledges it, as the first version's router did.
func (v *firstVersion) route(n int) {
	v.t.Helper()
	ctx := context.Background()
	batch, err := v.router.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		v.t.Fatalf("the first version's router: %v", err)
	}
	got := 0
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			v.t.Fatal(err)
		}
		evt, err := schema.DecodeEvent(m.Data())
		if err != nil {
			v.t.Fatal(err)
		}
		body, err := schema.MarshalBody(evt, schema.Fallback{ID: schema.StreamEventID(schema.EventsStreamName("default"), meta.Sequence.Stream), CreatedAt: meta.Timestamp.Unix()})
		if err != nil {
			v.t.Fatal(err)
		}
		q := queue.Queued{Room: evt.GetRoom().GetRoomId(), Event: evt.GetEvent(), EventID: evt.GetId(),
			EventSeq: meta.Sequence.Stream, Stored: meta.Timestamp, Body: body}
		subject := fmt.Sprintf("roomhook.deliver.default.%s.%d", v.id, queue.Partition(q.Room, v.cfg.Partitions))
		if _, err := v.js.PublishMsg(ctx, q.Msg(subject, fmt.Sprintf("%d:%s", q.EventSeq, v.id))); err != nil {
			v.t.Fatal(err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			v.t.Fatal(err)
		}
		got++
	}
	if err := batch.Error(); err != nil || got != n {
		v.t.Fatalf("the first version's router fetched %d of %d events (%v)", got, n, err)
	}
}

// checkUpgraded asserts what every upgrade ends with: each of total events arrived once, in
// order per room, with the bodies as queued, and the first version's stream and consumer are
// gone, and so, in the end, are the spill queues the pending deliveries were moved to.
func checkUpgraded(t *testing.T, js jetstream.JetStream, p publisher, rc *receiver, rooms, total int, room func(int) string) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 20*time.Second, "every pending, unrouted and new event", func() bool { return distinct(rc) == total })
	// A barrier: one more event per room, so any repeat of a routed event would be in by now.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(room(r), "participant_left", fmt.Sprintf("ev-%s-%d", room(r), 1000), 1761815300))
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

// TestUpgradeFromFirstVersion builds, by hand, what a region running the first version leaves
// behind: its events stream, its deliver stream holding queued deliveries for an endpoint,
// and its router consumer, whose ack floor covers the events it already queued. A v2 replica
// then delivers every pending delivery in order, then what the first version had not routed
// and what is published afterwards, nothing twice, and removes the first version's stream and
// consumer.
func TestUpgradeFromFirstVersion(t *testing.T) {
	ctx := context.Background()
	v1 := newFirstVersion(t)
	ns, rc, cfg, js, p := v1.ns, v1.rc, v1.cfg, v1.js, v1.p

	const rooms, routed = 3, 4 // routed events per room, queued by the first version
	room := func(r int) string { return fmt.Sprintf("up-%d", r) }
	evID := func(r, i int) string { return fmt.Sprintf("ev-%s-%d", room(r), i) }
	for i := 0; i < routed; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(room(r), "participant_joined", evID(r, i), 1761815000+int64(i)))
		}
	}
	v1.route(rooms * routed)
	if info, err := v1.deliver.Info(ctx); err != nil || info.State.Msgs != uint64(rooms*routed) {
		t.Fatalf("deliver stream: %+v, %v", info, err)
	}
	if info, err := v1.router.Info(ctx); err != nil || info.AckFloor.Stream != uint64(rooms*routed) {
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
	checkUpgraded(t, js, p, rc, rooms, rooms*(routed+2), room)
}

// TestRollingUpgradeFromFirstVersion is a rolling update: a v2 replica starts while a
// first-version replica still routes (it holds the first version's router lease). The new
// replica reports ready, so the rollout goes on, but leaves alone everything the old one uses:
// the old router keeps queueing into its deliver stream. Once the old replica stops and its
// lease is released, the upgrade runs, and every delivery it queued, before and after the new
// replica started, arrives once and in order, then the events it never routed.
func TestRollingUpgradeFromFirstVersion(t *testing.T) {
	ctx := context.Background()
	v1 := newFirstVersion(t)
	ns, rc, cfg, js, p := v1.ns, v1.rc, v1.cfg, v1.js, v1.p
	// The first version's leases bucket, shared with this version, and its router's lease.
	leases, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ROOMHOOK_LEASES_DEFAULT", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Put(ctx, "unit.router", []byte("v1-a")); err != nil {
		t.Fatal(err)
	}

	const rooms = 3
	room := func(r int) string { return fmt.Sprintf("roll-%d", r) }
	publishRound := func(i int) {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(room(r), "participant_joined", fmt.Sprintf("ev-%s-%d", room(r), i), 1761815000+int64(i)))
		}
	}
	publishRound(0)
	v1.route(rooms)

	r := launchReplica(t, ns, cfg)
	waitFor(t, 10*time.Second, "the new replica waiting for the old one, or running", func() bool { return r.d.Deferring() || r.d.Ready() })
	// The old router goes on: without the wait, the upgrade would have deleted its consumer
	// and stream under it.
	publishRound(1)
	v1.route(rooms)
	if _, err := js.Stream(ctx, "ROOMHOOK_PART_DEFAULT"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the partition stream was made while the first version still routes (err %v)", err)
	}
	if r.d.Ready() {
		t.Error("the new replica took work while the first version still routes")
	}

	// The old replica stops and releases its lease; the next event it never routed.
	if err := leases.Delete(ctx, "unit.router"); err != nil {
		t.Fatal(err)
	}
	publishRound(2)
	waitFor(t, 15*time.Second, "the new replica running", r.d.Ready)
	if r.d.Deferring() {
		t.Error("the new replica still says it waits for the first version")
	}
	publishRound(3)
	checkUpgraded(t, js, p, rc, rooms, rooms*4, room)
}

// TestUpgradeRoomsKeepsNewerRecords: replicas of a rolling upgrade re-key the first version's
// room registrations at once, so one may read a room's old record after another has moved it
// and the room's owner has written it since. Such a late copy must change nothing: a room
// finished since stays finished, one swept since stays gone, one registered again keeps its
// new endpoints. A room nobody moved yet is moved, and every old key goes.
func TestUpgradeRoomsKeepsNewerRecords(t *testing.T) {
	ctx := context.Background()
	ns := startServer(t, t.TempDir())
	cfg := testConfig("v2")
	_, js := connect(t, ns)
	first := startReplica(t, ns, cfg) // makes the buckets
	kv, err := js.KeyValue(ctx, first.d.names.RoomsBucket())
	if err != nil {
		t.Fatal(err)
	}
	first.stop()

	record := func(rec rooms.Record) []byte {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(key string, rec rooms.Record) {
		if _, err := kv.Put(ctx, key, record(rec)); err != nil {
			t.Fatal(err)
		}
	}
	finishedAt := time.Now().UTC().Truncate(time.Second) // within the grace: not swept
	cases := []struct {
		name string
		// since writes what the room's owner wrote under the new key after another replica
		// moved it; nil: nobody moved the room yet.
		since func(key string)
		want  *rooms.Record // the new key at the end; nil: no record
	}{
		{name: "not moved yet", want: &rooms.Record{Endpoints: []string{"old-ep"}, CreatedSeq: 1}},
		{name: "finished since", since: func(key string) {
			put(key, rooms.Record{Room: "finished since", Endpoints: []string{"old-ep"}, CreatedSeq: 1, FinishedAt: finishedAt})
		}, want: &rooms.Record{Endpoints: []string{"old-ep"}, CreatedSeq: 1, FinishedAt: finishedAt}},
		{name: "swept since", since: func(key string) {
			put(key, rooms.Record{Room: "swept since", Endpoints: []string{"old-ep"}, CreatedSeq: 1})
			if err := kv.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "registered again", since: func(key string) {
			put(key, rooms.Record{Room: "registered again", Endpoints: []string{"new-ep"}, CreatedSeq: 9})
		}, want: &rooms.Record{Endpoints: []string{"new-ep"}, CreatedSeq: 9}},
	}
	for _, c := range cases {
		put(rooms.LegacyKey(c.name), rooms.Record{Room: c.name, Endpoints: []string{"old-ep"}, CreatedSeq: 1})
		if c.since != nil {
			c.since(rooms.Key(queue.Partition(c.name, cfg.Partitions), c.name))
		}
	}

	startReplica(t, ns, cfg) // upgrades the rooms before it is ready
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := kv.Get(ctx, rooms.LegacyKey(c.name)); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Errorf("the first version's key is still there (err %v)", err)
			}
			e, err := kv.Get(ctx, rooms.Key(queue.Partition(c.name, cfg.Partitions), c.name))
			if c.want == nil {
				if !errors.Is(err, jetstream.ErrKeyNotFound) {
					t.Errorf("the room is back: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got rooms.Record
			if err := json.Unmarshal(e.Value(), &got); err != nil {
				t.Fatal(err)
			}
			want := *c.want
			want.Room = c.name
			if !got.FinishedAt.Equal(want.FinishedAt) || got.CreatedSeq != want.CreatedSeq || !slices.Equal(got.Endpoints, want.Endpoints) {
				t.Errorf("record %+v, want %+v", got, want)
			}
		})
	}
}
