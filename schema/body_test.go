package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden/*.json from MarshalBody's output")

// TestGoldenBodies pins the exact bytes receivers hash: any change to a
// golden file is a change of the public contract.
func TestGoldenBodies(t *testing.T) {
	for _, s := range sampleEvents() {
		t.Run(s.golden, func(t *testing.T) {
			fb := Fallback{ID: StreamEventID(goldenStream, s.seq), CreatedAt: goldenFallbackCreatedAt}
			got, err := MarshalBody(s.evt, fb)
			if err != nil {
				t.Fatalf("MarshalBody: %v", err)
			}
			path := filepath.Join("testdata", "golden", s.golden+".json")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run go test ./schema -run Golden -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("body differs from %s\n got: %s\nwant: %s", path, got, want)
			}

			// What plugNmeet's server writes for the same event, minus the
			// random spaces of Go's protojson.
			if ref := plugnmeetStyleBody(t, s.evt, fb); !bytes.Equal(got, ref) {
				t.Fatalf("body differs from plugNmeet's encoding\n got: %s\nwant: %s", got, ref)
			}

			for i := range 1000 {
				again, err := MarshalBody(s.evt, fb)
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if !bytes.Equal(again, got) {
					t.Fatalf("run %d gave other bytes:\n%s\n%s", i, again, got)
				}
			}
		})
	}
}

// plugnmeetStyleBody encodes evt the way plugNmeet's server does (fill, then
// protojson with proto names), on a copy, then compacts it with encoding/json.
func plugnmeetStyleBody(t *testing.T, evt *roomhookv1.Event, fb Fallback) []byte {
	t.Helper()
	c := proto.Clone(evt).(*roomhookv1.Event)
	c.WebhookUrls = nil
	c.ProtoReflect().SetUnknown(nil)
	c.Event = proto.String(strings.ToLower(c.GetEvent()))
	if c.GetId() == "" {
		c.Id = proto.String(fb.ID)
	}
	if c.GetCreatedAt() == 0 {
		c.CreatedAt = proto.Int64(fb.CreatedAt)
	}
	if c.GetEvent() == EventTrackPublished || c.GetEvent() == EventTrackUnpublished {
		c.Room = &roomhookv1.NotifyEventRoom{Sid: c.Room.Sid, RoomId: c.Room.RoomId}
		c.Participant = &livekit.ParticipantInfo{Sid: c.Participant.Sid, Identity: c.Participant.Identity, Name: c.Participant.Name}
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestGoldenCoversEveryEventName(t *testing.T) {
	have := map[string]bool{}
	for _, s := range sampleEvents() {
		have[s.golden] = true
	}
	for _, name := range KnownEventNames() {
		if !have[name] {
			t.Errorf("no golden body for %q", name)
		}
	}
}

func TestMarshalBodyIDAndCreatedAt(t *testing.T) {
	fb := Fallback{ID: "4b1bc6e4-6c3a-5d4e-9a57-3d1f0d9f6b10", CreatedAt: 1761815002}
	tests := []struct {
		name          string
		id            *string
		createdAt     *int64
		fb            Fallback
		wantID        string
		wantCreatedAt string
		wantErr       error
	}{
		{name: "publisher's values win", id: proto.String("EV_abc"), createdAt: proto.Int64(1761815000), fb: fb,
			wantID: "EV_abc", wantCreatedAt: "1761815000"},
		{name: "no id", createdAt: proto.Int64(1761815000), fb: fb,
			wantID: fb.ID, wantCreatedAt: "1761815000"},
		{name: "empty id", id: proto.String(""), createdAt: proto.Int64(1761815000), fb: fb,
			wantID: fb.ID, wantCreatedAt: "1761815000"},
		{name: "no created_at", id: proto.String("EV_abc"), fb: fb,
			wantID: "EV_abc", wantCreatedAt: "1761815002"},
		{name: "zero created_at", id: proto.String("EV_abc"), createdAt: proto.Int64(0), fb: fb,
			wantID: "EV_abc", wantCreatedAt: "1761815002"},
		{name: "neither set", fb: fb, wantID: fb.ID, wantCreatedAt: "1761815002"},
		{name: "no id anywhere", createdAt: proto.Int64(1761815000), fb: Fallback{CreatedAt: 1},
			wantErr: ErrMissingID},
		{name: "no created_at anywhere", id: proto.String("EV_abc"), fb: Fallback{ID: "x"},
			wantErr: ErrMissingCreatedAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evt := &roomhookv1.Event{Event: proto.String(EventRoomStarted), Room: sampleRoomRef(), Id: tt.id, CreatedAt: tt.createdAt}
			body, err := MarshalBody(evt, tt.fb)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// id and created_at are the last fields, in that order.
			suffix := `,"id":"` + tt.wantID + `","created_at":"` + tt.wantCreatedAt + `"}`
			if !bytes.HasSuffix(body, []byte(suffix)) {
				t.Fatalf("body %s does not end with %s", body, suffix)
			}
		})
	}
	if _, err := MarshalBody(nil, fb); !errors.Is(err, ErrNilEvent) {
		t.Fatalf("nil event: err = %v, want ErrNilEvent", err)
	}
}

func TestMarshalBodyLowercasesEvent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"PARTICIPANT_JOINED", "participant_joined"},
		{"Recording_Proceeded", "recording_proceeded"},
		{"end_rtmp", "end_rtmp"},
		{"Some_Future_EVENT", "some_future_event"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			body := mustMarshalBody(t, &roomhookv1.Event{Event: proto.String(tt.in), Room: sampleRoomRef()})
			if want := `{"event":"` + tt.want + `",`; !bytes.HasPrefix(body, []byte(want)) {
				t.Fatalf("body %s does not start with %s", body, want)
			}
		})
	}
}

func TestMarshalBodyLeavesOutRoutingAndUnknownFields(t *testing.T) {
	evt := &roomhookv1.Event{
		Event:       proto.String(EventRoomCreated),
		Room:        sampleRoomRef(),
		WebhookUrls: []string{"https://hooks.example.com/a"},
	}
	raw, err := proto.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	// A newer publisher's payload field 11 and routing field 101.
	raw = append(raw, 0x58, 0x07) // field 11, varint 7
	raw = append(raw, 0xaa, 0x06, 0x02, 'h', 'i')
	decoded, err := DecodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*roomhookv1.Event{"built": evt, "decoded": decoded} {
		t.Run(name, func(t *testing.T) {
			body := mustMarshalBody(t, e)
			want := `{"event":"room_created","room":{"sid":"RM_xK2pQ7vT9bLm","room_id":"weekly-sync"},"id":"fallback-id","created_at":"1761815002"}`
			if string(body) != want {
				t.Fatalf("body\n got: %s\nwant: %s", body, want)
			}
		})
	}
}

func TestMarshalBodyTrimsTrackEvents(t *testing.T) {
	tests := []struct {
		event string
		trim  bool
	}{
		{EventTrackPublished, true},
		{EventTrackUnpublished, true},
		{"TRACK_PUBLISHED", true},
		{EventParticipantJoined, false},
		{EventRoomStarted, false},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			evt := &roomhookv1.Event{
				Event:       proto.String(tt.event),
				Room:        sampleRoom(2),
				Participant: sampleParticipant(),
				Track:       sampleVideoTrack(),
			}
			var body struct {
				Room        map[string]json.RawMessage
				Participant map[string]json.RawMessage
				Track       json.RawMessage
			}
			if err := json.Unmarshal(mustMarshalBody(t, evt), &body); err != nil {
				t.Fatal(err)
			}
			roomKeys, participantKeys := sortedKeys(body.Room), sortedKeys(body.Participant)
			if tt.trim {
				if want := []string{"room_id", "sid"}; !slices.Equal(roomKeys, want) {
					t.Errorf("room keys %v, want %v", roomKeys, want)
				}
				if want := []string{"identity", "name", "sid"}; !slices.Equal(participantKeys, want) {
					t.Errorf("participant keys %v, want %v", participantKeys, want)
				}
				if got := string(body.Participant["identity"]) + string(body.Room["room_id"]); got != `"user-42""weekly-sync"` {
					t.Errorf("trimmed values = %s", got)
				}
			} else {
				if len(roomKeys) != 8 || len(participantKeys) < 10 {
					t.Errorf("room keys %v / participant keys %v were trimmed", roomKeys, participantKeys)
				}
			}
			// The track itself is never trimmed.
			wantTrack := mustProtoJSON(t, sampleVideoTrack())
			if !bytes.Equal(body.Track, wantTrack) {
				t.Errorf("track\n got: %s\nwant: %s", body.Track, wantTrack)
			}
		})
	}
}

func TestMarshalBodyFieldRules(t *testing.T) {
	tests := []struct {
		name    string
		evt     *roomhookv1.Event
		want    []string // substrings that must appear
		notWant []string // substrings that must not appear
	}{
		{
			name: "set optional zero values are written",
			evt: &roomhookv1.Event{
				Event: proto.String(EventRecordingProceeded),
				Room: &roomhookv1.NotifyEventRoom{Sid: proto.String(""), RoomId: proto.String("r"),
					EmptyTimeout: proto.Uint32(0), NumParticipants: proto.Uint32(0), CreationTime: proto.Uint64(0)},
				RecordingInfo: &roomhookv1.RecordingInfoEvent{FilePath: proto.String(""), FileSize: proto.Float32(0)},
				SpeechService: &roomhookv1.SpeechServiceEvent{UserId: proto.String("")},
				Analytics:     &roomhookv1.AnalyticsEvent{FileId: proto.String("")},
			},
			want: []string{`"room":{"sid":"","room_id":"r","empty_timeout":0,"creation_time":"0","num_participants":0}`,
				`"recording_info":{"file_path":"","file_size":0}`, `"speech_service":{"user_id":""}`, `"analytics":{"file_id":""}`},
		},
		{
			name: "unset and plain zero fields are left out",
			evt: &roomhookv1.Event{
				Event:         proto.String(EventArtifactCreated),
				Room:          &roomhookv1.NotifyEventRoom{RoomId: proto.String("r")},
				RecordingInfo: &roomhookv1.RecordingInfoEvent{},
				SpeechService: &roomhookv1.SpeechServiceEvent{TotalUsage: 0},
				RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{Type: roomhookv1.RoomArtifactType_UNKNOWN_ARTIFACT,
					Metadata: &roomhookv1.RoomArtifactMetadata{UserInfo: &roomhookv1.RoomArtifactUserInfo{UserId: "u"}}},
			},
			want:    []string{`"room":{"room_id":"r"}`, `"recording_info":{}`, `"speech_service":{}`, `"room_artifact":{"metadata":{"user_info":{"user_id":"u"}}}`},
			notWant: []string{`"participant"`, `"track"`, `"type"`, `"total_usage"`, `"name"`},
		},
		{
			name: "optional estimated cost set to zero is written",
			evt: &roomhookv1.Event{
				Event: proto.String(EventArtifactCreated),
				RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{Metadata: &roomhookv1.RoomArtifactMetadata{
					UsageDetails: &roomhookv1.RoomArtifactMetadata_CharacterCountUsage{CharacterCountUsage: &roomhookv1.RoomArtifactCharacterCountUsage{
						TotalCharacters: 0, TotalCharactersEstimatedCost: proto.Float64(0)}}}},
			},
			want: []string{`"room_artifact":{"metadata":{"character_count_usage":{"total_characters_estimated_cost":0}}}`},
		},
		{
			name: "64-bit integers are strings, 32-bit and floats numbers",
			evt: &roomhookv1.Event{
				Event:         proto.String(EventSpeechToTextTotalUsage),
				Room:          &roomhookv1.NotifyEventRoom{CreationTime: proto.Uint64(18446744073709551615), MaxParticipants: proto.Uint32(4294967295)},
				Participant:   &livekit.ParticipantInfo{JoinedAt: -1, JoinedAtMs: 1761814950123},
				RecordingInfo: &roomhookv1.RecordingInfoEvent{FileSize: proto.Float32(52.73)},
				SpeechService: &roomhookv1.SpeechServiceEvent{TotalUsage: 9007199254740993},
				RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{Metadata: &roomhookv1.RoomArtifactMetadata{
					FileInfo: &roomhookv1.RoomArtifactFileInfo{FileSize: 18233},
					UsageDetails: &roomhookv1.RoomArtifactMetadata_DurationUsage{DurationUsage: &roomhookv1.RoomArtifactDurationUsage{
						DurationSec: 60, Breakdown: map[string]int64{"b": 2, "a": -1}, DurationSecEstimatedCost: proto.Float64(0.0531)}}}},
				CreatedAt: proto.Int64(1761815000),
			},
			want: []string{`"creation_time":"18446744073709551615"`, `"max_participants":4294967295`,
				`"joined_at":"-1"`, `"joined_at_ms":"1761814950123"`, `"file_size":52.73`,
				`"total_usage":"9007199254740993"`, `"file_info":{"file_size":"18233"}`,
				`"duration_sec":60,"breakdown":{"a":"-1","b":"2"},"duration_sec_estimated_cost":0.0531`,
				`"created_at":"1761815000"`},
		},
		{
			name: "enums are names",
			evt: &roomhookv1.Event{
				Event:        proto.String(EventArtifactCreated),
				Participant:  &livekit.ParticipantInfo{State: livekit.ParticipantInfo_ACTIVE, Kind: livekit.ParticipantInfo_AGENT},
				Track:        &livekit.TrackInfo{Type: livekit.TrackType_VIDEO, Source: livekit.TrackSource_SCREEN_SHARE},
				RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{Type: roomhookv1.RoomArtifactType_AI_TEXT_CHAT_SUMMARIZATION_USAGE},
			},
			want: []string{`"state":"ACTIVE"`, `"kind":"AGENT"`, `"type":"VIDEO"`, `"source":"SCREEN_SHARE"`,
				`"room_artifact":{"type":"AI_TEXT_CHAT_SUMMARIZATION_USAGE"}`},
		},
		{
			name: "no HTML escaping, only quote, backslash and control characters",
			evt: &roomhookv1.Event{
				Event: proto.String(EventRoomCreated),
				Room:  &roomhookv1.NotifyEventRoom{Metadata: proto.String("<b>Q&A</b> \"x\" \\ \n\t\x01 \u2028 é 🎥")},
			},
			want:    []string{`"metadata":"<b>Q&A</b> \"x\" \\ \n\t\u0001 ` + "\u2028 é 🎥" + `"`},
			notWant: []string{`\u003c`, `\u003e`, `\u0026`, `\u2028`},
		},
		{
			name: "map keys are sorted",
			evt: &roomhookv1.Event{
				Event:       proto.String(EventParticipantJoined),
				Participant: &livekit.ParticipantInfo{Attributes: map[string]string{"z": "1", "a": "2", "m": "3", "B": "4"}},
			},
			want: []string{`"attributes":{"B":"4","a":"2","m":"3","z":"1"}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := string(mustMarshalBody(t, tt.evt))
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s\nbody: %s", w, body)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body has %s\nbody: %s", w, body)
				}
			}
		})
	}
}

func TestMarshalBodyDoesNotChangeEvent(t *testing.T) {
	for _, s := range sampleEvents() {
		t.Run(s.golden, func(t *testing.T) {
			before := proto.Clone(s.evt)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := MarshalBody(s.evt, Fallback{ID: "x", CreatedAt: 1}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if !proto.Equal(before, s.evt) {
				t.Fatal("MarshalBody changed the event")
			}
		})
	}
}

// TestMarshalBodyCarriesEveryPayloadField sets each field of Event in turn and
// checks that payload fields (< 100) reach the body and routing fields do not,
// so a field added to the proto cannot be forgotten by MarshalBody.
func TestMarshalBodyCarriesEveryPayloadField(t *testing.T) {
	fields := (&roomhookv1.Event{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		t.Run(string(fd.Name()), func(t *testing.T) {
			evt := &roomhookv1.Event{}
			m := evt.ProtoReflect()
			m.Set(fd, sampleValue(t, m, fd))
			var body map[string]json.RawMessage
			if err := json.Unmarshal(mustMarshalBody(t, evt), &body); err != nil {
				t.Fatal(err)
			}
			value, present := body[string(fd.Name())]
			if fd.Number() >= 100 {
				if present {
					t.Fatalf("routing field %s is in the body", fd.Name())
				}
				return
			}
			if !present {
				t.Fatalf("payload field %s is not in the body", fd.Name())
			}
			if fd.Name() == "id" && string(value) != `"sample"` || fd.Name() == "created_at" && string(value) != `"7"` {
				t.Fatalf("%s = %s, the publisher's value was replaced", fd.Name(), value)
			}
		})
	}
}

// sampleValue is a non-default value for fd: a string, 7, an empty message or
// a one-element list.
func sampleValue(t *testing.T, m protoreflect.Message, fd protoreflect.FieldDescriptor) protoreflect.Value {
	t.Helper()
	switch {
	case fd.IsList():
		l := m.NewField(fd).List()
		if fd.Kind() != protoreflect.StringKind {
			t.Fatalf("no sample for list of %v", fd.Kind())
		}
		l.Append(protoreflect.ValueOfString("https://hooks.example.com/x"))
		return protoreflect.ValueOfList(l)
	case fd.Message() != nil:
		return m.NewField(fd)
	case fd.Kind() == protoreflect.StringKind:
		return protoreflect.ValueOfString("sample")
	case fd.Kind() == protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(7)
	}
	t.Fatalf("no sample for %v", fd.Kind())
	return protoreflect.Value{}
}

func TestStreamEventID(t *testing.T) {
	if got, want := eventIDNamespace(), uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/roomhook/roomhook#event-id")); got != want {
		t.Fatalf("namespace = %s, want %s", got, want)
	}
	// Pinned: ids of events already delivered must not change with an upgrade.
	if got, want := StreamEventID("ROOMHOOK_EVENTS_DEFAULT", 1), uuid.NewSHA1(eventIDNamespace(), []byte("ROOMHOOK_EVENTS_DEFAULT:1")).String(); got != want {
		t.Fatalf("StreamEventID = %s, want %s", got, want)
	}
	if got, want := StreamEventID("ROOMHOOK_EVENTS_DEFAULT", 1), "f604075c-fcd0-54be-8624-d84ae4b72859"; got != want {
		t.Fatalf("StreamEventID = %s, want the pinned %s", got, want)
	}

	seen := map[string]string{}
	for _, in := range []struct {
		stream string
		seq    uint64
	}{
		{"ROOMHOOK_EVENTS_DEFAULT", 1},
		{"ROOMHOOK_EVENTS_DEFAULT", 2},
		{"ROOMHOOK_EVENTS_EU", 1},
		{"ab:1", 2}, // must not collide with "ab", 12 or "ab:12"
		{"ab", 12},
		{"ab:12", 0},
		{"", 0},
		{"S", 18446744073709551615},
	} {
		id := StreamEventID(in.stream, in.seq)
		if again := StreamEventID(in.stream, in.seq); again != id {
			t.Fatalf("StreamEventID(%q, %d) not stable: %s then %s", in.stream, in.seq, id, again)
		}
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 5 || u.Variant() != uuid.RFC4122 || id != strings.ToLower(id) {
			t.Fatalf("StreamEventID(%q, %d) = %q is not a lower-case RFC 4122 v5 UUID (%v)", in.stream, in.seq, id, err)
		}
		if prev, dup := seen[id]; dup {
			t.Fatalf("StreamEventID(%q, %d) collides with %s", in.stream, in.seq, prev)
		}
		seen[id] = fmt.Sprintf("StreamEventID(%q, %d)", in.stream, in.seq)
	}
}

func TestCompactJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":"x, y","b":1, "c":[1, 2, {"d":"\" , "}], "e":"\\", "f":"\\\" ,"}`,
		`{ "a" : "  " ,	"b"
		:true}`,
		`{}`,
		`{"metadata":"{\"k\": \"v\"}", "x":"é 🎥 \u2028"}`,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if got := compactJSON([]byte(in)); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("compactJSON(%s)\n got: %s\nwant: %s", in, got, want.Bytes())
		}
	}
}

func BenchmarkMarshalBody(b *testing.B) {
	samples := map[string]*roomhookv1.Event{}
	for _, s := range sampleEvents() {
		samples[s.golden] = s.evt
	}
	for _, name := range []string{EventParticipantJoined, EventTrackPublished, EventRecordingProceeded, EventArtifactCreated} {
		evt := samples[name]
		fb := Fallback{ID: StreamEventID(goldenStream, 1), CreatedAt: goldenFallbackCreatedAt}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				body, err := MarshalBody(evt, fb)
				if err != nil {
					b.Fatal(err)
				}
				n = len(body)
			}
			b.SetBytes(int64(n))
		})
	}
}

func mustMarshalBody(t *testing.T, evt *roomhookv1.Event) []byte {
	t.Helper()
	body, err := MarshalBody(evt, Fallback{ID: "fallback-id", CreatedAt: goldenFallbackCreatedAt})
	if err != nil {
		t.Fatalf("MarshalBody: %v", err)
	}
	if !json.Valid(body) {
		t.Fatalf("MarshalBody gave invalid JSON: %s", body)
	}
	return body
}

func mustProtoJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
