package dispatcher

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

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
