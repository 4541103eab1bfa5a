package tail

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

const region = "default"

func setup(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns := natstest.NewServer(t)
	nc, js := natstest.Connect(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName(region), Subjects: []string{schema.EventsSubjects(region)},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func event(name, room, id string) *roomhookv1.Event {
	evt := &roomhookv1.Event{
		Event: proto.String(name),
		Room:  &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
	}
	if id != "" {
		evt.Id, evt.CreatedAt = proto.String(id), proto.Int64(1761815000)
	}
	if name == schema.EventParticipantJoined {
		evt.Participant = &livekit.ParticipantInfo{Sid: "PA_1", Identity: "u1"}
	}
	return evt
}

func publish(t *testing.T, js jetstream.JetStream, evt *roomhookv1.Event) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := schema.Publish(ctx, js, region, evt)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// startTail starts a tail that stops when the test ends.
func startTail(t *testing.T, js jetstream.JetStream, f Filter) *Tail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := Start(ctx, js, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tl.Stop)
	return tl
}

func next(t *testing.T, tl *Tail) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := tl.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestTailFilters: with Since, the stored events that match, in stream order,
// each rendered as its webhook body; then, live, the next ones: an event that
// does not match, then a barrier that does, which must come next.
func TestTailFilters(t *testing.T) {
	start := time.Now().Add(-time.Second)
	history := []*roomhookv1.Event{
		event(schema.EventRoomStarted, "a.room", "EV_1"),
		event(schema.EventRoomStarted, "b", "EV_2"),
		event(schema.EventParticipantJoined, "a.room", ""), // id from the stream, created_at from the store time
		event(schema.EventParticipantJoined, "b", "EV_4"),
	}
	tests := []struct {
		name   string
		filter Filter
		want   []int // indexes into history, in order
	}{
		{name: "everything", filter: Filter{Region: region, Since: start}, want: []int{0, 1, 2, 3}},
		{name: "one room", filter: Filter{Region: region, Room: "a.room", Since: start}, want: []int{0, 2}},
		{name: "one event", filter: Filter{Region: region, Event: "PARTICIPANT_JOINED", Since: start}, want: []int{2, 3}},
		{name: "one room's event", filter: Filter{Region: region, Room: "b", Event: schema.EventRoomStarted, Since: start}, want: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := setup(t)
			for _, evt := range history {
				publish(t, js, evt)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tl, err := Start(ctx, js, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			defer tl.Stop()
			for _, i := range tt.want {
				ev := next(t, tl)
				if ev.Err != nil {
					t.Fatal(ev.Err)
				}
				want := history[i]
				fb := schema.Fallback{ID: schema.StreamEventID(schema.EventsStreamName(region), uint64(i+1)), CreatedAt: ev.Stored.Unix()}
				body, err := schema.MarshalBody(want, fb)
				if err != nil {
					t.Fatal(err)
				}
				if ev.Seq != uint64(i+1) || ev.Room != want.GetRoom().GetRoomId() || ev.Name != want.GetEvent() || string(ev.Body) != string(body) {
					t.Fatalf("got seq %d %s %s %s\nwant seq %d %s", ev.Seq, ev.Room, ev.Name, ev.Body, i+1, body)
				}
			}
			// Live now: an event that does not match, then a barrier that does.
			other := event(schema.EventRoomFinished, "c", "EV_other")
			barrier := event(schema.EventRoomStarted, "b", "EV_barrier")
			if tt.filter.Room != "" {
				barrier.Room.RoomId = proto.String(tt.filter.Room)
			}
			if tt.filter.Event != "" {
				barrier.Event = proto.String(strings.ToLower(tt.filter.Event))
				if barrier.GetEvent() == schema.EventParticipantJoined {
					barrier.Participant = &livekit.ParticipantInfo{Sid: "PA_2"}
				}
			}
			publish(t, js, other)
			publish(t, js, barrier)
			got := next(t, tl)
			if tt.name == "everything" {
				if !strings.Contains(string(got.Body), `"id":"EV_other"`) {
					t.Fatalf("want the unfiltered event first, got %s", got.Body)
				}
				got = next(t, tl)
			}
			if !strings.Contains(string(got.Body), barrier.GetId()) {
				t.Fatalf("want the barrier next, got %s (%v)", got.Body, got.Err)
			}
		})
	}
}

// TestTailFromNow: without Since, only what is stored after Start.
func TestTailFromNow(t *testing.T) {
	_, js := setup(t)
	publish(t, js, event(schema.EventRoomStarted, "r", "EV_old"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := Start(ctx, js, Filter{Region: region})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Stop()
	publish(t, js, event(schema.EventRoomFinished, "r", "EV_new"))
	if got := next(t, tl); !strings.Contains(string(got.Body), `"id":"EV_new"`) {
		t.Fatalf("got %s, want EV_new", got.Body)
	}
}

// TestTailEventWithoutName: an event whose payload names no event takes the subject's, as
// the dispatcher delivers it; the tail showed it as invalid while it was being delivered.
func TestTailEventWithoutName(t *testing.T) {
	_, js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl := startTail(t, js, Filter{Region: region})
	unnamed := event(schema.EventRoomStarted, "r", "EV_unnamed")
	unnamed.Event = nil
	data, err := proto.Marshal(unnamed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "roomhook.events.default.r.room_started", data); err != nil {
		t.Fatal(err)
	}
	got := next(t, tl)
	if got.Err != nil || got.Name != schema.EventRoomStarted || !strings.Contains(string(got.Body), `"event":"room_started"`) {
		t.Fatalf("got %q %v %s, want room_started rendered", got.Name, got.Err, got.Body)
	}
}

// TestTailBodyOverMaxPayload: an event that fits the server's max payload but whose body
// does not (control characters in its metadata render six bytes each) is shown as the invalid
// event the dispatcher dead-letters it as.
func TestTailBodyOverMaxPayload(t *testing.T) {
	nc, js := setup(t)
	tl := startTail(t, js, Filter{Region: region})
	big := event(schema.EventRoomStarted, "r", "EV_big")
	big.Room.Metadata = proto.String(strings.Repeat("\x01", int(nc.MaxPayload())/5))
	publish(t, js, big)
	got := next(t, tl)
	if !errors.Is(got.Err, ErrInvalidEvent) || !strings.Contains(got.Err.Error(), "exceeds the NATS server's max payload") || got.Body != nil {
		t.Fatalf("got %v, %d bytes of body; want ErrInvalidEvent for the max payload", got.Err, len(got.Body))
	}
}

// TestTailInvalid: what the dispatcher would dead-letter is shown with its
// reason, and the tail goes on.
func TestTailInvalid(t *testing.T) {
	_, js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := Start(ctx, js, Filter{Region: region, MaxEventBytes: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Stop()

	large := event(schema.EventRoomStarted, "r", "EV_large")
	large.Room.Metadata = proto.String(strings.Repeat("m", 600))
	oversized, err := proto.Marshal(large)
	if err != nil {
		t.Fatal(err)
	}
	mismatch, err := proto.Marshal(event(schema.EventRoomStarted, "other", "EV_x"))
	if err != nil {
		t.Fatal(err)
	}
	routing, err := proto.Marshal(&roomhookv1.Event{Event: proto.String("room_started"), Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("r")}, WebhookUrls: []string{"https://x.example"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, subject string
		data          []byte
		reason        string
	}{
		{name: "undecodable", subject: "roomhook.events.default.r.room_started", data: []byte{0xff, 0xff}, reason: "undecodable"},
		{name: "room differs", subject: "roomhook.events.default.r.room_started", data: mismatch, reason: "in the payload"},
		{name: "routing field", subject: "roomhook.events.default.r.room_started", data: routing, reason: "webhook_urls"},
		{name: "over MaxEventBytes", subject: "roomhook.events.default.r.room_started", data: oversized, reason: "over ROOMHOOK_MAX_EVENT_BYTES (512)"},
		{name: "room token not the codec's", subject: "roomhook.events.default.r%41.room_started", data: mismatch, reason: "room token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer pcancel()
			if _, err := js.Publish(pctx, tt.subject, tt.data); err != nil {
				t.Fatal(err)
			}
			got := next(t, tl)
			if !errors.Is(got.Err, ErrInvalidEvent) || !strings.Contains(got.Err.Error(), tt.reason) || got.Body != nil {
				t.Fatalf("got %v %s, want ErrInvalidEvent with %q", got.Err, got.Body, tt.reason)
			}
		})
	}

	// The tail leaves no durable consumer behind: delivery is not touched.
	tl.Stop()
	st, err := js.Stream(ctx, schema.EventsStreamName(region))
	if err != nil {
		t.Fatal(err)
	}
	for info := range st.ListConsumers(ctx).Info() {
		if info.Config.Durable != "" {
			t.Errorf("durable consumer %q left", info.Config.Durable)
		}
	}
}

func TestFilterSubject(t *testing.T) {
	tests := []struct {
		filter  Filter
		want    string
		wantErr bool
	}{
		{filter: Filter{Region: "eu"}, want: "roomhook.events.eu.*.*"},
		{filter: Filter{Region: "eu", Room: "a b.c"}, want: "roomhook.events.eu.a%20b%2Ec.*"},
		{filter: Filter{Region: "eu", Event: "Room_Started"}, want: "roomhook.events.eu.*.room_started"},
		{filter: Filter{Region: "EU"}, wantErr: true},
		{filter: Filter{Region: "eu", Event: "room.started"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := tt.filter.Subject()
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%+v: got %q, %v; want %q (error %v)", tt.filter, got, err, tt.want, tt.wantErr)
		}
	}
}
