package admin

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

const bodyToken = "tok-9f8e7d6c5b4a"

func TestRedactBody(t *testing.T) {
	event, err := proto.Marshal(&roomhookv1.Event{
		Event: proto.String("room_created"),
		Room:  &roomhookv1.NotifyEventRoom{RoomId: proto.String("room-a")},
		WebhookUrls: []string{
			"https://lms.example/hook?token=" + bodyToken,
			"https://u:" + bodyToken + "@lms.example/x",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body []byte
		want []string // what must still be there
	}{
		{"protobuf webhook_urls", event, []string{"https://lms.example/hook", "https://lms.example/x", "room-a"}},
		{"json body", []byte(`{"event":"x","url":"https://a.example/p?token=` + bodyToken + `\u0026b=1","n":1}`), []string{`"https://a.example/p"`, `"n":1`}},
		{"text that is no protobuf", []byte("{oops https://a.example/p#" + bodyToken + " more"), []string{"https://a.example/p more"}},
		{"garbage bytes", append([]byte{0xff, 0x00}, []byte("http://10.0.0.1/x?"+bodyToken+"\x00")...), []string{"http://10.0.0.1/x\x00"}},
		{"no url", []byte(`{"event":"room_started"}`), []string{`{"event":"room_started"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redactBody(tt.body)
			if strings.Contains(string(got), bodyToken) {
				t.Errorf("redacted body %q still holds the token", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("redacted body %q lost %q", got, w)
				}
			}
		})
	}
	// The protobuf keeps its shape: it still decodes, with the URLs redacted.
	var back roomhookv1.Event
	if err := proto.Unmarshal(redactBody(event), &back); err != nil {
		t.Fatal(err)
	}
	if got := back.GetWebhookUrls(); len(got) != 2 || got[0] != "https://lms.example/hook" || got[1] != "https://lms.example/x" {
		t.Errorf("webhook_urls after redaction: %q", got)
	}
}

// dlq show and dlq list answer an invalid room_created, whose payload names per-room URLs with
// tokens, with every URL redacted; the dead letter itself keeps the payload.
func TestShowRedactsURLs(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	startReplica(t, ns, testConfig("r1", newReceiver(t).URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	payload, _ := proto.Marshal(&roomhookv1.Event{
		Event:       proto.String("room_created"),
		WebhookUrls: []string{"https://lms.example/hook?token=" + bodyToken},
	})
	perRoom := "https://tenant.example/in?token=" + bodyToken
	for _, dl := range []struct {
		id, url string
		body    []byte
	}{
		{deadletter.ReasonInvalid, "", payload},
		{endpoint.ID(perRoom), perRoom, []byte(`{"event":"room_started","id":"e2"}`)},
	} {
		msg := nats.NewMsg("roomhook.dlq.default." + dl.id)
		msg.Data = dl.body
		msg.Header.Set(deadletter.HeaderReason, deadletter.ReasonInvalid)
		msg.Header.Set(deadletter.HeaderEndpointID, dl.id)
		if dl.url != "" {
			// As an older version stored it, full URL and all.
			msg.Header.Set(deadletter.HeaderEndpointURL, dl.url)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	listed := waitDeadLetters(t, c, Filter{}, 2)
	for _, dl := range listed {
		if strings.Contains(dl.EndpointURL, bodyToken) {
			t.Errorf("listed %q", dl.EndpointURL)
		}
		shown, err := c.ShowDeadLetter(ctx, dl.Seq)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(shown.BodyBase64)
		for _, text := range []string{shown.Body, string(raw), shown.EndpointURL} {
			if strings.Contains(text, bodyToken) {
				t.Errorf("dlq show %d answers %q", dl.Seq, text)
			}
		}
	}
	if listed[1].EndpointURL != "https://tenant.example/in" {
		t.Errorf("endpoint URL %q, want it redacted", listed[1].EndpointURL)
	}
	st, err := js.Stream(ctx, "ROOMHOOK_DLQ_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := st.GetMsg(ctx, listed[0].Seq); err != nil || string(m.Data) != string(payload) {
		t.Errorf("the stored payload changed: %v", err)
	}
}
