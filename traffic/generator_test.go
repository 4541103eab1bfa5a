package traffic

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

func drain(t *testing.T, cfg Config) []*roomhookv1.Event {
	t.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []*roomhookv1.Event
	for {
		evt, ok := g.Next()
		if !ok {
			return out
		}
		out = append(out, evt)
		if len(out) > 1_000_000 {
			t.Fatal("generator does not end")
		}
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Rooms: 5, Participants: 6, RoomWebhooks: []string{"http://127.0.0.1:9000/room"}}
	a, b := drain(t, cfg), drain(t, cfg)
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs:\n%v\n%v", i, a[i], b[i])
		}
	}
	cfg.Seed = 43
	c := drain(t, cfg)
	if len(c) == len(a) && proto.Equal(c[len(c)-1], a[len(a)-1]) {
		t.Error("another seed gave the same traffic")
	}
	if a[0].GetId()[:9] == c[0].GetId()[:9] {
		t.Errorf("runs derived from seeds 42 and 43 are the same: %s, %s", a[0].GetId(), c[0].GetId())
	}
}

func TestGeneratorConfig(t *testing.T) {
	for _, cfg := range []Config{{Rooms: -1}, {Participants: -2}, {Run: "Has-Dash"}} {
		if _, err := NewGenerator(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("NewGenerator(%+v) error = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestMeetingsAreCoherent checks each room's story the way a receiver would rely on it.
func TestMeetingsAreCoherent(t *testing.T) {
	const rooms, participants = 30, 5
	hooks := []string{"http://127.0.0.1:9000/a", "http://127.0.0.1:9000/b"}
	events := drain(t, Config{Run: "test", Seed: 7, Rooms: rooms, Participants: participants, RoomWebhooks: hooks})

	byRoom := map[string][]*roomhookv1.Event{}
	kinds := map[string]int{}
	interleaved := false
	for i, e := range events {
		room := e.GetRoom().GetRoomId()
		byRoom[room] = append(byRoom[room], e)
		kinds[e.GetEvent()]++
		if i > 0 && events[i-1].GetRoom().GetRoomId() != room {
			interleaved = true
		}
		if _, err := (schema.Address{Region: "default", Room: room, Event: e.GetEvent()}).Subject(); err != nil {
			t.Fatalf("event %s has no valid subject: %v", e.GetId(), err)
		}
		body, err := schema.MarshalBody(e, schema.Fallback{})
		if err != nil {
			t.Fatalf("event %s cannot be rendered: %v", e.GetId(), err)
		}
		if !json.Valid(body) || bytes.Contains(body, []byte("webhook_urls")) {
			t.Fatalf("body of %s: %s", e.GetId(), body)
		}
	}
	if len(byRoom) != rooms {
		t.Fatalf("rooms = %d, want %d", len(byRoom), rooms)
	}
	if !interleaved {
		t.Error("rooms are not interleaved")
	}
	for _, name := range []string{"room_created", "room_started", "participant_joined", "participant_left",
		"track_published", "track_unpublished", "start_recording", "end_recording", "recording_proceeded",
		"room_finished", "analytics_proceeded"} {
		if kinds[name] == 0 {
			t.Errorf("no %s in %d events", name, len(events))
		}
	}
	if kinds["room_created"] != rooms || kinds["room_finished"] != rooms || kinds["analytics_proceeded"] != rooms {
		t.Errorf("per room one room_created, room_finished, analytics_proceeded; got %v", kinds)
	}

	for room, evs := range byRoom {
		if evs[0].GetEvent() != "room_created" || !slices.Equal(evs[0].GetWebhookUrls(), hooks) {
			t.Errorf("%s: first event %s with webhook_urls %v", room, evs[0].GetEvent(), evs[0].GetWebhookUrls())
		}
		var lastCreated int64
		joined := map[string]int{} // identity -> sessions open
		tracks := map[string]bool{}
		finished := false
		for i, e := range evs {
			id, err := ParseEventID(e.GetId())
			if err != nil || id.Seq != uint64(i+1) || RoomID(id.Run, id.Room) != room {
				t.Fatalf("%s: event #%d has id %q (%v)", room, i+1, e.GetId(), err)
			}
			if e.GetCreatedAt() < lastCreated {
				t.Errorf("%s: created_at goes back at %s", room, e.GetId())
			}
			lastCreated = e.GetCreatedAt()
			if i > 0 && len(e.GetWebhookUrls()) > 0 {
				t.Errorf("%s: %s carries webhook_urls", room, e.GetEvent())
			}
			p := e.GetParticipant()
			switch e.GetEvent() {
			case "participant_joined":
				joined[p.GetIdentity()]++
				if p.GetPermission() == nil || p.GetName() == "" || p.GetSid() == "" || len(p.GetAttributes()) == 0 {
					t.Errorf("%s: thin participant %v", room, p)
				}
			case "participant_left":
				joined[p.GetIdentity()]--
				if joined[p.GetIdentity()] < 0 {
					t.Errorf("%s: %s left without joining", room, p.GetIdentity())
				}
			case "track_published":
				tracks[e.GetTrack().GetSid()] = true
				if len(e.GetTrack().GetCodecs()) == 0 || e.GetTrack().GetMimeType() == "" {
					t.Errorf("%s: track without codecs %v", room, e.GetTrack())
				}
			case "track_unpublished":
				if !tracks[e.GetTrack().GetSid()] {
					t.Errorf("%s: unpublished a track never published", room)
				}
				delete(tracks, e.GetTrack().GetSid())
			case "start_recording", "end_recording":
				if e.GetRecordingInfo().GetRecordId() == "" {
					t.Errorf("%s: %s without recording info", room, e.GetEvent())
				}
			case "recording_proceeded":
				if e.GetRecordingInfo().GetFilePath() == "" || e.GetRecordingInfo().GetFileSize() <= 0 {
					t.Errorf("%s: recording_proceeded without file %v", room, e.GetRecordingInfo())
				}
			case "room_finished":
				finished = true
				if e.GetRoom().GetNumParticipants() != 0 {
					t.Errorf("%s: finished with %d participants", room, e.GetRoom().GetNumParticipants())
				}
			case "analytics_proceeded":
				if !finished || e.GetAnalytics().GetFileId() == "" {
					t.Errorf("%s: analytics before room_finished or without file id", room)
				}
			}
			if finished && (e.GetEvent() == "participant_joined" || e.GetEvent() == "track_published") {
				t.Errorf("%s: %s after room_finished", room, e.GetEvent())
			}
		}
		for who, n := range joined {
			if n != 0 {
				t.Errorf("%s: %s never left", room, who)
			}
		}
		if len(tracks) != 0 {
			t.Errorf("%s: %d tracks never unpublished", room, len(tracks))
		}
	}
}

func TestContinuousStartsNewRooms(t *testing.T) {
	g, err := NewGenerator(Config{Run: "c", Seed: 1, Rooms: 2, Participants: 1, Continuous: true})
	if err != nil {
		t.Fatal(err)
	}
	maxRoom := 0
	for i := 0; i < 500; i++ {
		evt, ok := g.Next()
		if !ok {
			t.Fatal("a continuous generator ran out")
		}
		id, err := ParseEventID(evt.GetId())
		if err != nil {
			t.Fatal(err)
		}
		maxRoom = max(maxRoom, id.Room)
	}
	// Two rooms with one participant have a dozen or two events each.
	if maxRoom <= 10 {
		t.Errorf("after 500 events the highest room number is %d; finished rooms are not replaced", maxRoom)
	}
}
