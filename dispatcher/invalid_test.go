package dispatcher

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/schema"
)

// eventOfSize returns a valid event of room whose encoding is exactly size bytes, padded with
// room metadata.
func eventOfSize(t *testing.T, room, name, id string, size int) []byte {
	t.Helper()
	evt := newEvent(room, name, id, 1761815000)
	evt.Room.Metadata = proto.String("")
	start := size - len(mustMarshal(t, evt))
	// The metadata's length prefix grows with it, so the exact size is a few bytes short of
	// start.
	for pad := start; pad >= 0 && pad > start-4; pad-- {
		evt.Room.Metadata = proto.String(strings.Repeat("m", pad))
		if b := mustMarshal(t, evt); len(b) == size {
			return b
		}
	}
	t.Fatalf("cannot build a %d-byte event", size)
	return nil
}

func TestInvalidEventsDeadLettered(t *testing.T) {
	const room = "invalid room.1"
	const maxBytes = 2048
	invalid := []struct {
		name   string
		data   []byte
		detail []string // the detail must name the problem
	}{
		{"not protobuf", []byte("this is not protobuf, just text"), []string{schema.ErrDecodeEvent.Error()}},
		{"room differs from the subject's", mustMarshal(t, newEvent("another room", "participant_joined", "bad-mismatch", 1761815000)),
			[]string{`"another room"`, fmt.Sprintf("%q", room)}},
		{"no room", mustMarshal(t, func() proto.Message {
			evt := newEvent(room, "participant_joined", "bad-noroom", 1761815000)
			evt.Room = nil
			return evt
		}()), []string{"room_id"}},
		{"over the size limit", eventOfSize(t, room, "participant_joined", "bad-oversized", 2*maxBytes),
			[]string{fmt.Sprint(2 * maxBytes), fmt.Sprint(maxBytes)}},
	}
	// The oversized event is valid in every other respect, so only its size can refuse it.
	if evt, err := schema.DecodeEvent(invalid[3].data); err != nil || evt.GetRoom().GetRoomId() != room || len(invalid[3].data) != 2*maxBytes {
		t.Fatalf("oversized event: %d bytes, room %q, %v", len(invalid[3].data), evt.GetRoom().GetRoomId(), err)
	}
	rc := newReceiver(t)
	ns := startServer(t, t.TempDir())
	cfg := testConfig("r1", rc.URL())
	cfg.MaxEventBytes = maxBytes
	rep := startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}
	good := func(i int) string { return fmt.Sprintf("ev-inv-%d", i) }

	// good 0, bad 0, good 1, bad 1, ... good n: each bad event sits between two good ones.
	subject, err := schema.Address{Region: "default", Room: room, Event: "participant_joined"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range invalid {
		p.publish(newEvent(room, "participant_joined", good(i), 1761815000))
		p.publishRaw(room, "participant_joined", fmt.Sprintf("bad-%d", i), bad.data)
	}
	p.publish(newEvent(room, "participant_joined", good(len(invalid)), 1761815000))

	dls := waitDeadLetters(t, js, "roomhook.dlq.default.invalid", len(invalid), 10*time.Second)
	waitFor(t, 10*time.Second, "good events delivered", func() bool { return len(deliveredIDs(rc)) >= len(invalid)+1 })
	if len(dls) != len(invalid) {
		t.Fatalf("invalid dead letters = %d, want %d", len(dls), len(invalid))
	}
	// The router handles the stream in order, so the dead letters are in publish order.
	for i, bad := range invalid {
		t.Run(bad.name, func(t *testing.T) {
			dl := dls[i]
			if dl.Reason != deadletter.ReasonInvalid || dl.EndpointID != deadletter.ReasonInvalid {
				t.Errorf("reason %q, endpoint %q; want %q for both", dl.Reason, dl.EndpointID, deadletter.ReasonInvalid)
			}
			if dl.Subject != subject {
				t.Errorf("subject = %q, want the original %q", dl.Subject, subject)
			}
			if dl.Room != room || dl.Event != "participant_joined" {
				t.Errorf("room %q, event %q; want the subject's %q, participant_joined", dl.Room, dl.Event, room)
			}
			for _, want := range bad.detail {
				if !strings.Contains(dl.Detail, want) {
					t.Errorf("detail = %q, want it to contain %q", dl.Detail, want)
				}
			}
			if !bytes.Equal(dl.Body, bad.data) || dl.Truncated {
				t.Errorf("body = %d bytes (truncated %v), want the original %d bytes", len(dl.Body), dl.Truncated, len(bad.data))
			}
			if dl.EventSeq == 0 {
				t.Errorf("EventSeq = 0, want the event's sequence in the events stream")
			}
		})
	}

	// Only the good events were delivered, each in order.
	got := rc.deliveries()
	checkOrder(t, "receiver", got, eventIndex)
	for id := range deliveredIDs(rc) {
		if !strings.HasPrefix(id, "ev-inv-") {
			t.Errorf("invalid event %q was delivered", id)
		}
	}
	for i := 0; i <= len(invalid); i++ {
		if deliveredIDs(rc)[good(i)] < 1 {
			t.Errorf("good event %s not delivered", good(i))
		}
	}

	// The service keeps running: a later event still goes out.
	later := good(len(invalid) + 1)
	p.publish(newEvent(room, "participant_left", later, 1761815001))
	waitFor(t, 10*time.Second, "a later event delivered", func() bool { return deliveredIDs(rc)[later] > 0 })
	if !rep.d.Ready() {
		t.Errorf("dispatcher is not ready after invalid input")
	}
	checkOrder(t, "receiver", rc.deliveries(), eventIndex)
}
