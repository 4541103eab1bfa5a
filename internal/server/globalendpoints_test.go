package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
)

// The endpoints file and ROOMHOOK_WEBHOOK_URLS merge: the file's entries first, then the URLs it
// does not list; for a URL in both, the file's entry (its filter, credentials, pause) wins.
func TestGlobalEndpointsMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	err := os.WriteFile(path, []byte(`endpoints:
  - url: https://lms.example.com/roomhook
    events:
      include: [room_finished]
    api_key: lms-key
    api_secret: lms-secret
  - url: https://paused.example.com/x
    paused: true
  - url: https://off.example.com/x
    enabled: false
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	creds := signature.Credentials{APIKey: "main-key", APISecret: "main-secret"}
	c := Config{EndpointsFile: path, WebhookURLs: []string{"https://env.example.com/hook", "HTTPS://LMS.example.com/roomhook", "https://off.example.com/x"}}
	eps, err := globalEndpoints(c, creds)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, ep := range eps {
		urls = append(urls, ep.URL)
		if !ep.Global || ep.ID != endpoint.ID(ep.URL) {
			t.Errorf("endpoint %+v: want global with the id of its URL", ep)
		}
	}
	want := "https://lms.example.com/roomhook https://paused.example.com/x https://env.example.com/hook https://off.example.com/x"
	if got := strings.Join(urls, " "); got != want {
		t.Fatalf("endpoints %s, want %s", got, want)
	}
	if lms := eps[0]; lms.Credentials.APIKey != "lms-key" || !lms.Filter.Allows("room_finished") || lms.Filter.Allows("room_started") {
		t.Errorf("the file's entry did not win for a URL in both: %+v", lms)
	}
	if !eps[1].Paused {
		t.Error("paused: true not carried over")
	}
	// enabled: false ignores the entry entirely, so the same URL from the environment stays.
	if env := eps[3]; env.Credentials != creds || env.Paused {
		t.Errorf("environment endpoint %+v: want the default credentials", env)
	}

	if err := os.WriteFile(path, []byte("endpoints:\n  - url: https://x.example.com/\n    api_secret: topsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = globalEndpoints(c, creds)
	if !errors.Is(err, endpoint.ErrFile) || !strings.HasPrefix(err.Error(), "ROOMHOOK_ENDPOINTS_FILE: ") || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("bad file: got %v, want a ROOMHOOK_ENDPOINTS_FILE error without the secret", err)
	}
	c.APIKey, c.APISecret = "k", "s"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ROOMHOOK_ENDPOINTS_FILE") {
		t.Errorf("validate: got %v, want the endpoints file refused at start", err)
	}
}
