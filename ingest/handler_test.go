package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
)

var testCreds = signature.Credentials{APIKey: "ingest-key", APISecret: "ingest-secret-0123456789abcdef0123456789"}

const testRegion = "eu-central"

// newEventsStream creates the events stream the way the dispatcher
// provisions it (DESIGN 1.2), duplicate window included.
func newEventsStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName(testRegion), Subjects: []string{schema.EventsSubjects(testRegion)},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func quietLogger() *slog.Logger {
	if os.Getenv("ROOMHOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// ingestServer serves a Handler on loopback.
func ingestServer(t *testing.T, js jetstream.JetStream, opts ...Option) (*httptest.Server, *Handler) {
	t.Helper()
	h, err := NewHandler(js, testRegion, testCreds, append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

// plugnmeetToken signs body as plugNmeet's server does, with LiveKit's auth
// package: nbf = iat = now, exp = now + 5 minutes, sha256 = base64 of the
// body's SHA-256.
func plugnmeetToken(t *testing.T, creds signature.Credentials, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	token, err := auth.NewAccessToken(creds.APIKey, creds.APISecret).
		SetValidFor(5 * time.Minute).
		SetSha256(base64.StdEncoding.EncodeToString(sum[:])).
		ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// plugnmeetBody is what plugNmeet's server writes for evt: protojson with
// proto names, spaces after commas included when this binary's protojson adds
// them.
func plugnmeetBody(t *testing.T, evt *roomhookv1.Event) []byte {
	t.Helper()
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func post(t *testing.T, url string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+PathPlugNmeet, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(answer)
}

func goldenBodies(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "schema", "testdata", "golden", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden bodies: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = b
	}
	return out
}

// TestIngestGoldenBodies sends every golden event as plugNmeet sends it, then
// reads it back from the stream: on its subject, with its id as Nats-Msg-Id,
// and rendering to the compact bytes of what plugNmeet sent.
func TestIngestGoldenBodies(t *testing.T) {
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	stream := newEventsStream(t, js)
	srv, _ := ingestServer(t, js)

	// The ways plugNmeet (and proxies in front of roomhook) present the token
	// and the content type, taken in turn.
	headers := []func(token string) http.Header{
		func(tok string) http.Header { // plugNmeet >= 1.5
			return http.Header{"Authorization": {tok}, "Hash-Token": {tok}, "Content-Type": {"application/json"}}
		},
		func(tok string) http.Header { // plugNmeet before 1.5, LiveKit
			return http.Header{"Authorization": {tok}, "Content-Type": {"application/webhook+json"}}
		},
		func(tok string) http.Header { // a proxy stripped Authorization
			return http.Header{"Hash-Token": {tok}, "Content-Type": {"application/json; charset=utf-8"}}
		},
		func(tok string) http.Header { // a client that adds Bearer
			return http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
		},
	}
	i := 0
	for name, golden := range goldenBodies(t) {
		header := headers[i%len(headers)]
		i++
		t.Run(name, func(t *testing.T) {
			evt, err := schema.ParseBody(golden)
			if err != nil {
				t.Fatal(err)
			}
			sent := plugnmeetBody(t, evt)
			var compact bytes.Buffer
			if err := json.Compact(&compact, sent); err != nil {
				t.Fatal(err)
			}

			status, answer := post(t, srv.URL, sent, header(plugnmeetToken(t, testCreds, sent)))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, answer)
			}
			var stored Stored
			if err := json.Unmarshal([]byte(answer), &stored); err != nil {
				t.Fatalf("answer %q: %v", answer, err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			msg, err := stream.GetMsg(ctx, stored.Seq)
			if err != nil {
				t.Fatal(err)
			}
			wantSubject, err := schema.Address{Region: testRegion, Room: evt.GetRoom().GetRoomId(), Event: evt.GetEvent()}.Subject()
			if err != nil {
				t.Fatal(err)
			}
			if msg.Subject != wantSubject || stored.Subject != wantSubject {
				t.Errorf("subject %q (answered %q), want %q", msg.Subject, stored.Subject, wantSubject)
			}
			if got := msg.Header.Get(jetstream.MsgIDHeader); got != evt.GetId() || stored.ID != evt.GetId() {
				t.Errorf("Nats-Msg-Id %q (answered %q), want %q", got, stored.ID, evt.GetId())
			}
			decoded, err := schema.DecodeEvent(msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			body, err := schema.MarshalBody(decoded, schema.Fallback{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, compact.Bytes()) {
				t.Fatalf("rendered body differs from what plugNmeet sent\n got: %s\nsent: %s", body, compact.Bytes())
			}
			if !bytes.Equal(body, golden) {
				t.Fatalf("rendered body differs from the golden\n got: %s\nwant: %s", body, golden)
			}
		})
	}
}

// TestIngestDuplicate: plugNmeet's retry of an event already stored (its
// first answer was lost) is answered 200 and stored once.
func TestIngestDuplicate(t *testing.T) {
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	stream := newEventsStream(t, js)
	reg := prometheus.NewRegistry()
	srv, h := ingestServer(t, js, WithRegisterer(reg))

	tests := []struct {
		name string
		body string
	}{
		{name: "with id", body: `{"event":"participant_joined","room":{"room_id":"dup-room"},"participant":{"sid":"PA_1","identity":"u1"},"id":"EV_dup1","created_at":"1761815000"}`},
		// Without an id the id is derived from the body, so the retry still matches.
		{name: "without id", body: `{"event":"participant_left","room":{"room_id":"dup-room"},"participant":{"sid":"PA_1","identity":"u1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first Stored
			for attempt := range 3 {
				body := []byte(tt.body)
				// Each attempt is signed anew, as a retry after a lost answer may be.
				status, answer := post(t, srv.URL, body, http.Header{"Authorization": {plugnmeetToken(t, testCreds, body)}, "Content-Type": {"application/json"}})
				if status != http.StatusOK {
					t.Fatalf("attempt %d: status %d: %s", attempt, status, answer)
				}
				var stored Stored
				if err := json.Unmarshal([]byte(answer), &stored); err != nil {
					t.Fatal(err)
				}
				if attempt == 0 {
					first = stored
					if stored.Duplicate || stored.ID == "" {
						t.Fatalf("first attempt: %+v", stored)
					}
					continue
				}
				if !stored.Duplicate || stored.Seq != first.Seq || stored.ID != first.ID {
					t.Fatalf("attempt %d answered %+v, want a duplicate of %+v", attempt, stored, first)
				}
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(tests)) {
		t.Fatalf("stream holds %d events, want %d", info.State.Msgs, len(tests))
	}
	if got := testutil.ToFloat64(h.requests.WithLabelValues(outcomeDuplicate)); got != 4 {
		t.Errorf("duplicates counted %v, want 4", got)
	}
	if got := testutil.ToFloat64(h.requests.WithLabelValues(outcomeStored)); got != 2 {
		t.Errorf("stored counted %v, want 2", got)
	}
}

// TestIngestRefusals: every way a request is refused, with its status and
// reason, and nothing stored.
func TestIngestRefusals(t *testing.T) {
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	stream := newEventsStream(t, js)
	srv, _ := ingestServer(t, js, WithMaxEventBytes(4096))

	good := []byte(`{"event":"room_started","room":{"sid":"RM_1","room_id":"r1"},"id":"EV_1","created_at":"1761815000"}`)
	signed := func(body []byte) http.Header {
		return http.Header{"Authorization": {plugnmeetToken(t, testCreds, body)}, "Content-Type": {"application/json"}}
	}
	expired, err := signature.Token(testCreds, good, time.Now().Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	future, err := signature.Token(testCreds, good, time.Now().Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(`{"event":"room_started","room":{"room_id":"r1","metadata":"` + strings.Repeat("x", 5000) + `"},"id":"EV_big"}`)
	longRoom := []byte(`{"event":"room_started","room":{"room_id":"` + strings.Repeat(".", 1300) + `"},"id":"EV_long"}`)

	tests := []struct {
		name       string
		method     string
		body       []byte
		header     http.Header
		wantStatus int
		wantReason string
	}{
		{name: "no token", body: good, header: http.Header{"Content-Type": {"application/json"}}, wantStatus: 401, wantReason: "no token"},
		{name: "other secret", body: good, header: http.Header{"Authorization": {plugnmeetToken(t, signature.Credentials{APIKey: testCreds.APIKey, APISecret: "another-secret-0123456789abcdef012345"}, good)}}, wantStatus: 401, wantReason: "does not match the API secret"},
		{name: "other key", body: good, header: http.Header{"Authorization": {plugnmeetToken(t, signature.Credentials{APIKey: "other", APISecret: testCreds.APISecret}, good)}}, wantStatus: 401, wantReason: "issuer"},
		{name: "expired", body: good, header: http.Header{"Authorization": {expired}}, wantStatus: 401, wantReason: "expired"},
		{name: "not yet valid", body: good, header: http.Header{"Hash-Token": {future}}, wantStatus: 401, wantReason: "not valid yet"},
		{name: "body changed after signing", body: good, header: signed(append([]byte(" "), good...)), wantStatus: 401, wantReason: "sha256"},
		{name: "not a JWT", body: good, header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, wantStatus: 401, wantReason: "malformed"},
		{name: "not JSON", body: []byte("event=room_started"), wantStatus: 400, wantReason: "not a plugNmeet event"},
		{name: "no room id", body: []byte(`{"event":"room_started","room":{"sid":"RM_1"},"id":"EV_2"}`), wantStatus: 400, wantReason: "no room id"},
		{name: "no event name", body: []byte(`{"room":{"room_id":"r1"},"id":"EV_3"}`), wantStatus: 400, wantReason: "no event name"},
		{name: "event name not a token", body: []byte(`{"event":"room.started","room":{"room_id":"r1"},"id":"EV_4"}`), wantStatus: 400, wantReason: "invalid event name"},
		{name: "routing field on another event", body: []byte(`{"event":"participant_joined","room":{"room_id":"r1"},"id":"EV_5","webhook_urls":["https://hooks.example.com/x"]}`), wantStatus: 400, wantReason: "only room_created"},
		{name: "room id too long for a subject", body: longRoom, wantStatus: 400, wantReason: "room id takes"},
		{name: "too large", body: big, wantStatus: 413, wantReason: "too large"},
		{name: "other content type", body: good, header: http.Header{"Authorization": {plugnmeetToken(t, testCreds, good)}, "Content-Type": {"text/plain"}}, wantStatus: 415, wantReason: "content type"},
		{name: "GET", method: http.MethodGet, wantStatus: 405, wantReason: "only POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := tt.header
			if header == nil {
				header = signed(tt.body)
			}
			var status int
			var answer string
			if tt.method == http.MethodGet {
				resp, err := http.Get(srv.URL + PathPlugNmeet)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				status, answer = resp.StatusCode, string(b)
			} else {
				status, answer = post(t, srv.URL, tt.body, header)
			}
			if status != tt.wantStatus || !strings.Contains(answer, tt.wantReason) {
				t.Fatalf("got %d %q, want %d with %q", status, answer, tt.wantStatus, tt.wantReason)
			}
			if strings.Contains(answer, testCreds.APISecret) {
				t.Fatal("the answer holds the API secret")
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("refused requests stored %d events", info.State.Msgs)
	}
}

// TestIngestUnavailable: when JetStream does not store the event, the answer
// is 503 within the publish timeout, so plugNmeet retries.
func TestIngestUnavailable(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, nc *nats.Conn)
	}{
		// No stream holds the subject: the server answers "no responders" at once.
		{name: "no stream", setup: func(*testing.T, *nats.Conn) {}},
		// Something that is not JetStream listens on the subject and never
		// answers, as a stalled stream leader would not: the deadline answers.
		{name: "no answer", setup: func(t *testing.T, nc *nats.Conn) {
			sub, err := nc.SubscribeSync(schema.EventsSubjects(testRegion))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := natstest.NewServer(t)
			nc, js := natstest.Connect(t, ns.ClientURL())
			tt.setup(t, nc)
			const timeout = 300 * time.Millisecond
			srv, _ := ingestServer(t, js, WithPublishTimeout(timeout))
			body := []byte(`{"event":"room_started","room":{"room_id":"r1"},"id":"EV_1","created_at":"1761815000"}`)
			start := time.Now()
			status, answer := post(t, srv.URL, body, http.Header{"Authorization": {plugnmeetToken(t, testCreds, body)}})
			if status != http.StatusServiceUnavailable {
				t.Fatalf("status %d %q, want 503", status, answer)
			}
			if took := time.Since(start); took > timeout+5*time.Second {
				t.Fatalf("took %s with a publish timeout of %s", took, timeout)
			}
		})
	}
}

func TestNewHandlerRefusesIncompleteSetup(t *testing.T) {
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	tests := []struct {
		name   string
		js     jetstream.JetStream
		region string
		creds  signature.Credentials
	}{
		{name: "no JetStream", region: testRegion, creds: testCreds},
		{name: "bad region", js: js, region: "EU", creds: testCreds},
		{name: "no secret", js: js, region: testRegion, creds: signature.Credentials{APIKey: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewHandler(tt.js, tt.region, tt.creds); err == nil {
				t.Fatal("NewHandler accepted it")
			}
		})
	}
}
