package dispatcher

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/rooms"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// An invalid event's dead letter keeps its payload with webhook_urls redacted and every other
// field as published; bytes that are not protobuf stay as they are.
func TestRedactEventURLs(t *testing.T) {
	t.Parallel()
	payload, err := proto.Marshal(&roomhookv1.Event{
		Event: proto.String("participant_joined"), Id: proto.String("e1"),
		Room:        &roomhookv1.NotifyEventRoom{RoomId: proto.String("r1")},
		WebhookUrls: []string{"https://u:pw@lms.example/hook?token=t0k#frag", "https://lms.example/x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var back roomhookv1.Event
	if err := proto.Unmarshal(RedactEventURLs(payload), &back); err != nil {
		t.Fatal(err)
	}
	if got := back.GetWebhookUrls(); !slices.Equal(got, []string{"https://lms.example/hook", "https://lms.example/x"}) {
		t.Errorf("webhook_urls: %q", got)
	}
	if back.GetId() != "e1" || back.GetEvent() != "participant_joined" || back.GetRoom().GetRoomId() != "r1" {
		t.Errorf("other fields changed: %v", &back)
	}
	garbage := []byte{0xff, 0xff, 0xff}
	if got := RedactEventURLs(garbage); !bytes.Equal(got, garbage) {
		t.Errorf("garbage became %x", got)
	}
}

// The rooms bucket keeps endpoint ids, not URLs; a record an earlier version wrote with full
// URLs still routes to the same endpoints.
func TestRoomRecordEndpointIDs(t *testing.T) {
	t.Parallel()
	url := "https://lms.example/hook?token=t0k"
	var legacy rooms.Record
	if err := json.Unmarshal([]byte(`{"room":"r1","urls":["`+url+`"],"created_seq":3}`), &legacy); err != nil {
		t.Fatal(err)
	}
	if got := legacy.EndpointIDs(); !slices.Equal(got, []string{endpoint.ID(url)}) {
		t.Errorf("legacy record: endpoints %q", got)
	}
	b, _ := json.Marshal(rooms.Record{Room: "r1", Endpoints: legacy.EndpointIDs()})
	if bytes.Contains(b, []byte("t0k")) || bytes.Contains(b, []byte(`"urls"`)) {
		t.Errorf("record written as %s", b)
	}
}
