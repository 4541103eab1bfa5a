package dispatcher

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
)

// eventOfSize returns a valid event of room whose encoding is exactly size bytes, padded with
// room metadata.
func eventOfSize(t *testing.T, room, name, id string, size int) []byte {
	t.Helper()
	evt := newEvent(room, name, id, 1761815000)
	evt.Room.Metadata = proto.String("")
	start := size - len(mustMarshal(t, evt))
	// The metadata's length prefix grows with it, so the exact size is a few bytes short of
	// start.
	for pad := start; pad >= 0 && pad > start-4; pad-- {
		evt.Room.Metadata = proto.String(strings.Repeat("m", pad))
		if b := mustMarshal(t, evt); len(b) == size {
			return b
		}
	}
	t.Fatalf("cannot build a %d-byte event", size)
	return nil
}

func TestInvalidEventsDeadLettered(t *testing.T) {
	const room = "invalid room.1"
	const maxBytes = 2048
	invalid := []struct {
		name   string
		data   []byte
		detail []string // the detail must name the problem
	}{
		{"not protobuf", []byte("this is not protobuf, just text"), []string{schema.ErrDecodeEvent.Error()}},
		{"room differs from the subject's", mustMarshal(t, newEvent("another room", "participant_joined", "bad-mismatch", 1761815000)),
			[]string{`"another room"`, fmt.Sprintf("%q", room)}},
		{"no room", mustMarshal(t, func() proto.Message {
			evt := newEvent(room, "participant_joined", "bad-noroom", 1761815000)
			evt.Room = nil
			return evt
		}()), []string{"room_id"}},
		{"over the size limit", eventOfSize(t, room, "participant_joined", "bad-oversized", 2*maxBytes),
			[]string{fmt.Sprint(2 * maxBytes), fmt.Sprint(maxBytes)}},
	}
	// The oversized event is valid in every other respect, so only its size can refuse it.
	if evt, err := schema.DecodeEvent(invalid[3].data); err != nil || evt.GetRoom().GetRoomId() != room || len(invalid[3].data) != 2*maxBytes {
		t.Fatalf("oversized event: %d bytes, room %q, %v", len(invalid[3].data), evt.GetRoom().GetRoomId(), err)
	}
	rc := newReceiver(t)
	ns := startServer(t, t.TempDir())
	cfg := testConfig("r1", rc.URL())
	cfg.MaxEventBytes = maxBytes
	rep := startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}
	good := func(i int) string { return fmt.Sprintf("ev-inv-%d", i) }

	// good 0, bad 0, good 1, bad 1, ... good n: each bad event sits between two good ones.
	subject, err := schema.Address{Region: "default", Room: room, Event: "participant_joined"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range invalid {
		p.publish(newEvent(room, "participant_joined", good(i), 1761815000))
		p.publishRaw(room, "participant_joined", fmt.Sprintf("bad-%d", i), bad.data)
	}
	p.publish(newEvent(room, "participant_joined", good(len(invalid)), 1761815000))

	dls := waitDeadLetters(t, js, "roomhook.dlq.default.invalid", len(invalid), 10*time.Second)
	waitFor(t, 10*time.Second, "good events delivered", func() bool { return len(deliveredIDs(rc)) >= len(invalid)+1 })
	if len(dls) != len(invalid) {
		t.Fatalf("invalid dead letters = %d, want %d", len(dls), len(invalid))
	}
	// The router handles the stream in order, so the dead letters are in publish order.
	for i, bad := range invalid {
		t.Run(bad.name, func(t *testing.T) {
			dl := dls[i]
			if dl.Reason != deadletter.ReasonInvalid || dl.EndpointID != deadletter.ReasonInvalid {
				t.Errorf("reason %q, endpoint %q; want %q for both", dl.Reason, dl.EndpointID, deadletter.ReasonInvalid)
			}
			if dl.Subject != subject {
				t.Errorf("subject = %q, want the original %q", dl.Subject, subject)
			}
			if dl.Room != room || dl.Event != "participant_joined" {
				t.Errorf("room %q, event %q; want the subject's %q, participant_joined", dl.Room, dl.Event, room)
			}
			for _, want := range bad.detail {
				if !strings.Contains(dl.Detail, want) {
					t.Errorf("detail = %q, want it to contain %q", dl.Detail, want)
				}
			}
			if !bytes.Equal(dl.Body, bad.data) || dl.Truncated {
				t.Errorf("body = %d bytes (truncated %v), want the original %d bytes", len(dl.Body), dl.Truncated, len(bad.data))
			}
			if dl.EventSeq == 0 {
				t.Errorf("EventSeq = 0, want the event's sequence in the events stream")
			}
		})
	}

	// Only the good events were delivered, each in order.
	got := rc.deliveries()
	checkOrder(t, "receiver", got, eventIndex)
	for id := range deliveredIDs(rc) {
		if !strings.HasPrefix(id, "ev-inv-") {
			t.Errorf("invalid event %q was delivered", id)
		}
	}
	for i := 0; i <= len(invalid); i++ {
		if deliveredIDs(rc)[good(i)] < 1 {
			t.Errorf("good event %s not delivered", good(i))
		}
	}

	// The service keeps running: a later event still goes out.
	later := good(len(invalid) + 1)
	p.publish(newEvent(room, "participant_left", later, 1761815001))
	waitFor(t, 10*time.Second, "a later event delivered", func() bool { return deliveredIDs(rc)[later] > 0 })
	if !rep.d.Ready() {
		t.Errorf("dispatcher is not ready after invalid input")
	}
	checkOrder(t, "receiver", rc.deliveries(), eventIndex)
}

