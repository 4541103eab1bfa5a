package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
)

// TestIngestEndToEnd: plugNmeet's request goes in at the ingest, a receiver
// behind a running dispatcher gets the same body, compact, signed with the
// dispatcher's own pair (which may differ from the ingest pair).
func TestIngestEndToEnd(t *testing.T) {
	signing := signature.Credentials{APIKey: "signing-key", APISecret: "signing-secret-0123456789abcdef01234567"}
	bodies := make(chan []byte, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := (signature.Verifier{Credentials: signing}).Verify(r.Header, raw, time.Now()); err != nil {
			t.Errorf("roomhook's verifier: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if _, err := webhook.Receive(r, auth.NewSimpleKeyProvider(signing.APIKey, signing.APISecret)); err != nil {
			t.Errorf("LiveKit's verifier: %v", err)
		}
		bodies <- raw
	}))
	t.Cleanup(receiver.Close)

	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	d, err := dispatcher.New(js, dispatcher.Config{
		Region: testRegion, Partitions: 2, MaxInFlight: 16, Takeover: 2 * time.Second,
		MaxEventBytes: DefaultMaxEventBytes, PerRoomWebhooks: true, RoomGrace: time.Minute, RoomTTL: time.Hour,
		StreamMaxAge: time.Hour, DLQMaxAge: time.Hour, StreamReplicas: 1,
		Retry:       sender.RetrySchedule{Steps: []time.Duration{0, 50 * time.Millisecond}},
		Credentials: signing,
		Endpoints:   []endpoint.Endpoint{{ID: endpoint.ID(receiver.URL), URL: receiver.URL, Credentials: signing, Global: true}},
		ReplicaID:   "e2e",
	}, dispatcher.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("dispatcher: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(15 * time.Second)
	for !d.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("dispatcher not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	srv, _ := ingestServer(t, js)
	golden := goldenBodies(t)
	for _, name := range []string{schema.EventRoomStarted, schema.EventParticipantJoined, schema.EventTrackPublished} {
		evt, err := schema.ParseBody(golden[name])
		if err != nil {
			t.Fatal(err)
		}
		sent := plugnmeetBody(t, evt)
		status, answer := post(t, srv.URL, sent, http.Header{"Authorization": {plugnmeetToken(t, testCreds, sent)}, "Content-Type": {"application/json"}})
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", name, status, answer)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, sent); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-bodies:
			if !bytes.Equal(got, compact.Bytes()) {
				t.Fatalf("%s: receiver got\n%s\nwant\n%s", name, got, compact.Bytes())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: not delivered", name)
		}
	}
}
