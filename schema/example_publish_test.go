package schema_test

import (
	"context"
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

func ExamplePublish() {
	// An embedded JetStream server stands in for the cluster here; a media
	// node would jetstream.New(nc) on its own connection.
	dir, err := os.MkdirTemp("", "roomhook-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	js, stream, stop, err := startJetStream(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	evt := &roomhookv1.Event{
		Event: proto.String("room_started"),
		Room:  &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_hX9"), RoomId: proto.String("maths.101")},
	}
	ack, err := schema.Publish(ctx, js, "default", evt)
	if err != nil {
		fmt.Println(err)
		return
	}
	stored, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("stream:", ack.Stream)
	fmt.Println("subject:", stored.Subject)
	fmt.Println("Nats-Msg-Id is the event id:", stored.Header.Get("Nats-Msg-Id") == evt.GetId())

	// Retrying with the same event (same id) is stored once.
	retry, err := schema.Publish(ctx, js, "default", evt)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("retry is a duplicate:", retry.Duplicate)
	// Output:
	// stream: ROOMHOOK_EVENTS_DEFAULT
	// subject: roomhook.events.default.maths%2E101.room_started
	// Nats-Msg-Id is the event id: true
	// retry is a duplicate: true
}
