package schema_test

import (
	"fmt"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// A media node published a participant_joined event without id and
// created_at; the dispatcher fills them from where JetStream stored it, so
// every retry and every endpoint gets the same bytes.
func ExampleMarshalBody() {
	payload, err := proto.Marshal(&roomhookv1.Event{
		Event: proto.String("PARTICIPANT_JOINED"),
		Room: &roomhookv1.NotifyEventRoom{
			Sid:             proto.String("RM_xK2pQ7vT9bLm"),
			RoomId:          proto.String("weekly-sync"),
			NumParticipants: proto.Uint32(1),
		},
		Participant: &livekit.ParticipantInfo{
			Sid:      "PA_Zx4cV7bN1mQw",
			Identity: "user-42",
			Name:     "Ada <Lovelace>",
			State:    livekit.ParticipantInfo_ACTIVE,
			JoinedAt: 1761814950,
		},
		WebhookUrls: []string{"https://hooks.example.com/plugnmeet"},
	})
	if err != nil {
		panic(err)
	}

	evt, err := schema.DecodeEvent(payload)
	if err != nil {
		panic(err)
	}
	body, err := schema.MarshalBody(evt, schema.Fallback{
		ID:        schema.StreamEventID("ROOMHOOK_EVENTS_DEFAULT", 42),
		CreatedAt: 1761815000,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(body))
	// Output:
	// {"event":"participant_joined","room":{"sid":"RM_xK2pQ7vT9bLm","room_id":"weekly-sync","num_participants":1},"participant":{"sid":"PA_Zx4cV7bN1mQw","identity":"user-42","state":"ACTIVE","joined_at":"1761814950","name":"Ada <Lovelace>"},"id":"ff163bcc-b322-5403-80b6-5f485ff63d93","created_at":"1761815000"}
}

func ExampleStreamEventID() {
	// The events stream's name and the sequence the event is stored at.
	fmt.Println(schema.StreamEventID("ROOMHOOK_EVENTS_DEFAULT", 42))
	// Output: ff163bcc-b322-5403-80b6-5f485ff63d93
}
