package dispatcher

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/schema"
)

// An event published without created_at gets the time the events stream stored it (DESIGN
// 1.3), the time resend and tail render too, not the time of the partition stream's copy.
func TestCreatedAtDefaultsToTheEventsStreamsTime(t *testing.T) {
	ns := startServer(t, t.TempDir())
	_, js := connect(t, ns)
	ctx := context.Background()
	// The events stream exists before roomhook, as when media nodes publish first; roomhook
	// copies it into the partition stream when it starts, seconds later.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{"roomhook.events.default.>"},
	}); err != nil {
		t.Fatal(err)
	}
	publisher{t, js}.publish(newEvent("room-a", "room_started", "ev-1", 0))
	events, err := js.Stream(ctx, schema.EventsStreamName("default"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := events.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Start roomhook in a later second than the event was stored in.
	time.Sleep(time.Until(stored.Time.Truncate(time.Second).Add(1100 * time.Millisecond)))

	rc := newReceiver(t)
	startReplica(t, ns, testConfig("r1", rc.URL()))
	waitFor(t, 10*time.Second, "the event", func() bool { return rc.count() == 1 })
	var body struct {
		CreatedAt int64 `json:"created_at,string"` // protojson writes int64 as a string
	}
	if err := json.Unmarshal(rc.deliveries()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.CreatedAt != stored.Time.Unix() {
		t.Errorf("created_at %d, want %d (when the events stream stored it)", body.CreatedAt, stored.Time.Unix())
	}
}
