package schema

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

func TestCheckEvent(t *testing.T) {
	marshal := func(evt *roomhookv1.Event) []byte {
		b, err := proto.Marshal(evt)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	room := func(id string) *roomhookv1.NotifyEventRoom {
		return &roomhookv1.NotifyEventRoom{RoomId: proto.String(id)}
	}
	const subject = "roomhook.events.default.r1.room_started"
	tests := []struct {
		name      string
		subject   string
		data      []byte
		maxBytes  int
		wantEvent string // the event's Event after the check, when it passes
		wantErr   string // part of the detail, when it fails
		wantRoom  string // the room the error names
	}{
		{name: "valid", subject: subject, data: marshal(&roomhookv1.Event{Event: proto.String("room_started"), Room: room("r1")}), wantEvent: "room_started"},
		{name: "no event name takes the subject's", subject: subject, data: marshal(&roomhookv1.Event{Room: room("r1")}), wantEvent: "room_started"},
		{name: "event name compared without case", subject: subject, data: marshal(&roomhookv1.Event{Event: proto.String("Room_Started"), Room: room("r1")}), wantEvent: "Room_Started"},
		{name: "room_created with webhook_urls", subject: "roomhook.events.default.r1.room_created",
			data: marshal(&roomhookv1.Event{Event: proto.String("room_created"), Room: room("r1"), WebhookUrls: []string{"https://lms.example/hook"}}), wantEvent: "room_created"},
		{name: "not an events subject", subject: "roomhook.part.default.3.r1.room_started", data: marshal(&roomhookv1.Event{Room: room("r1")}), wantErr: "invalid roomhook subject"},
		{name: "no event token", subject: "roomhook.events.default.r1", data: marshal(&roomhookv1.Event{Room: room("r1")}), wantErr: "got 4 tokens", wantRoom: "r1"},
		{name: "a token too many", subject: subject + ".x", data: marshal(&roomhookv1.Event{Room: room("r1")}), wantErr: "got 6 tokens", wantRoom: "r1"},
		{name: "over the byte bound", subject: subject, data: marshal(&roomhookv1.Event{Room: room("r1")}), maxBytes: 3, wantErr: "over ROOMHOOK_MAX_EVENT_BYTES (3)", wantRoom: "r1"},
		{name: "undecodable", subject: subject, data: []byte{0xff, 0xff}, wantErr: "undecodable event payload", wantRoom: "r1"},
		{name: "no room id", subject: subject, data: marshal(&roomhookv1.Event{Event: proto.String("room_started")}), wantErr: "no room.room_id", wantRoom: "r1"},
		{name: "another room", subject: subject, data: marshal(&roomhookv1.Event{Room: room("r2")}), wantErr: `room "r2" in the payload differs`, wantRoom: "r1"},
		{name: "another event", subject: subject, data: marshal(&roomhookv1.Event{Event: proto.String("room_finished"), Room: room("r1")}), wantErr: `event "room_finished" in the payload differs`, wantRoom: "r1"},
		{name: "webhook_urls on another event", subject: subject,
			data: marshal(&roomhookv1.Event{Room: room("r1"), WebhookUrls: []string{"https://lms.example/hook"}}), wantErr: "only room_created may carry webhook_urls", wantRoom: "r1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evt, addr, err := CheckEvent(tt.subject, tt.data, tt.maxBytes)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckEvent: %v", err)
				}
				if evt.GetEvent() != tt.wantEvent || addr.Room != "r1" || addr.Event != strings.ToLower(tt.wantEvent) {
					t.Fatalf("event %q at %+v, want %q in room r1", evt.GetEvent(), addr, tt.wantEvent)
				}
				return
			}
			var bad *InvalidEventError
			if !errors.As(err, &bad) || !errors.Is(err, ErrUndeliverable) {
				t.Fatalf("error %v (%T), want an *InvalidEventError matching ErrUndeliverable", err, err)
			}
			if !strings.Contains(bad.Detail, tt.wantErr) || bad.Room != tt.wantRoom || evt != nil {
				t.Fatalf("detail %q room %q event %v, want %q in room %q and no event", bad.Detail, bad.Room, evt, tt.wantErr, tt.wantRoom)
			}
		})
	}
}
