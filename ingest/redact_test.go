package ingest

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
)

// TestIngestRefusalHidesBodyText: a signed body that does not parse, or whose
// event name is not a subject token, is refused without quoting the body, in
// the answer and in the log, since the offending token may be a per-room URL
// with its ?token= (or any other secret the sender put there).
func TestIngestRefusalHidesBodyText(t *testing.T) {
	const secret = "S3CRET-tok-0a1b2c3d"
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	var logged bytes.Buffer
	h, err := NewHandler(js, testRegion, testCreds, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		body       string
		wantReason string
		wantIs     error
	}{
		{name: "webhook_urls a string",
			body:       `{"event":"room_created","room":{"room_id":"r1"},"id":"EV_1","webhook_urls":"https://x.example/h?token=` + secret + `"}`,
			wantReason: "not a valid plugNmeet webhook JSON at line 1:", wantIs: schema.ErrParseBody},
		{name: "webhook_urls entry an object",
			body:       `{"event":"room_created","room":{"room_id":"r1"},"id":"EV_2","webhook_urls":[{"url":"https://x.example/h?token=` + secret + `"}]}`,
			wantReason: "not a valid plugNmeet webhook JSON at line 1:", wantIs: schema.ErrParseBody},
		{name: "created_at not a number",
			body:       `{"event":"room_started","room":{"room_id":"r1"},"id":"EV_3","created_at":"` + secret + `"}`,
			wantReason: "not a valid plugNmeet webhook JSON at line 1:", wantIs: schema.ErrParseBody},
		{name: "not JSON",
			body:       `token=` + secret,
			wantReason: "not a valid plugNmeet webhook JSON at line 1:", wantIs: schema.ErrParseBody},
		{name: "bad escape in a string",
			body:       `{"event":"room_created","room":{"room_id":"r1"},"webhook_urls":["https://x.example/h?token=` + secret + `\x"]}`,
			wantReason: "not a valid plugNmeet webhook JSON at line 1:", wantIs: schema.ErrParseBody},
		{name: "event name not a token",
			body:       `{"event":"https://x.example/h?token=` + secret + `","room":{"room_id":"r1"},"id":"EV_4"}`,
			wantReason: "invalid event name", wantIs: schema.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseEvent([]byte(tt.body)); !errors.Is(err, ErrNotEvent) || !errors.Is(err, tt.wantIs) {
				t.Errorf("parseEvent: %v, want ErrNotEvent and %v", err, tt.wantIs)
			}
			logged.Reset()
			body := []byte(tt.body)
			req := httptest.NewRequest(http.MethodPost, PathPlugNmeet, bytes.NewReader(body))
			req.Header.Set("Authorization", plugnmeetToken(t, testCreds, body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			answer := rec.Body.String()
			if rec.Code != http.StatusBadRequest || !strings.Contains(answer, "not a plugNmeet event") || !strings.Contains(answer, tt.wantReason) {
				t.Errorf("got %d %q, want 400 with %q", rec.Code, answer, tt.wantReason)
			}
			// ToLower: parseEvent lower-cases the event name before checking it.
			if strings.Contains(strings.ToLower(answer), strings.ToLower(secret)) {
				t.Errorf("the answer holds the body's token: %q", answer)
			}
			if !strings.Contains(logged.String(), "ingest: refused") {
				t.Errorf("nothing logged: %q", logged.String())
			}
			if strings.Contains(strings.ToLower(logged.String()), strings.ToLower(secret)) {
				t.Errorf("the log holds the body's token: %q", logged.String())
			}
		})
	}
}