// misshapenSubjects are events subjects of region "default" that the events stream stores
// (they are under roomhook.events.default.>) but that have more than the contract's five
// tokens. (One with four is not copied into the partition stream: docs/architecture.md,
// "Limits we know of".)
var misshapenSubjects = []struct {
	name, subject, room string
}{
	{"a token too many", "roomhook.events.default.misshapen-room.participant_joined.extra", "misshapen-room"},
	{"two tokens too many", "roomhook.events.default.misshapen-room.participant_joined.a.b", "misshapen-room"},
}

// TestMisshapenSubjectsDeadLettered publishes events on subjects with too many tokens between valid events of the same room: each is dead-lettered invalid with a reason
// naming its subject, and the valid ones are delivered, in order.
func TestMisshapenSubjectsDeadLettered(t *testing.T) {
	const room = "misshapen-room"
	rc := newReceiver(t)
	ns := startServer(t, t.TempDir())
	startReplica(t, ns, testConfig("r1", rc.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	good := func(i int) string { return fmt.Sprintf("ev-shape-%d", i) }
	for i, bad := range misshapenSubjects {
		p.publish(newEvent(room, "participant_joined", good(i), 1761815000))
		p.publishOn(bad.subject, fmt.Sprintf("bad-shape-%d", i), mustMarshal(t, newEvent(room, "participant_joined", fmt.Sprintf("bad-shape-%d", i), 1761815000)))
	}
	last := good(len(misshapenSubjects))
	p.publish(newEvent(room, "participant_joined", last, 1761815000))

	logCopyOnFailure(t, js, 4)
	dls := waitDeadLetters(t, js, "roomhook.dlq.default.invalid", len(misshapenSubjects), 10*time.Second)
	waitFor(t, 10*time.Second, "the last good event delivered", func() bool { return deliveredIDs(rc)[last] > 0 })
	if len(dls) != len(misshapenSubjects) {
		t.Fatalf("%d invalid dead letters, want %d", len(dls), len(misshapenSubjects))
	}
	for i, bad := range misshapenSubjects {
		t.Run(bad.name, func(t *testing.T) {
			dl := dls[i] // one room, one partition: dead-lettered in publish order
			if dl.Reason != deadletter.ReasonInvalid || dl.Subject != bad.subject || dl.Room != bad.room {
				t.Errorf("reason %q, subject %q, room %q; want %q, %q, %q", dl.Reason, dl.Subject, dl.Room,
					deadletter.ReasonInvalid, bad.subject, bad.room)
			}
			if !strings.Contains(dl.Detail, "tokens") {
				t.Errorf("detail %q does not say what is wrong with the subject", dl.Detail)
			}
			if dl.EventSeq == 0 {
				t.Errorf("EventSeq = 0, want the event's sequence in the events stream")
			}
		})
	}
	for id, n := range deliveredIDs(rc) {
		if !strings.HasPrefix(id, "ev-shape-") || n != 1 {
			t.Errorf("%s delivered %d times; want only the good events, once each", id, n)
		}
	}
	if got := len(deliveredIDs(rc)); got != len(misshapenSubjects)+1 {
		t.Errorf("%d good events delivered, want %d", got, len(misshapenSubjects)+1)
	}
	checkOrder(t, "receiver", rc.deliveries(), eventIndex)
}

// TestMisshapenSubjectsAfterUpgrade runs this build on a region whose partition stream an
// earlier build made, copying only well-formed subjects. Provisioning gives its source the
// new transforms without copying again what the old one had copied: the events published
// before (without a Nats-Msg-Id, so that the partition stream could not drop second copies)
// are delivered once each, a misshapen event published before the last of them stays in the
// events stream only, as documented, and one published after the upgrade is dead-lettered.
func TestMisshapenSubjectsAfterUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name     string
		replicas int // of the streams; 3 on a 3-node cluster
	}{{"one server", 1}, {"3-node cluster", 3}} {
		t.Run(tt.name, func(t *testing.T) { testMisshapenSubjectsAfterUpgrade(t, tt.replicas) })
	}
}

