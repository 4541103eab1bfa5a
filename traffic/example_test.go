package traffic_test

import (
	"fmt"

	"github.com/roomhook/roomhook/traffic"
)

func ExampleGenerator() {
	g, err := traffic.NewGenerator(traffic.Config{Run: "demo", Seed: 1, Rooms: 2, Participants: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 0; i < 6; i++ {
		evt, _ := g.Next()
		fmt.Println(evt.GetId(), evt.GetEvent(), evt.GetRoom().GetRoomId())
	}
	// Output:
	// rh-demo-1-1 room_created demo-1
	// rh-demo-2-1 room_created demo-2
	// rh-demo-2-2 room_started demo-2
	// rh-demo-1-2 room_started demo-1
	// rh-demo-1-3 participant_joined demo-1
	// rh-demo-1-4 track_published demo-1
}

func ExampleParseEventID() {
	id, err := traffic.ParseEventID("rh-k3f9q2-7-12")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.Run, id.Room, id.Seq, id.RoomKey())
	// Output: k3f9q2 7 12 rh-k3f9q2-7
}
