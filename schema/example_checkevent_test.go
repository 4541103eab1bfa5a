package schema_test

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// A stored event is checked against the subject it was published on before its body is made;
// one naming another room is refused with the detail its dead letter keeps.
func ExampleCheckEvent() {
	payload, err := proto.Marshal(&roomhookv1.Event{
		Event: proto.String("room_started"),
		Room:  &roomhookv1.NotifyEventRoom{RoomId: proto.String("weekly-sync")},
	})
	if err != nil {
		panic(err)
	}
	evt, addr, err := schema.CheckEvent("roomhook.events.default.weekly-sync.room_started", payload, 1<<20)
	fmt.Println(evt.GetEvent(), addr.Room, err)

	_, _, err = schema.CheckEvent("roomhook.events.default.daily-standup.room_started", payload, 1<<20)
	var bad *schema.InvalidEventError
	if errors.As(err, &bad) {
		fmt.Println(bad.Room, bad.Event, errors.Is(err, schema.ErrUndeliverable))
		fmt.Println(bad.Detail)
	}
	// Output:
	// room_started weekly-sync <nil>
	// daily-standup room_started true
	// room "weekly-sync" in the payload differs from room "daily-standup" in the subject
}