func testMisshapenSubjectsAfterUpgrade(t *testing.T, replicas int) {
	ctx := context.Background()
	rc := newReceiver(t)
	cfg := testConfig("r1", rc.URL())
	cfg.StreamReplicas = replicas
	var js jetstream.JetStream
	var startThisBuild func()
	if replicas == 1 {
		ns := startServer(t, t.TempDir())
		_, js = connect(t, ns)
		startThisBuild = func() { startReplica(t, ns, cfg) }
	} else {
		if testing.Short() {
			t.Skip("starts a 3-node JetStream cluster")
		}
		c := natstest.NewCluster(t)
		_, js = natstest.Connect(t, c.ClientURLs())
		startThisBuild = func() {
			r := startClusterReplica(t, c, cfg)
			waitFor(t, 30*time.Second, "replica ready", r.d.Ready)
		}
	}
	p := publisher{t, js}
	logCopyOnFailure(t, js, 4)
	const partStream = "ROOMHOOK_PART_DEFAULT"
	// The streams as the earlier build made them.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, MaxAge: time.Hour, Duplicates: 2 * time.Minute,
		Replicas: replicas,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: partStream,
		Sources: []*jetstream.StreamSource{{Name: schema.EventsStreamName("default"), SubjectTransforms: []jetstream.SubjectTransformConfig{{
			Source: "roomhook.events.default.*.*", Destination: "roomhook.part.default.{{partition(4,1)}}.{{wildcard(1)}}.{{wildcard(2)}}",
		}}}},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: replicas,
		Metadata: map[string]string{"roomhook_partitions": "4"},
	}); err != nil {
		t.Fatal(err)
	}
	rooms := []string{"up-a", "up-b", "up-c"}
	const before = 12
	publishGood := func(i int, withID bool) string {
		room := rooms[i%len(rooms)]
		id := fmt.Sprintf("ev-%s-%d", room, i)
		msgID := ""
		if withID {
			msgID = id
		}
		p.publishRaw(room, "participant_joined", msgID, mustMarshal(t, newEvent(room, "participant_joined", id, 1761815000)))
		return id
	}
	for i := range before {
		if i == before/2 {
			p.publishOn("roomhook.events.default.up-a.participant_joined.x", "", mustMarshal(t, newEvent("up-a", "participant_joined", "bad-before", 1761815000)))
		}
		publishGood(i, false)
	}
	waitFor(t, 10*time.Second, "the earlier build's partition stream copied the events", func() bool {
		st, err := js.Stream(ctx, partStream)
		return err == nil && st.CachedInfo().State.Msgs == before
	})

	startThisBuild()
	st, err := js.Stream(ctx, partStream)
	if err != nil {
		t.Fatal(err)
	}
	if srcs := st.CachedInfo().Config.Sources; len(srcs) != 1 || len(srcs[0].SubjectTransforms) != 1 ||
		srcs[0].SubjectTransforms[0].Source != "roomhook.events.default.*.>" {
		t.Fatalf("partition stream sources after the upgrade: %+v; want one, copying roomhook.events.default.*.>", srcs)
	}
	p.publishOn("roomhook.events.default.up-b.participant_joined.extra", "bad-after",
		mustMarshal(t, newEvent("up-b", "participant_joined", "bad-after", 1761815000)))
	const after = 2 * 3 // two for each room
	for i := before; i < before+after; i++ {
		publishGood(i, true)
	}
	dls := waitDeadLetters(t, js, "roomhook.dlq.default.invalid", 1, 10*time.Second)
	waitFor(t, 10*time.Second, "every event delivered", func() bool { return len(deliveredIDs(rc)) == before+after })
	// Every room's events after the upgrade are delivered, and a room's partition is read in
	// order: a second copy of an earlier event, or a copy of bad-before, would have come first.
	if len(dls) != 1 || dls[0].Subject != "roomhook.events.default.up-b.participant_joined.extra" {
		t.Errorf("dead letters %+v; want only bad-after's", dls)
	}
	got := deliveredIDs(rc)
	for i := range before + after {
		room := rooms[i%len(rooms)]
		if id := fmt.Sprintf("ev-%s-%d", room, i); got[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, got[id])
		}
	}
	if len(got) != before+after {
		t.Errorf("%d events delivered, want %d: %v", len(got), before+after, got)
	}
	checkOrder(t, "receiver", rc.deliveries(), eventIndex)
}

