package schema

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

func TestKnownEventNames(t *testing.T) {
	// DESIGN 1.1, in its order.
	want := []string{
		"room_created", "room_started", "room_finished", "participant_joined", "participant_left",
		"track_published", "track_unpublished", "start_recording", "end_recording", "recording_proceeded",
		"start_rtmp", "end_rtmp", "speech_to_text_session_started", "speech_to_text_session_ended",
		"speech_to_text_total_usage", "analytics_proceeded",
		"session_ended", "artifact_created", "recording_transcoding_finished",
	}
	got := KnownEventNames()
	if !slices.Equal(got, want) {
		t.Fatalf("KnownEventNames() = %v\nwant %v", got, want)
	}
	valid := regexp.MustCompile(`^[a-z0-9_]+$`)
	for _, name := range got {
		if !valid.MatchString(name) {
			t.Errorf("%q is not a lower-case subject token", name)
		}
	}
	got[0] = "changed"
	if KnownEventNames()[0] != "room_created" {
		t.Fatal("KnownEventNames returns shared state")
	}
}

func TestDecodeEvent(t *testing.T) {
	full := sampleEvents()[3].evt // participant_joined with tracks
	fullBytes, err := proto.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		want    *roomhookv1.Event
		wantErr bool
	}{
		{name: "full event", data: fullBytes, want: full},
		{name: "empty payload is an empty event", data: nil, want: &roomhookv1.Event{}},
		{name: "truncated", data: fullBytes[:len(fullBytes)/2], wantErr: true},
		{name: "invalid UTF-8 in event", data: []byte{0x0a, 0x02, 0xff, 0xfe}, wantErr: true},
		{name: "end group without start", data: []byte{0x0c}, wantErr: true},
		{name: "length past the end", data: []byte{0x12, 0x7f, 0x00}, wantErr: true},
		{name: "field number zero", data: []byte{0x00, 0x00}, wantErr: true},
		{name: "not protobuf", data: []byte(`{"event":"room_created"}`), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent(tt.data)
			if tt.wantErr {
				if !errors.Is(err, ErrDecodeEvent) {
					t.Fatalf("err = %v, want ErrDecodeEvent", err)
				}
				if got != nil {
					t.Fatal("an event came with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.want) {
				t.Fatalf("decoded %v\nwant %v", got, tt.want)
			}
		})
	}
}

// FuzzDecodeEvent: no input makes DecodeEvent or MarshalBody panic, whatever
// decodes also encodes, the body equals protojson's bytes, parses back into
// the same payload and never carries a routing field.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range sampleEvents() {
		b, err := proto.Marshal(s.evt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe})
	f.Fuzz(func(t *testing.T, data []byte) {
		evt, err := DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, ErrDecodeEvent) {
				t.Fatalf("err %v does not wrap ErrDecodeEvent", err)
			}
			return
		}
		fb := Fallback{ID: "fuzz", CreatedAt: 1}
		body, err := MarshalBody(evt, fb)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		again, err := MarshalBody(evt, fb)
		if err != nil || !bytes.Equal(body, again) {
			t.Fatalf("second encoding differs: %v\n%s\n%s", err, body, again)
		}
		// The same body through Go's protojson.
		bodyEvt, err := bodyEvent(evt, fb)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := referenceProtoJSON(bodyEvt)
		if err != nil {
			t.Fatalf("protojson refuses what MarshalBody wrote: %v", err)
		}
		if !bytes.Equal(body, ref) {
			t.Fatalf("body differs from protojson\n got: %s\nwant: %s", body, ref)
		}
		var parsed roomhookv1.Event
		if err := protojson.Unmarshal(body, &parsed); err != nil {
			t.Fatalf("body does not parse back: %v\n%s", err, body)
		}
		if len(parsed.WebhookUrls) > 0 {
			t.Fatalf("routing field in body: %s", body)
		}
		if parsed.GetId() == "" || parsed.CreatedAt == nil {
			t.Fatalf("id or created_at missing: %s", body)
		}
	})
}
