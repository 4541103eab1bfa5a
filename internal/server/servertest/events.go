package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// RoomEvent is a minimal event of room named name with the given id; webhookURLs, for
// room_created, registers the room's own endpoints.
func RoomEvent(room, name, id string, webhookURLs ...string) *roomhookv1.Event {
	return &roomhookv1.Event{
		Event: proto.String(name), Id: proto.String(id),
		Room:        &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
		WebhookUrls: webhookURLs,
	}
}

// publishTimeout bounds each publish's wait for the server's acknowledgement.
const publishTimeout = 10 * time.Second

// Publish publishes the events in region default, in order, each stored before the next.
func Publish(t testing.TB, js jetstream.JetStream, evts ...*roomhookv1.Event) {
	t.Helper()
	for _, evt := range evts {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		_, err := schema.Publish(ctx, js, "default", evt)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// PublishGarbage publishes bytes that are not a protobuf event on a valid subject of room.
func PublishGarbage(t testing.TB, js jetstream.JetStream, room string) {
	t.Helper()
	subject, err := schema.Address{Region: "default", Room: room, Event: "participant_joined"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if _, err := js.Publish(ctx, subject, []byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
}