// TestUnroutedEventsGauge publishes events on a subject without an event token, which the
// events stream stores and the partition stream does not copy: the replica reports how many
// there are, so that an alert can tell, and events after them flow.
func TestUnroutedEventsGauge(t *testing.T) {
	rc := newReceiver(t)
	ns := startServer(t, t.TempDir())
	m := NewMetrics(nil)
	startReplica(t, ns, testConfig("r1", rc.URL()), WithMetrics(m),
		func(d *Dispatcher) { d.unroutedEvery = 50 * time.Millisecond })
	_, js := connect(t, ns)
	p := publisher{t, js}
	for i := range 2 {
		p.publishOn("roomhook.events.default.unrouted-room", fmt.Sprintf("unrouted-%d", i),
			mustMarshal(t, newEvent("unrouted-room", "participant_joined", fmt.Sprintf("unrouted-%d", i), 1761815000)))
	}
	p.publish(newEvent("unrouted-room", "participant_joined", "ev-after-0", 1761815000))
	waitFor(t, 10*time.Second, "the gauge to count both", func() bool { return testutil.ToFloat64(m.UnroutedEvents) == 2 })
	waitFor(t, 10*time.Second, "the event after them delivered", func() bool { return deliveredIDs(rc)["ev-after-0"] == 1 })
	if got := deliveredIDs(rc); len(got) != 1 {
		t.Errorf("delivered %v, want only ev-after-0", got)
	}
	if dls := deadLetters(t, js, "roomhook.dlq.default.invalid"); len(dls) != 0 {
		t.Errorf("%d dead letters, want none: the unrouted events are counted, not dead-lettered", len(dls))
	}
}
