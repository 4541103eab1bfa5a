package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// startJetStream runs an embedded NATS server with JetStream in storeDir and
// creates the default region's events stream on it.
func startJetStream(storeDir string) (js jetstream.JetStream, stream jetstream.Stream, stop func(), err error) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, nil, nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, nil, nil, errors.New("embedded NATS server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		srv.Shutdown()
		return nil, nil, nil, err
	}
	stop = func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	if js, err = jetstream.New(nc); err != nil {
		stop()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       schema.EventsStreamName("default"),
		Subjects:   []string{schema.EventsSubjects("default")},
		Storage:    jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return js, stream, stop, nil
}

func newJetStream(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js, stream, stop, err := startJetStream(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return js, stream
}

func joinedEvent(room string) *roomhookv1.Event {
	return &roomhookv1.Event{
		Event: proto.String("PARTICIPANT_JOINED"),
		Room:  &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_x1"), RoomId: proto.String(room)},
	}
}

func TestPublishLandsOnSubject(t *testing.T) {
	js, stream := newJetStream(t)
	ctx := context.Background()

	evt := joinedEvent("team.standup 9:00")
	ack, err := schema.Publish(ctx, js, "default", evt)
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(evt.GetId())
	if err != nil || id.Version() != 4 {
		t.Fatalf("Publish set id %q, want a UUID v4 (%v)", evt.GetId(), err)
	}

	stored, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if want := "roomhook.events.default.team%2Estandup%209%3A00.participant_joined"; stored.Subject != want {
		t.Errorf("subject %q, want %q", stored.Subject, want)
	}
	if got := stored.Header.Get("Nats-Msg-Id"); got != evt.GetId() {
		t.Errorf("Nats-Msg-Id %q, want the event id %q", got, evt.GetId())
	}
	want, err := proto.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Data) != string(want) {
		t.Errorf("payload is not proto.Marshal(evt)")
	}
	addr, err := schema.ParseSubject(stored.Subject)
	if err != nil || addr.Room != "team.standup 9:00" {
		t.Errorf("ParseSubject(%q) = %+v, %v", stored.Subject, addr, err)
	}
}

func TestPublishKeepsGivenID(t *testing.T) {
	js, stream := newJetStream(t)
	ctx := context.Background()

	evt := joinedEvent("room1")
	evt.Id = proto.String("EV_kept")
	ack, err := schema.Publish(ctx, js, "default", evt)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if evt.GetId() != "EV_kept" || stored.Header.Get("Nats-Msg-Id") != "EV_kept" {
		t.Fatalf("id %q, Nats-Msg-Id %q; want EV_kept for both", evt.GetId(), stored.Header.Get("Nats-Msg-Id"))
	}
}

func TestPublishRetryStoredOnce(t *testing.T) {
	js, stream := newJetStream(t)
	ctx := context.Background()

	evt := joinedEvent("room1")
	first, err := schema.Publish(ctx, js, "default", evt)
	if err != nil {
		t.Fatal(err)
	}
	// A publisher that did not see the first ack retries with the same event.
	retry, err := schema.Publish(ctx, js, "default", evt)
	if err != nil {
		t.Fatal(err)
	}
	if !retry.Duplicate || retry.Sequence != first.Sequence {
		t.Errorf("retry ack %+v, want a duplicate of sequence %d", retry, first.Sequence)
	}
	other, err := schema.Publish(ctx, js, "default", joinedEvent("room1"))
	if err != nil {
		t.Fatal(err)
	}
	if other.Duplicate {
		t.Errorf("a new event without id was taken for a duplicate")
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
}

func TestPublishAsync(t *testing.T) {
	js, stream := newJetStream(t)
	ctx := context.Background()

	rooms := []string{"a", "b.c", "d e", "100%"}
	futures := make([]jetstream.PubAckFuture, 0, len(rooms))
	events := make([]*roomhookv1.Event, 0, len(rooms))
	for _, room := range rooms {
		evt := joinedEvent(room)
		f, err := schema.PublishAsync(js, "default", evt)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
		events = append(events, evt)
	}
	// The same event again, as a retry: deduplicated.
	dup, err := schema.PublishAsync(js, "default", events[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range append(futures, dup) {
		select {
		case ack := <-f.Ok():
			if i == len(futures) && !ack.Duplicate {
				t.Errorf("async retry not deduplicated: %+v", ack)
			}
			if i < len(futures) {
				stored, err := stream.GetMsg(ctx, ack.Sequence)
				if err != nil {
					t.Fatal(err)
				}
				addr, err := schema.ParseSubject(stored.Subject)
				if err != nil || addr.Room != rooms[i] || addr.Event != "participant_joined" {
					t.Errorf("message %d on %q (%+v, %v), want room %q", i, stored.Subject, addr, err, rooms[i])
				}
				if stored.Header.Get("Nats-Msg-Id") != events[i].GetId() {
					t.Errorf("message %d Nats-Msg-Id %q, want %q", i, stored.Header.Get("Nats-Msg-Id"), events[i].GetId())
				}
			}
		case err := <-f.Err():
			t.Fatalf("async publish %d: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("async publish %d: no ack", i)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(rooms)) {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, len(rooms))
	}
}

func TestPublishLongRoomID(t *testing.T) {
	js, stream := newJetStream(t)
	ctx := context.Background()
	// The length Address.Subject documents as safe with a default server: 1300
	// bytes that all need escaping, a 3900-byte token.
	room := strings.Repeat(".", 1300)
	ack, err := schema.Publish(ctx, js, "default", joinedEvent(room))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := schema.ParseSubject(stored.Subject)
	if err != nil || addr.Room != room {
		t.Fatalf("long room did not round-trip through JetStream: %v", err)
	}
}

func TestPublishRefusesBadAddress(t *testing.T) {
	js, _ := newJetStream(t)
	tests := []struct {
		name   string
		region string
		evt    *roomhookv1.Event
		want   error
	}{
		{"nil event", "default", nil, schema.ErrInvalidEvent},
		{"no room", "default", &roomhookv1.Event{Event: proto.String("room_started")}, schema.ErrEmptyRoom},
		{"empty room id", "default", &roomhookv1.Event{Event: proto.String("room_started"), Room: &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_1")}}, schema.ErrEmptyRoom},
		{"no event name", "default", &roomhookv1.Event{Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("r")}}, schema.ErrInvalidEvent},
		{"event name with dot", "default", &roomhookv1.Event{Event: proto.String("room.started"), Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("r")}}, schema.ErrInvalidEvent},
		{"bad region", "EU.west", joinedEvent("r"), schema.ErrInvalidRegion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := schema.Publish(context.Background(), js, tt.region, tt.evt)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Publish: %v, want %v", err, tt.want)
			}
			if tt.evt != nil && tt.evt.Id != nil {
				t.Fatalf("Publish set an id on an event it refused")
			}
			if _, err := schema.PublishAsync(js, tt.region, tt.evt); !errors.Is(err, tt.want) {
				t.Fatalf("PublishAsync: %v, want %v", err, tt.want)
			}
		})
	}
}
