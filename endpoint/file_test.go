package endpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
)

var fileDefaults = signature.Credentials{APIKey: "default-key", APISecret: "default-secret"}

// Secrets used in the test files: no error may contain any of them.
const (
	goodWhsec   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	goodWhsec2  = "whsec_c2Vjb25kLWtleS1mb3Itcm90YXRpb24="
	badWhsec    = "whsec_SECRET-not*base64"
	ownSecret   = "lms-secret-value-9f8e7d"
	urlPassword = "hunter2-in-url"
)

func writeEndpointsFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadEndpointsFile(t *testing.T) {
	path := writeEndpointsFile(t, `
endpoints:
  - url: https://LMS.example.com/roomhook
    events:
      include: [room_started, room_finished]
      exclude: []
    api_key: lms-key
    api_secret: `+ownSecret+`
    standard_webhooks_secrets: [`+goodWhsec+`, `+goodWhsec2+`]
    enabled: true
    paused: false
  - url: https://analytics.example.com/hook?token=abc
    events:
      exclude: [track_published, track_unpublished]
    paused: true
  - url: https://old.example.com/hook
    enabled: false
  - url: http://127.0.0.1:9000/webhook
`)
	got, err := LoadFile(path, fileDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{
			ID: ID("https://lms.example.com/roomhook"), URL: "https://lms.example.com/roomhook",
			Credentials:     signature.Credentials{APIKey: "lms-key", APISecret: ownSecret},
			StandardSecrets: []string{goodWhsec, goodWhsec2},
			Filter:          EventFilter{Include: []string{"room_started", "room_finished"}, Exclude: []string{}},
			Global:          true,
		},
		{
			ID: ID("https://analytics.example.com/hook?token=abc"), URL: "https://analytics.example.com/hook?token=abc",
			Credentials: fileDefaults,
			Filter:      EventFilter{Exclude: []string{"track_published", "track_unpublished"}},
			Paused:      true, Global: true,
		},
		{
			ID: ID("http://127.0.0.1:9000/webhook"), URL: "http://127.0.0.1:9000/webhook",
			Credentials: fileDefaults, Global: true,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("endpoints:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Filter.Allows("participant_joined") || !got[0].Filter.Allows("room_finished") {
		t.Error("entry 1's include filter is not applied")
	}
	if got[1].Filter.Allows("track_published") || !got[1].Filter.Allows("room_created") {
		t.Error("entry 2's exclude filter is not applied")
	}
}

func TestLoadEndpointsFileEmpty(t *testing.T) {
	for name, content := range map[string]string{
		"empty file":     "",
		"comments only":  "# no endpoints yet\n",
		"null endpoints": "endpoints:\n",
		"empty list":     "endpoints: []\n",
		"all disabled":   "endpoints:\n  - url: https://a.example.com/x\n    enabled: false\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := LoadFile(writeEndpointsFile(t, content), fileDefaults)
			if err != nil || len(got) != 0 {
				t.Fatalf("got %v, %v; want no endpoints and no error", got, err)
			}
		})
	}
}

func TestLoadEndpointsFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // pieces the error must contain
		is      error    // a further sentinel the error wraps
	}{
		{"top level not a mapping", "- url: https://a.example.com/x\n", []string{"line 1", "mapping with the key endpoints"}, nil},
		{"unknown top-level key", "endpoint:\n  - url: https://a.example.com/x\n", []string{"line 1", `unknown key "endpoint"`}, nil},
		{"endpoints not a list", "endpoints:\n  url: https://a.example.com/x\n", []string{"line 2", "endpoints must be a list"}, nil},
		{"entry not a mapping", "endpoints:\n  - https://a.example.com/x\n", []string{"entry 1 (line 2)", "want a mapping"}, nil},
		{"unknown entry key", "endpoints:\n  - url: https://a.example.com/x\n  - url: https://b.example.com/x\n    apikey: k\n",
			[]string{"entry 2 (line 4)", `unknown key "apikey"`}, nil},
		{"key twice", "endpoints:\n  - url: https://a.example.com/x\n    url: https://b.example.com/x\n", []string{"entry 1", "url given twice"}, nil},
		{"url missing", "endpoints:\n  - paused: true\n", []string{"entry 1 (line 2)", "url is required"}, nil},
		{"url not http", "endpoints:\n  - url: ftp://a.example.com/x\n", []string{"entry 1", "url:", "scheme must be http or https"}, ErrInvalidURL},
		{"url with user info", "endpoints:\n  - url: https://user:" + urlPassword + "@a.example.com/x\n", []string{"entry 1", "user info is not supported"}, ErrInvalidURL},
		{"url not a string", "endpoints:\n  - url: [https://a.example.com/x]\n", []string{"entry 1", "url: must be a string"}, nil},
		{"duplicate url after canonicalisation", "endpoints:\n  - url: https://a.example.com/x\n  - url: https://A.EXAMPLE.com/x\n    enabled: false\n",
			[]string{"entry 2 (line 3)", "same as entry 1"}, nil},
		{"events as a list", "endpoints:\n  - url: https://a.example.com/x\n    events: [room_started]\n", []string{"entry 1", "events: must be a mapping with include and/or exclude"}, nil},
		{"unknown events key", "endpoints:\n  - url: https://a.example.com/x\n    events:\n      only: [room_started]\n", []string{"entry 1", `events: unknown key "only"`}, nil},
		{"upper-case event", "endpoints:\n  - url: https://a.example.com/x\n    events:\n      include: [room_started, Room_Finished]\n",
			[]string{"entry 1", "events.include[1]"}, schema.ErrInvalidEvent},
		{"event not a string", "endpoints:\n  - url: https://a.example.com/x\n    events:\n      exclude: [{a: b}]\n", []string{"entry 1", "events: exclude: [0]: must be a string"}, nil},
		{"api_key without secret", "endpoints:\n  - url: https://a.example.com/x\n    api_key: k\n", []string{"entry 1", "set both or neither"}, nil},
		{"api_secret without key", "endpoints:\n  - url: https://a.example.com/x\n    api_secret: " + ownSecret + "\n", []string{"entry 1", "set both or neither"}, nil},
		{"api_secret a number", "endpoints:\n  - url: https://a.example.com/x\n    api_key: k\n    api_secret: 1234567\n", []string{"entry 1", "api_secret: must be a string"}, nil},
		{"bad whsec", "endpoints:\n  - url: https://a.example.com/x\n    standard_webhooks_secrets: [" + goodWhsec + ", " + badWhsec + "]\n",
			[]string{"entry 1", "standard_webhooks_secrets[1]"}, signature.ErrBadSecret},
		{"secret without prefix", "endpoints:\n  - url: https://a.example.com/x\n    standard_webhooks_secrets: [" + strings.TrimPrefix(goodWhsec, "whsec_") + "]\n",
			[]string{"standard_webhooks_secrets[0]", "whsec_"}, signature.ErrBadSecret},
		{"secrets as a string", "endpoints:\n  - url: https://a.example.com/x\n    standard_webhooks_secrets: " + goodWhsec + "\n",
			[]string{"entry 1", "standard_webhooks_secrets: must be a list of strings"}, nil},
		{"enabled not a bool", "endpoints:\n  - url: https://a.example.com/x\n    enabled: \"yes\"\n", []string{"entry 1", "enabled: must be true or false"}, nil},
		{"invalid disabled entry", "endpoints:\n  - url: not-a-url\n    enabled: false\n", []string{"entry 1", "url:"}, ErrInvalidURL},
		{"two documents", "endpoints: []\n---\nendpoints: []\n", []string{"more than one YAML document"}, nil},
		{"not YAML", "endpoints: [\n", []string{"yaml:"}, nil},
	}
	secrets := []string{goodWhsec, goodWhsec2, badWhsec, ownSecret, urlPassword, strings.TrimPrefix(goodWhsec, "whsec_")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeEndpointsFile(t, tt.content)
			eps, err := LoadFile(path, fileDefaults)
			if err == nil {
				t.Fatalf("accepted, got %+v", eps)
			}
			if !errors.Is(err, ErrFile) {
				t.Errorf("error %q does not wrap ErrEndpointsFile", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %v", err, tt.is)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("error %q does not start with the file's path", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error %q repeats a secret", msg)
				}
			}
		})
	}
}

func TestLoadEndpointsFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"), fileDefaults)
	if !errors.Is(err, ErrFile) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrEndpointsFile wrapping os.ErrNotExist", err)
	}
}

func ExampleLoadFile() {
	dir, _ := os.MkdirTemp("", "roomhook")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "endpoints.yaml")
	_ = os.WriteFile(path, []byte(`
endpoints:
  - url: https://lms.example.com/roomhook
    events:
      include: [room_started, room_finished]
  - url: https://recordings.example.com/hook
    events:
      include: [end_recording, recording_proceeded]
    api_key: recordings-key
    api_secret: recordings-secret
    paused: true
  - url: https://retired.example.com/hook
    enabled: false
`), 0o600)

	eps, err := LoadFile(path, signature.Credentials{APIKey: "plugnmeet", APISecret: "main-secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ep := range eps {
		fmt.Println(ep.URL, ep.Credentials.APIKey, ep.Filter.Include, "paused:", ep.Paused)
	}
	// Output:
	// https://lms.example.com/roomhook plugnmeet [room_started room_finished] paused: false
	// https://recordings.example.com/hook recordings-key [end_recording recording_proceeded] paused: true
}
