package schema

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
)

// TestParseBodyRoundTrip holds ParseBody to being MarshalBody's inverse on
// every golden body, also when the body comes with protojson's random spaces
// as plugNmeet's server writes it.
func TestParseBodyRoundTrip(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden bodies: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			evt, err := ParseBody(golden)
			if err != nil {
				t.Fatalf("ParseBody: %v", err)
			}
			spaced, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(evt)
			if err != nil {
				t.Fatal(err)
			}
			for name, in := range map[string][]byte{"compact": golden, "multiline": spaced} {
				again, err := ParseBody(in)
				if err != nil {
					t.Fatalf("%s: ParseBody: %v", name, err)
				}
				out, err := MarshalBody(again, Fallback{})
				if err != nil {
					t.Fatalf("%s: MarshalBody: %v", name, err)
				}
				if !bytes.Equal(out, golden) {
					t.Fatalf("%s: round trip differs\n got: %s\nwant: %s", name, out, golden)
				}
			}
		})
	}
}

func TestParseBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		check   func(t *testing.T, got string)
	}{
		{name: "not JSON", body: `event=room_created`, wantErr: true},
		{name: "wrong type", body: `{"event":42}`, wantErr: true},
		{name: "array", body: `[]`, wantErr: true},
		{name: "unknown field skipped", body: `{"event":"room_started","room":{"room_id":"r"},"new_field":{"x":1},"id":"a","created_at":"1"}`,
			check: func(t *testing.T, got string) {
				if want := `{"event":"room_started","room":{"room_id":"r"},"id":"a","created_at":"1"}`; got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
			}},
		{name: "json names and numbers", body: `{"event":"end_recording","room":{"roomId":"r"},"recordingInfo":{"recordId":"x"},"id":"a","createdAt":7}`,
			check: func(t *testing.T, got string) {
				if want := `{"event":"end_recording","room":{"room_id":"r"},"recording_info":{"record_id":"x"},"id":"a","created_at":"7"}`; got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evt, err := ParseBody([]byte(tt.body))
			if tt.wantErr {
				if !errors.Is(err, ErrParseBody) {
					t.Fatalf("err = %v, want ErrParseBody", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := MarshalBody(evt, Fallback{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, string(out))
		})
	}
}
