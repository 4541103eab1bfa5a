package receiver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/traffic"
)

var creds = signature.Credentials{APIKey: "rk-test", APISecret: "receiver-test-secret-0123456789abcdef"}

const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// trafficBodies renders the first n events of a small meeting as webhook bodies.
func trafficBodies(t testing.TB, run string, n int) [][]byte {
	t.Helper()
	g, err := traffic.NewGenerator(traffic.Config{Run: run, Seed: 9, Rooms: 1, Participants: 3})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(out) < n {
		evt, ok := g.Next()
		if !ok {
			t.Fatalf("meeting has fewer than %d events", n)
		}
		body, err := schema.MarshalBody(evt, schema.Fallback{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}

func idOf(body []byte) string {
	i := bytes.Index(body, []byte(`"id":"`))
	rest := body[i+6:]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func startReceiver(t testing.TB, opts Options) (*Receiver, *httptest.Server) {
	t.Helper()
	if opts.Credentials == (signature.Credentials{}) {
		opts.Credentials = creds
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

// request is a webhook request as roomhook's sender builds it.
type request struct {
	path     string
	body     []byte
	signedAs []byte // body the signature is made for; nil: body
	creds    signature.Credentials
	secrets  []string
	at       time.Time
	edit     func(http.Header)
}

func post(t testing.TB, srv *httptest.Server, rq request) int {
	t.Helper()
	if rq.path == "" {
		rq.path = "/webhook"
	}
	if rq.creds == (signature.Credentials{}) {
		rq.creds = creds
	}
	if rq.at.IsZero() {
		rq.at = time.Now()
	}
	signed := rq.signedAs
	if signed == nil {
		signed = rq.body
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+rq.path, bytes.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	s := signature.Signer{Credentials: rq.creds, StandardSecrets: rq.secrets}
	if err := s.Sign(req.Header, signed, idOf(signed), rq.at); err != nil {
		t.Fatal(err)
	}
	if rq.edit != nil {
		rq.edit(req.Header)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestAcceptsSignedWebhooks(t *testing.T) {
	body := trafficBodies(t, "acc", 1)[0]
	for _, tc := range []struct {
		name    string
		secrets []string // receiver's and sender's
		edit    func(http.Header)
	}{
		{"Authorization and Hash-Token", nil, nil},
		{"Hash-Token only (a proxy dropped Authorization)", nil, func(h http.Header) { h.Del("Authorization") }},
		{"Authorization only, with Bearer", nil, func(h http.Header) {
			h.Set("Authorization", "Bearer "+h.Get("Authorization"))
			h.Del("Hash-Token")
		}},
		{"Standard Webhooks too", []string{whsec}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := startReceiver(t, Options{StandardSecrets: tc.secrets})
			if got := post(t, srv, request{body: body, secrets: tc.secrets, edit: tc.edit}); got != http.StatusOK {
				t.Fatalf("status %d, stats %v", got, r.Stats())
			}
			s := r.Stats()
			if s.Received != 1 || s.Verified != 1 || s.Accepted != 1 || s.Rejected != 0 || s.Paths["/webhook"] != 1 {
				t.Errorf("stats %v", s)
			}
		})
	}
}

func TestRejectsWhatFailsVerification(t *testing.T) {
	bodies := trafficBodies(t, "rej", 2)
	tampered := bytes.Replace(bodies[0], []byte(`"room_created"`), []byte(`"room_finished"`), 1)
	for _, tc := range []struct {
		name     string
		receiver []string // Standard Webhooks secrets of the receiver
		rq       request
		status   int
		reason   string
	}{
		{"body altered after signing", nil, request{body: tampered, signedAs: bodies[0]}, 401, ReasonBodyHashMismatch},
		{"signed with another secret", nil, request{body: bodies[0], creds: signature.Credentials{APIKey: creds.APIKey, APISecret: "another-secret-another-secret-0000"}}, 401, ReasonBadSignature},
		{"another API key", nil, request{body: bodies[0], creds: signature.Credentials{APIKey: "other", APISecret: creds.APISecret}}, 401, ReasonWrongIssuer},
		{"no token", nil, request{body: bodies[0], edit: func(h http.Header) { h.Del("Authorization"); h.Del("Hash-Token") }}, 401, ReasonMissingToken},
		{"garbage token", nil, request{body: bodies[0], edit: func(h http.Header) { h.Set("Authorization", "x.y.z"); h.Del("Hash-Token") }}, 401, ReasonMalformedToken},
		{"expired token", nil, request{body: bodies[0], at: time.Now().Add(-time.Hour)}, 401, ReasonExpired},
		{"token from the future", nil, request{body: bodies[0], at: time.Now().Add(time.Hour)}, 401, ReasonNotYetValid},
		{"no Standard Webhooks headers", []string{whsec}, request{body: bodies[0]}, 401, ReasonStandardHeaders},
		{"Standard Webhooks with another secret", []string{whsec}, request{body: bodies[0], secrets: []string{"whsec_" + "b3RoZXItc2VjcmV0LWtleQ=="}}, 401, ReasonStandardSignature},
		{"signed, but not a webhook", nil, request{body: []byte(`{"hello":"world"}`)}, 400, ReasonNotWebhook},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			var events int
			r, srv := startReceiver(t, Options{StandardSecrets: tc.receiver, Log: &log, OnEvent: func(Delivery) { events++ }})
			if got := post(t, srv, tc.rq); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			s := r.Stats()
			if s.Received != 1 || s.Rejected != 1 || s.Verified != 0 || s.Accepted != 0 || s.Reasons[tc.reason] != 1 || events != 0 {
				t.Errorf("stats %v; want one rejection for %q", s, tc.reason)
			}
			if !strings.Contains(log.String(), "REJECTED /webhook: "+tc.reason) {
				t.Errorf("log %q does not name the reason", log.String())
			}
			if strings.Contains(log.String(), creds.APISecret) {
				t.Error("the log shows the API secret")
			}
		})
	}
}

func TestCountsDuplicatesAndOutOfOrderPerPath(t *testing.T) {
	b := trafficBodies(t, "ord", 6)
	r, srv := startReceiver(t, Options{})
	// Path /a gets 1 2 3, 2 again, then 5 before 4; path /b gets 1 and 3: gaps are fine, and the
	// same ids on another path (another endpoint) are not duplicates.
	for _, step := range []struct {
		path string
		i    int
	}{{"/a", 0}, {"/a", 1}, {"/a", 2}, {"/a", 1}, {"/a", 4}, {"/a", 3}, {"/b", 0}, {"/b", 2}} {
		if got := post(t, srv, request{path: step.path, body: b[step.i]}); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
	}
	s := r.Stats()
	if s.Accepted != 8 || s.Duplicates != 1 || s.OutOfOrder != 1 || s.Paths["/a"] != 6 || s.Paths["/b"] != 2 {
		t.Errorf("stats %v %v; want 8 accepted, 1 duplicate, 1 out of order", s, s.Paths)
	}
	// Ids that are not rh-<run>-<room>-<seq> are still checked for duplicates.
	foreign := []byte(`{"event":"room_started","room":{"sid":"RM_x","room_id":"x"},"id":"EV_abc","created_at":"1"}`)
	post(t, srv, request{body: foreign})
	post(t, srv, request{body: foreign})
	if s := r.Stats(); s.Duplicates != 2 || s.OutOfOrder != 1 {
		t.Errorf("after a foreign id twice: %v", s)
	}
}

func TestFailureInjection(t *testing.T) {
	body := trafficBodies(t, "fail", 1)[0]
	t.Run("every request", func(t *testing.T) {
		var events int
		r, srv := startReceiver(t, Options{FailRate: 1, FailStatus: http.StatusGone, OnEvent: func(Delivery) { events++ }})
		for i := 0; i < 3; i++ {
			if got := post(t, srv, request{body: body}); got != http.StatusGone {
				t.Fatalf("status %d, want 410", got)
			}
		}
		if s := r.Stats(); s.Verified != 3 || s.Failed != 3 || s.Accepted != 0 || s.Duplicates != 0 || events != 0 {
			t.Errorf("stats %v", s)
		}
	})
	t.Run("a fraction", func(t *testing.T) {
		r, srv := startReceiver(t, Options{FailRate: 0.3})
		const n = 600
		failed := 0
		for i := 0; i < n; i++ {
			switch got := post(t, srv, request{body: body}); got {
			case http.StatusServiceUnavailable:
				failed++
			case http.StatusOK:
			default:
				t.Fatalf("status %d", got)
			}
		}
		// Binomial(600, 0.3): mean 180, standard deviation about 11.
		if failed < 130 || failed > 230 || r.Stats().Failed != uint64(failed) {
			t.Errorf("%d of %d failed at rate 0.3; stats %v", failed, n, r.Stats())
		}
	})
	t.Run("latency", func(t *testing.T) {
		_, srv := startReceiver(t, Options{Latency: 80 * time.Millisecond})
		start := time.Now()
		post(t, srv, request{body: body})
		if took := time.Since(start); took < 80*time.Millisecond {
			t.Errorf("answered after %s with 80ms latency", took)
		}
	})
}

func TestOnEventAndLog(t *testing.T) {
	b := trafficBodies(t, "log", 2)
	var mu sync.Mutex
	var got []Delivery
	var log bytes.Buffer
	_, srv := startReceiver(t, Options{Log: &log, OnEvent: func(d Delivery) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	}})
	before := time.Now()
	post(t, srv, request{path: "/hooks/x", body: b[0]})
	post(t, srv, request{path: "/hooks/x", body: b[1]})
	if len(got) != 2 || got[0].ID != idOf(b[0]) || got[0].Path != "/hooks/x" || got[0].Room == "" || got[0].Event != "room_created" ||
		got[0].At.Before(before) || !bytes.Equal(got[0].Body, b[0]) {
		t.Fatalf("OnEvent got %+v", got)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	want := fmt.Sprintf("%s %s %s /hooks/x", got[1].Room, got[1].Event, got[1].ID)
	if len(lines) != 2 || !strings.HasSuffix(lines[1], want) || len(lines[1]) != len("15:04:05.000 ")+len(want) {
		t.Errorf("log lines %q; want time room event id path", lines)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Credentials: creds, FailRate: 1.5},
		{Credentials: creds, FailRate: -0.1},
		{Credentials: creds, FailStatus: 42},
		{Credentials: creds, StandardSecrets: []string{"not-a-secret"}},
		{Credentials: creds, Latency: -time.Second},
	} {
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("New(%+v) = %v, want ErrOptions", o, err)
		}
	}
}

func TestOnlyPOST(t *testing.T) {
	r, srv := startReceiver(t, Options{})
	resp, err := srv.Client().Get(srv.URL + "/webhook")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || r.Stats().Received != 0 {
		t.Errorf("GET: %d, stats %v", resp.StatusCode, r.Stats())
	}
}
