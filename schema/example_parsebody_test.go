package schema_test

import (
	"fmt"

	"github.com/roomhook/roomhook/schema"
)

// A webhook body as plugNmeet's server sent it, read back into an event and
// written again: the same compact bytes.
func ExampleParseBody() {
	evt, err := schema.ParseBody([]byte(`{"event":"room_started", "room":{"sid":"RM_xK2pQ7vT9bLm", "room_id":"weekly-sync"}, "id":"EV_t9Gd2KvR6mXy", "created_at":"1761814950"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(evt.GetEvent(), evt.GetRoom().GetRoomId(), evt.GetId(), evt.GetCreatedAt())
	body, err := schema.MarshalBody(evt, schema.Fallback{})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(body))
	// Output:
	// room_started weekly-sync EV_t9Gd2KvR6mXy 1761814950
	// {"event":"room_started","room":{"sid":"RM_xK2pQ7vT9bLm","room_id":"weekly-sync"},"id":"EV_t9Gd2KvR6mXy","created_at":"1761814950"}
}
