package schema

import (
	"math"
	"testing"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// These tests hold roomhook.v1.Event to plugNmeet's wire format: bytes are
// written and read by field number with protowire, using the numbers and wire
// types of plugnmeet.CommonNotifyEvent, not with the generated code under test.

// wireMessage builds protobuf bytes field by field.
type wireMessage []byte

func (w wireMessage) str(num protowire.Number, s string) wireMessage {
	b := protowire.AppendTag(w, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (w wireMessage) bytes(num protowire.Number, v []byte) wireMessage {
	b := protowire.AppendTag(w, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (w wireMessage) varint(num protowire.Number, v uint64) wireMessage {
	b := protowire.AppendTag(w, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (w wireMessage) fixed32(num protowire.Number, v uint32) wireMessage {
	b := protowire.AppendTag(w, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func (w wireMessage) fixed64(num protowire.Number, v uint64) wireMessage {
	b := protowire.AppendTag(w, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

// mapEntry is one entry of a map<string, int64>.
func mapEntry(key string, value int64) []byte {
	return wireMessage(nil).str(1, key).varint(2, uint64(value))
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodesPlugNmeetWireFormat(t *testing.T) {
	participant := sampleParticipant()
	track := sampleVideoTrack()
	codecVP8 := &livekit.Codec{Mime: "video/VP8"}
	codecH264 := &livekit.Codec{Mime: "video/H264", FmtpLine: "packetization-mode=1"}

	room := wireMessage(nil).
		str(1, "RM_xK2pQ7vT9bLm").
		str(2, "weekly-sync").
		varint(3, 1800).
		varint(4, 100).
		varint(5, 1761814900).
		bytes(6, mustMarshal(t, codecVP8)).
		bytes(6, mustMarshal(t, codecH264)).
		str(7, `{"room_title":"Q&A"}`).
		varint(8, 0) // set to zero: presence must survive
	recording := wireMessage(nil).
		str(1, "REC_1").
		str(2, "node_01").
		str(3, "success").
		str(4, "").
		fixed32(5, math.Float32bits(52.73))
	speech := wireMessage(nil).str(3, "user-42").varint(4, 4235)
	analytics := wireMessage(nil).str(1, "AF_1")
	tokenUsage := wireMessage(nil).
		varint(1, 12840).
		varint(2, 1310).
		varint(3, 14150).
		bytes(4, mapEntry("summarize", 11200)).
		bytes(4, mapEntry("user-42", -3)).
		fixed64(5, math.Float64bits(0.001926)).
		fixed64(6, math.Float64bits(0)).
		fixed64(7, math.Float64bits(0.002712))
	metadata := wireMessage(nil).
		bytes(1, wireMessage(nil).str(1, "user-42").str(2, "Ada")).
		bytes(2, wireMessage(nil).str(1, "job-7f3c").str(2, "summary.md")).
		bytes(3, wireMessage(nil).str(1, "a/b.md").varint(2, 18233).str(3, "text/markdown")).
		bytes(4, tokenUsage).
		str(10, "ART_ref")
	artifact := wireMessage(nil).varint(1, 3).str(2, "ART_1").bytes(3, metadata)

	data := wireMessage(nil).
		str(1, "artifact_created").
		bytes(2, room).
		bytes(3, mustMarshal(t, participant)).
		bytes(4, recording).
		bytes(5, speech).
		bytes(6, mustMarshal(t, track)).
		bytes(7, analytics).
		bytes(8, artifact).
		str(9, "EV_1").
		varint(10, 1761815000)

	want := &roomhookv1.Event{
		Event: proto.String("artifact_created"),
		Room: &roomhookv1.NotifyEventRoom{
			Sid: proto.String("RM_xK2pQ7vT9bLm"), RoomId: proto.String("weekly-sync"),
			EmptyTimeout: proto.Uint32(1800), MaxParticipants: proto.Uint32(100), CreationTime: proto.Uint64(1761814900),
			EnabledCodecs: []*livekit.Codec{codecVP8, codecH264}, Metadata: proto.String(`{"room_title":"Q&A"}`),
			NumParticipants: proto.Uint32(0),
		},
		Participant: participant,
		RecordingInfo: &roomhookv1.RecordingInfoEvent{RecordId: "REC_1", RecorderId: "node_01", RecorderMsg: "success",
			FilePath: proto.String(""), FileSize: proto.Float32(52.73)},
		SpeechService: &roomhookv1.SpeechServiceEvent{UserId: proto.String("user-42"), TotalUsage: 4235},
		Track:         track,
		Analytics:     &roomhookv1.AnalyticsEvent{FileId: proto.String("AF_1")},
		RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{
			Type: roomhookv1.RoomArtifactType_MEETING_SUMMARY_USAGE, ArtifactId: "ART_1",
			Metadata: &roomhookv1.RoomArtifactMetadata{
				UserInfo:        &roomhookv1.RoomArtifactUserInfo{UserId: "user-42", Name: proto.String("Ada")},
				ProviderJobInfo: &roomhookv1.RoomArtifactProviderJobInfo{JobId: "job-7f3c", FileName: "summary.md"},
				FileInfo:        &roomhookv1.RoomArtifactFileInfo{FilePath: "a/b.md", FileSize: 18233, MimeType: "text/markdown"},
				UsageDetails: &roomhookv1.RoomArtifactMetadata_TokenUsage{TokenUsage: &roomhookv1.RoomArtifactTokenUsage{
					PromptTokens: 12840, CompletionTokens: 1310, TotalTokens: 14150,
					Breakdown:                     map[string]int64{"summarize": 11200, "user-42": -3},
					PromptTokensEstimatedCost:     proto.Float64(0.001926),
					CompletionTokensEstimatedCost: proto.Float64(0),
					TotalTokensEstimatedCost:      proto.Float64(0.002712),
				}},
				ReferenceArtifactId: proto.String("ART_ref"),
			},
		},
		Id:        proto.String("EV_1"),
		CreatedAt: proto.Int64(1761815000),
	}

	got, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded\n%v\nwant\n%v", got, want)
	}
	if len(got.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("plugNmeet fields landed in unknown fields: %x", got.ProtoReflect().GetUnknown())
	}
	// Presence of optional zero values is part of the contract (they are
	// written to the body), so check it explicitly, not only through Equal.
	if got.Room.NumParticipants == nil || got.RecordingInfo.FilePath == nil || got.RoomArtifact.Metadata.GetTokenUsage().CompletionTokensEstimatedCost == nil {
		t.Fatal("a set optional zero value lost its presence")
	}
}

func TestDecodesPlugNmeetUsageOneofs(t *testing.T) {
	tests := []struct {
		name     string
		metadata wireMessage
		want     *roomhookv1.RoomArtifactMetadata
	}{
		{
			name: "duration_usage",
			metadata: wireMessage(nil).bytes(5, wireMessage(nil).
				varint(1, 3187).bytes(2, mapEntry("en-US", 2410)).bytes(2, mapEntry("de-DE", 777)).fixed64(3, math.Float64bits(0.0531))),
			want: &roomhookv1.RoomArtifactMetadata{UsageDetails: &roomhookv1.RoomArtifactMetadata_DurationUsage{DurationUsage: &roomhookv1.RoomArtifactDurationUsage{
				DurationSec: 3187, Breakdown: map[string]int64{"en-US": 2410, "de-DE": 777}, DurationSecEstimatedCost: proto.Float64(0.0531)}}},
		},
		{
			name: "character_count_usage",
			metadata: wireMessage(nil).bytes(6, wireMessage(nil).
				varint(1, 5120).bytes(2, mapEntry("fr", 5120)).fixed64(3, math.Float64bits(0.08))),
			want: &roomhookv1.RoomArtifactMetadata{UsageDetails: &roomhookv1.RoomArtifactMetadata_CharacterCountUsage{CharacterCountUsage: &roomhookv1.RoomArtifactCharacterCountUsage{
				TotalCharacters: 5120, Breakdown: map[string]int64{"fr": 5120}, TotalCharactersEstimatedCost: proto.Float64(0.08)}}},
		},
		{
			name: "last oneof member on the wire wins",
			metadata: wireMessage(nil).
				bytes(4, wireMessage(nil).varint(3, 10)).
				bytes(6, wireMessage(nil).varint(1, 7)),
			want: &roomhookv1.RoomArtifactMetadata{UsageDetails: &roomhookv1.RoomArtifactMetadata_CharacterCountUsage{CharacterCountUsage: &roomhookv1.RoomArtifactCharacterCountUsage{
				TotalCharacters: 7}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := wireMessage(nil).str(1, "artifact_created").
				bytes(8, wireMessage(nil).varint(1, 5).str(2, "ART_2").bytes(3, tt.metadata))
			got, err := DecodeEvent(data)
			if err != nil {
				t.Fatal(err)
			}
			want := &roomhookv1.Event{Event: proto.String("artifact_created"), RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{
				Type: roomhookv1.RoomArtifactType_SPEECH_TRANSCRIPTION_USAGE, ArtifactId: "ART_2", Metadata: tt.want}}
			if !proto.Equal(got, want) {
				t.Fatalf("decoded\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// wireField is one top-level field of encoded bytes.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the value: varint/fixed bytes or the length-delimited payload
	v   uint64 // varint and fixed values
}

// wireFields splits b into its fields.
func wireFields(t *testing.T, b []byte) []wireField {
	t.Helper()
	var out []wireField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := wireField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.raw, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		out = append(out, f)
	}
	return out
}

// TestEncodesPlugNmeetWireFormat marshals an Event and reads it back by field
// number, as a plugNmeet CommonNotifyEvent decoder would.
func TestEncodesPlugNmeetWireFormat(t *testing.T) {
	participant := sampleParticipant()
	track := sampleAudioTrack()
	evt := &roomhookv1.Event{
		Event: proto.String("participant_joined"),
		Room: &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_1"), RoomId: proto.String("r"), EmptyTimeout: proto.Uint32(0),
			MaxParticipants: proto.Uint32(5), CreationTime: proto.Uint64(1761814900),
			EnabledCodecs: []*livekit.Codec{{Mime: "audio/opus"}}, Metadata: proto.String("m"), NumParticipants: proto.Uint32(2)},
		Participant:   participant,
		RecordingInfo: &roomhookv1.RecordingInfoEvent{RecordId: "REC_1", RecorderId: "node", RecorderMsg: "ok", FilePath: proto.String(""), FileSize: proto.Float32(1.5)},
		SpeechService: &roomhookv1.SpeechServiceEvent{UserId: proto.String("u"), TotalUsage: 77},
		Track:         track,
		Analytics:     &roomhookv1.AnalyticsEvent{FileId: proto.String("AF")},
		RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{Type: roomhookv1.RoomArtifactType_MEETING_ANALYTICS, ArtifactId: "ART",
			Metadata: &roomhookv1.RoomArtifactMetadata{UsageDetails: &roomhookv1.RoomArtifactMetadata_TokenUsage{
				TokenUsage: &roomhookv1.RoomArtifactTokenUsage{TotalTokens: 9, Breakdown: map[string]int64{"k": 9}}}}},
		Id:          proto.String("EV_1"),
		CreatedAt:   proto.Int64(1761815000),
		WebhookUrls: []string{"https://h.example/a"},
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}

	top := wireFields(t, data)
	wantTop := []struct {
		num protowire.Number
		typ protowire.Type
	}{
		{1, protowire.BytesType}, {2, protowire.BytesType}, {3, protowire.BytesType}, {4, protowire.BytesType},
		{5, protowire.BytesType}, {6, protowire.BytesType}, {7, protowire.BytesType}, {8, protowire.BytesType},
		{9, protowire.BytesType}, {10, protowire.VarintType}, {100, protowire.BytesType},
	}
	if len(top) != len(wantTop) {
		t.Fatalf("%d top-level fields, want %d", len(top), len(wantTop))
	}
	for i, w := range wantTop {
		if top[i].num != w.num || top[i].typ != w.typ {
			t.Fatalf("field %d: number %d type %d, want %d type %d", i, top[i].num, top[i].typ, w.num, w.typ)
		}
	}
	if string(top[0].raw) != "participant_joined" || string(top[8].raw) != "EV_1" || top[9].v != 1761815000 || string(top[10].raw) != "https://h.example/a" {
		t.Fatalf("scalar values: %q %q %d %q", top[0].raw, top[8].raw, top[9].v, top[10].raw)
	}
	// LiveKit's own messages are embedded byte for byte as LiveKit encodes them.
	if got := top[2].raw; string(got) != string(mustMarshalDeterministic(t, participant)) {
		t.Fatal("participant is not LiveKit's ParticipantInfo encoding")
	}
	if got := top[5].raw; string(got) != string(mustMarshalDeterministic(t, track)) {
		t.Fatal("track is not LiveKit's TrackInfo encoding")
	}

	room := wireFields(t, top[1].raw)
	wantRoom := []wireField{
		{num: 1, typ: protowire.BytesType, raw: []byte("RM_1")},
		{num: 2, typ: protowire.BytesType, raw: []byte("r")},
		{num: 3, typ: protowire.VarintType, v: 0}, // optional zero is on the wire
		{num: 4, typ: protowire.VarintType, v: 5},
		{num: 5, typ: protowire.VarintType, v: 1761814900},
		{num: 6, typ: protowire.BytesType, raw: mustMarshalDeterministic(t, &livekit.Codec{Mime: "audio/opus"})},
		{num: 7, typ: protowire.BytesType, raw: []byte("m")},
		{num: 8, typ: protowire.VarintType, v: 2},
	}
	checkWireFields(t, "room", room, wantRoom)

	checkWireFields(t, "recording_info", wireFields(t, top[3].raw), []wireField{
		{num: 1, typ: protowire.BytesType, raw: []byte("REC_1")},
		{num: 2, typ: protowire.BytesType, raw: []byte("node")},
		{num: 3, typ: protowire.BytesType, raw: []byte("ok")},
		{num: 4, typ: protowire.BytesType, raw: []byte("")},
		{num: 5, typ: protowire.Fixed32Type, v: uint64(math.Float32bits(1.5))},
	})
	checkWireFields(t, "speech_service", wireFields(t, top[4].raw), []wireField{
		{num: 3, typ: protowire.BytesType, raw: []byte("u")},
		{num: 4, typ: protowire.VarintType, v: 77},
	})
	checkWireFields(t, "analytics", wireFields(t, top[6].raw), []wireField{
		{num: 1, typ: protowire.BytesType, raw: []byte("AF")},
	})
	artifact := wireFields(t, top[7].raw)
	if len(artifact) != 3 || artifact[0].num != 1 || artifact[0].v != 1 || artifact[1].num != 2 || string(artifact[1].raw) != "ART" || artifact[2].num != 3 {
		t.Fatalf("room_artifact fields: %+v", artifact)
	}
	metadata := wireFields(t, artifact[2].raw)
	if len(metadata) != 1 || metadata[0].num != 4 {
		t.Fatalf("metadata fields: %+v", metadata)
	}
	checkWireFields(t, "token_usage", wireFields(t, metadata[0].raw), []wireField{
		{num: 3, typ: protowire.VarintType, v: 9},
		{num: 4, typ: protowire.BytesType, raw: mapEntry("k", 9)},
	})
}

func mustMarshalDeterministic(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkWireFields(t *testing.T, name string, got, want []wireField) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d fields, want %d: %+v", name, len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.num != w.num || g.typ != w.typ || g.v != w.v || string(g.raw) != string(w.raw) {
			t.Fatalf("%s field %d = {%d %d %q %d}, want {%d %d %q %d}", name, i, g.num, g.typ, g.raw, g.v, w.num, w.typ, w.raw, w.v)
		}
	}
}

// The Go types of participant, track and the room's codecs are LiveKit's own,
// so values pass between roomhook and LiveKit code without conversion.
var (
	_ *livekit.ParticipantInfo = (*roomhookv1.Event)(nil).GetParticipant()
	_ *livekit.TrackInfo       = (*roomhookv1.Event)(nil).GetTrack()
	_ []*livekit.Codec         = (*roomhookv1.NotifyEventRoom)(nil).GetEnabledCodecs()
)

// TestDescriptorsMatchPlugNmeet checks every field of the plugNmeet-compatible
// messages against plugNmeet's field table: number, name, type and presence.
func TestDescriptorsMatchPlugNmeet(t *testing.T) {
	type field struct {
		num      protowire.Number
		name     string
		kind     string // scalar kind, or the full name of a message/enum type
		list     bool
		presence bool // proto3 optional (or a message, which always has presence)
	}
	tests := []struct {
		msg    proto.Message
		fields []field
	}{
		{&roomhookv1.Event{}, []field{
			{1, "event", "string", false, true},
			{2, "room", "roomhook.v1.NotifyEventRoom", false, true},
			{3, "participant", "livekit.ParticipantInfo", false, true},
			{4, "recording_info", "roomhook.v1.RecordingInfoEvent", false, true},
			{5, "speech_service", "roomhook.v1.SpeechServiceEvent", false, true},
			{6, "track", "livekit.TrackInfo", false, true},
			{7, "analytics", "roomhook.v1.AnalyticsEvent", false, true},
			{8, "room_artifact", "roomhook.v1.RoomArtifactWebhookEvent", false, true},
			{9, "id", "string", false, true},
			{10, "created_at", "int64", false, true},
			{100, "webhook_urls", "string", true, false},
		}},
		{&roomhookv1.NotifyEventRoom{}, []field{
			{1, "sid", "string", false, true},
			{2, "room_id", "string", false, true},
			{3, "empty_timeout", "uint32", false, true},
			{4, "max_participants", "uint32", false, true},
			{5, "creation_time", "uint64", false, true},
			{6, "enabled_codecs", "livekit.Codec", true, false},
			{7, "metadata", "string", false, true},
			{8, "num_participants", "uint32", false, true},
		}},
		{&roomhookv1.RecordingInfoEvent{}, []field{
			{1, "record_id", "string", false, false},
			{2, "recorder_id", "string", false, false},
			{3, "recorder_msg", "string", false, false},
			{4, "file_path", "string", false, true},
			{5, "file_size", "float", false, true},
		}},
		{&roomhookv1.SpeechServiceEvent{}, []field{
			{3, "user_id", "string", false, true},
			{4, "total_usage", "int64", false, false},
		}},
		{&roomhookv1.AnalyticsEvent{}, []field{
			{1, "file_id", "string", false, true},
		}},
		{&roomhookv1.RoomArtifactWebhookEvent{}, []field{
			{1, "type", "roomhook.v1.RoomArtifactType", false, false},
			{2, "artifact_id", "string", false, false},
			{3, "metadata", "roomhook.v1.RoomArtifactMetadata", false, true},
		}},
		{&roomhookv1.RoomArtifactMetadata{}, []field{
			{1, "user_info", "roomhook.v1.RoomArtifactUserInfo", false, true},
			{2, "provider_job_info", "roomhook.v1.RoomArtifactProviderJobInfo", false, true},
			{3, "file_info", "roomhook.v1.RoomArtifactFileInfo", false, true},
			{4, "token_usage", "roomhook.v1.RoomArtifactTokenUsage", false, true},
			{5, "duration_usage", "roomhook.v1.RoomArtifactDurationUsage", false, true},
			{6, "character_count_usage", "roomhook.v1.RoomArtifactCharacterCountUsage", false, true},
			{10, "reference_artifact_id", "string", false, true},
		}},
		{&roomhookv1.RoomArtifactFileInfo{}, []field{
			{1, "file_path", "string", false, false},
			{2, "file_size", "int64", false, false},
			{3, "mime_type", "string", false, false},
		}},
		{&roomhookv1.RoomArtifactProviderJobInfo{}, []field{
			{1, "job_id", "string", false, false},
			{2, "file_name", "string", false, false},
		}},
		{&roomhookv1.RoomArtifactUserInfo{}, []field{
			{1, "user_id", "string", false, false},
			{2, "name", "string", false, true},
		}},
		{&roomhookv1.RoomArtifactTokenUsage{}, []field{
			{1, "prompt_tokens", "uint32", false, false},
			{2, "completion_tokens", "uint32", false, false},
			{3, "total_tokens", "uint32", false, false},
			{4, "breakdown", "map<string,int64>", false, false},
			{5, "prompt_tokens_estimated_cost", "double", false, true},
			{6, "completion_tokens_estimated_cost", "double", false, true},
			{7, "total_tokens_estimated_cost", "double", false, true},
		}},
		{&roomhookv1.RoomArtifactDurationUsage{}, []field{
			{1, "duration_sec", "uint32", false, false},
			{2, "breakdown", "map<string,int64>", false, false},
			{3, "duration_sec_estimated_cost", "double", false, true},
		}},
		{&roomhookv1.RoomArtifactCharacterCountUsage{}, []field{
			{1, "total_characters", "uint32", false, false},
			{2, "breakdown", "map<string,int64>", false, false},
			{3, "total_characters_estimated_cost", "double", false, true},
		}},
	}
	for _, tt := range tests {
		md := tt.msg.ProtoReflect().Descriptor()
		t.Run(string(md.FullName()), func(t *testing.T) {
			fields := md.Fields()
			if fields.Len() != len(tt.fields) {
				t.Fatalf("%d fields, want %d", fields.Len(), len(tt.fields))
			}
			for i, want := range tt.fields {
				fd := fields.Get(i)
				kind := fd.Kind().String()
				switch {
				case fd.IsMap():
					kind = "map<" + fd.MapKey().Kind().String() + "," + fd.MapValue().Kind().String() + ">"
				case fd.Message() != nil:
					kind = string(fd.Message().FullName())
				case fd.Enum() != nil:
					kind = string(fd.Enum().FullName())
				}
				got := field{fd.Number(), string(fd.Name()), kind, fd.IsList(), fd.HasPresence()}
				if got != want {
					t.Errorf("field %d = %+v, want %+v", i, got, want)
				}
			}
		})
	}

	// The LiveKit messages are the ones registered by LiveKit's Go package.
	evt := (&roomhookv1.Event{}).ProtoReflect().Descriptor().Fields()
	if evt.ByNumber(3).Message() != (&livekit.ParticipantInfo{}).ProtoReflect().Descriptor() ||
		evt.ByNumber(6).Message() != (&livekit.TrackInfo{}).ProtoReflect().Descriptor() {
		t.Fatal("participant/track descriptors are not livekit/protocol's")
	}

	values := roomhookv1.RoomArtifactType(0).Descriptor().Values()
	wantValues := []string{"UNKNOWN_ARTIFACT", "MEETING_ANALYTICS", "MEETING_SUMMARY", "MEETING_SUMMARY_USAGE",
		"SPEECH_TRANSCRIPTION", "SPEECH_TRANSCRIPTION_USAGE", "SYNTHESIZED_SPEECH_USAGE", "CHAT_TRANSLATION_USAGE",
		"AI_TEXT_CHAT_INTERACTION_USAGE", "AI_TEXT_CHAT_SUMMARIZATION_USAGE"}
	if values.Len() != len(wantValues) {
		t.Fatalf("RoomArtifactType has %d values, want %d", values.Len(), len(wantValues))
	}
	for n, name := range wantValues {
		if v := values.ByNumber(protoreflect.EnumNumber(n)); v == nil || string(v.Name()) != name {
			t.Errorf("RoomArtifactType %d = %v, want %s", n, v, name)
		}
	}
}
