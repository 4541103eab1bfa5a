package sender_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/egress"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
)

const (
	testAPIKey    = "APIroomhooktest"
	testAPISecret = "s3cr3t-api-secret-that-must-never-leak"
)

var testBody = []byte(`{"event":"room_started","room":{"sid":"RM_1","room_id":"lms-42"},"id":"9f1c","created_at":"1767225600"}`)

// newServer starts a loopback receiver that is closed when the test ends.
func newServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// waitFor blocks a handler until the client goes away or release is closed. Tests close
// release in a cleanup registered after newServer's, so it runs before the server's Close,
// which waits for handlers.
func waitFor(r *http.Request, release <-chan struct{}) {
	select {
	case <-release:
	case <-r.Context().Done():
	}
}

func endpointFor(url string) endpoint.Endpoint {
	return endpoint.Endpoint{
		ID:          endpoint.ID(url),
		URL:         url,
		Credentials: signature.Credentials{APIKey: testAPIKey, APISecret: testAPISecret},
	}
}

func delivery() sender.Delivery {
	return sender.Delivery{Body: testBody, EventID: "9f1c"}
}

func statusHandler(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		io.WriteString(w, http.StatusText(status))
	}
}

func TestSenderVerdictByStatus(t *testing.T) {
	tests := []struct {
		status int
		want   sender.Verdict
	}{
		{200, sender.Delivered},
		{201, sender.Delivered},
		{202, sender.Delivered},
		{204, sender.Delivered},
		{299, sender.Delivered},
		{304, sender.Reject},
		{400, sender.Reject},
		{401, sender.Reject},
		{403, sender.Reject},
		{404, sender.Reject},
		{405, sender.Reject},
		{408, sender.Retry},
		{409, sender.Reject},
		{410, sender.Gone},
		{413, sender.Reject},
		{422, sender.Reject},
		{425, sender.Retry},
		{429, sender.Retry},
		{499, sender.Reject},
		{500, sender.Retry},
		{501, sender.Retry},
		{502, sender.Retry},
		{503, sender.Retry},
		{504, sender.Retry},
		{599, sender.Retry},
	}
	s := sender.New()
	defer s.CloseIdleConnections()
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv := newServer(t, statusHandler(tt.status))
			a := s.Send(context.Background(), endpointFor(srv.URL+"/hook"), delivery())
			if a.Verdict != tt.want || a.Status != tt.status || a.Err != nil {
				t.Fatalf("status %d: got %v (status %d, err %v), want %v", tt.status, a.Verdict, a.Status, a.Err, tt.want)
			}
			if want := fmt.Sprintf("status %d", tt.status); !strings.HasPrefix(a.Reason(), want) {
				t.Errorf("Reason() = %q, want it to start with %q", a.Reason(), want)
			}
			if a.Duration <= 0 {
				t.Errorf("Duration = %v, want > 0", a.Duration)
			}
		})
	}
}

func TestSenderVerdictString(t *testing.T) {
	for v, want := range map[sender.Verdict]string{
		sender.Delivered: "delivered", sender.Retry: "retry", sender.Reject: "reject", sender.Gone: "gone",
		sender.Forbidden: "forbidden",
	} {
		if v.String() != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", int(v), v.String(), want)
		}
	}
}

func TestSenderRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var targetHits atomic.Int32
			target := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				targetHits.Add(1)
				w.WriteHeader(http.StatusOK)
			})
			origin := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/moved", status)
			})
			a := sender.New().Send(context.Background(), endpointFor(origin.URL), delivery())
			if a.Verdict != sender.Reject || a.Status != status {
				t.Errorf("got %v status %d, want reject status %d", a.Verdict, a.Status, status)
			}
			if !strings.Contains(a.Reason(), "redirect not followed") {
				t.Errorf("Reason() = %q, want it to say the redirect was not followed", a.Reason())
			}
			if n := targetHits.Load(); n != 0 {
				t.Errorf("redirect target was requested %d times", n)
			}
		})
	}
}

func TestSenderTimeout(t *testing.T) {
	for _, stage := range []string{"before headers", "during body"} {
		t.Run(stage, func(t *testing.T) {
			release := make(chan struct{})
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if stage == "during body" {
					w.WriteHeader(http.StatusServiceUnavailable)
					w.(http.Flusher).Flush()
				}
				waitFor(r, release)
			})
			t.Cleanup(func() { close(release) })
			const timeout = 300 * time.Millisecond
			start := time.Now()
			a := sender.New(sender.WithTimeout(timeout)).Send(context.Background(), endpointFor(srv.URL), delivery())
			elapsed := time.Since(start)
			if elapsed < timeout || elapsed > timeout+2*time.Second {
				t.Errorf("Send took %v with a %v timeout", elapsed, timeout)
			}
			if a.Verdict != sender.Retry {
				t.Fatalf("verdict %v (status %d, err %v), want retry", a.Verdict, a.Status, a.Err)
			}
			if stage == "before headers" {
				if !errors.Is(a.Err, sender.ErrTimeout) || !errors.Is(a.Err, context.DeadlineExceeded) {
					t.Errorf("Err = %v, want ErrTimeout and context.DeadlineExceeded", a.Err)
				}
				if a.Reason() != "timeout" {
					t.Errorf("Reason() = %q, want timeout", a.Reason())
				}
			}
		})
	}
}

func TestSenderConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := sender.New().Send(context.Background(), endpointFor("http://"+addr+"/hook"), delivery())
	if a.Verdict != sender.Retry || a.Status != 0 || a.Err == nil {
		t.Fatalf("got %v status %d err %v, want retry with an error", a.Verdict, a.Status, a.Err)
	}
	if a.Reason() != "connection refused" {
		t.Errorf("Reason() = %q, want connection refused", a.Reason())
	}
}

func TestSenderConnectionReset(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.(*net.TCPConn).SetLinger(0) // close with RST instead of FIN
		conn.Close()
	})
	a := sender.New().Send(context.Background(), endpointFor(srv.URL), delivery())
	if a.Verdict != sender.Retry || a.Err == nil {
		t.Fatalf("got %v status %d err %v, want retry with an error", a.Verdict, a.Status, a.Err)
	}
	if a.Reason() != "connection reset" {
		t.Errorf("Reason() = %q (err %v), want connection reset", a.Reason(), a.Err)
	}
}

func TestSenderTLSFailure(t *testing.T) {
	selfSigned := httptest.NewUnstartedServer(statusHandler(200))
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	selfSigned.StartTLS()
	t.Cleanup(selfSigned.Close)
	plain := newServer(t, statusHandler(200))
	tests := []struct {
		name, url, reason string
	}{
		{"untrusted certificate", selfSigned.URL, "tls: certificate signed by unknown authority"},
		{"https to a plain HTTP server", strings.Replace(plain.URL, "http://", "https://", 1), "tls: server did not answer TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sender.New().Send(context.Background(), endpointFor(tt.url), delivery())
			if a.Verdict != sender.Retry || a.Reason() != tt.reason {
				t.Errorf("got %v reason %q (err %v), want retry with reason %q", a.Verdict, a.Reason(), a.Err, tt.reason)
			}
		})
	}
}

func TestSenderShutdown(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		waitFor(r, release)
	})
	t.Cleanup(func() { close(release) })
	s := sender.New(sender.WithTimeout(time.Minute))

	t.Run("in flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		a := s.Send(ctx, endpointFor(srv.URL), delivery())
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Send took %v after cancel", elapsed)
		}
		if a.Verdict != sender.Retry || !errors.Is(a.Err, context.Canceled) {
			t.Errorf("got %v err %v, want retry wrapping context.Canceled", a.Verdict, a.Err)
		}
		if a.Reason() != "canceled" {
			t.Errorf("Reason() = %q, want canceled", a.Reason())
		}
	})
	t.Run("before start", func(t *testing.T) {
		before := hits.Load()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a := s.Send(ctx, endpointFor(srv.URL), delivery())
		if a.Verdict != sender.Retry || !errors.Is(a.Err, context.Canceled) {
			t.Errorf("got %v err %v, want retry wrapping context.Canceled", a.Verdict, a.Err)
		}
		if hits.Load() != before {
			t.Error("a request was sent with a canceled context")
		}
	})
}

// countingTransport counts the response body bytes its caller reads.
type countingTransport struct {
	base http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestSenderResponseBodyLimit(t *testing.T) {
	for _, status := range []int{200, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			// 10 MiB announced and streamed; after the first MiB the handler stalls, so a
			// Sender that read past its limit would hang until its timeout.
			release := make(chan struct{})
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(10<<20))
				w.WriteHeader(status)
				chunk := make([]byte, 32<<10)
				for written := 0; written < 1<<20; written += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
				w.(http.Flusher).Flush()
				waitFor(r, release)
			})
			t.Cleanup(func() { close(release) })
			counter := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
			s := sender.New(sender.WithTransport(counter), sender.WithTimeout(10*time.Second))
			start := time.Now()
			a := s.Send(context.Background(), endpointFor(srv.URL), delivery())
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Send took %v: it read past the limit", elapsed)
			}
			if a.Status != status || a.Err != nil {
				t.Errorf("status %d err %v, want status %d", a.Status, a.Err, status)
			}
			if n := counter.read.Load(); n > sender.MaxResponseBodyBytes || n == 0 {
				t.Errorf("read %d response bytes, want 1..%d", n, sender.MaxResponseBodyBytes)
			}
		})
	}
}

func TestSenderKeepAlive(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		bodySize int
	}{
		{"empty 204", 204, 0},
		{"small 200", 200, 100},
		{"60 KiB body is drained", 200, 60 << 10},
		{"body of exactly the limit", 200, sender.MaxResponseBodyBytes},
		{"503 with body", 503, 2 << 10},
		{"404", 404, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Repeat("x", tt.bodySize)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				io.WriteString(w, body)
			}))
			var conns atomic.Int32
			srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
				if state == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			s := sender.New()
			defer s.CloseIdleConnections()
			ep := endpointFor(srv.URL + "/hook")
			for i := range 100 {
				if a := s.Send(context.Background(), ep, delivery()); a.Status != tt.status {
					t.Fatalf("send %d: status %d err %v", i, a.Status, a.Err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("100 sends opened %d connections, want 1", n)
			}
		})
	}
}

// A receiver that closes an idle keep-alive connection just as a request goes out (Node's
// default keep-alive timeout is 5s) must not cost a failed attempt.
func TestSenderReplaysOnClosedKeepAlive(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 2 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := sender.New()
	ep := endpointFor(srv.URL)
	for i := range 2 {
		if a := s.Send(context.Background(), ep, delivery()); a.Verdict != sender.Delivered {
			t.Fatalf("send %d: %v status %d err %v", i, a.Verdict, a.Status, a.Err)
		}
	}
	if requests.Load() != 3 || conns.Load() != 2 {
		t.Errorf("receiver saw %d requests on %d connections, want 3 on 2", requests.Load(), conns.Load())
	}
}

func TestSenderRetryAfter(t *testing.T) {
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"seconds on 429", 429, "120", 2 * time.Minute},
		{"seconds on 503", 503, "7", 7 * time.Second},
		{"date on 503", 503, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date on 429", 429, now.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{"date in the past", 503, now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"zero", 429, "0", 0},
		{"negative", 429, "-5", 0},
		{"garbage", 503, "soon", 0},
		{"absent", 503, "", 0},
		{"huge is not negative", 429, "99999999999999999999999", 100 * 365 * 24 * time.Hour},
		{"ignored on 200", 200, "60", 0},
		{"ignored on 404", 404, "60", 0},
	}
	s := sender.New(sender.WithClock(func() time.Time { return now }))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(tt.status)
			})
			a := s.Send(context.Background(), endpointFor(srv.URL), delivery())
			if a.Status != tt.status || a.RetryAfter != tt.want {
				t.Errorf("Retry-After %q on %d: got status %d RetryAfter %v, want %v", tt.header, tt.status, a.Status, a.RetryAfter, tt.want)
			}
		})
	}
}

// received is what a receiver saw of one request.
type received struct {
	method, path string
	header       http.Header
	body         []byte
	livekitErr   error
}

func recordingServer(t *testing.T) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		rec := received{method: r.Method, path: r.URL.Path, header: r.Header.Clone()}
		// LiveKit's own receiver reads the body and checks the JWT and its sha256 claim.
		rec.body, rec.livekitErr = webhook.Receive(r, auth.NewSimpleKeyProvider(testAPIKey, testAPISecret))
		got <- rec
		w.WriteHeader(http.StatusOK)
	})
	return srv, got
}

func TestSenderRequest(t *testing.T) {
	tests := []struct {
		name            string
		opts            []sender.Option
		wantContentType string
		wantUserAgent   string
	}{
		{"defaults", nil, "application/webhook+json", "roomhook/"},
		{"configured", []sender.Option{
			sender.WithContentType("application/json"), sender.WithUserAgent("roomhook/1.2.3"),
		}, "application/json", "roomhook/1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recordingServer(t)
			a := sender.New(tt.opts...).Send(context.Background(), endpointFor(srv.URL+"/hooks/lms"), delivery())
			if a.Verdict != sender.Delivered {
				t.Fatalf("verdict %v status %d err %v", a.Verdict, a.Status, a.Err)
			}
			rec := <-got
			if rec.livekitErr != nil {
				t.Errorf("LiveKit's webhook.Receive refused the request: %v", rec.livekitErr)
			}
			if rec.method != http.MethodPost || rec.path != "/hooks/lms" {
				t.Errorf("request %s %s, want POST /hooks/lms", rec.method, rec.path)
			}
			if string(rec.body) != string(testBody) {
				t.Errorf("body %q, want %q", rec.body, testBody)
			}
			h := rec.header
			authz := h.Get("Authorization")
			if authz == "" || strings.HasPrefix(authz, "Bearer ") || h.Get("Hash-Token") != authz {
				t.Errorf("Authorization %q, Hash-Token %q: want the same bare JWT in both", authz, h.Get("Hash-Token"))
			}
			if ct := h.Get("Content-Type"); ct != tt.wantContentType {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantContentType)
			}
			if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, tt.wantUserAgent) || len(ua) <= len("roomhook/") {
				t.Errorf("User-Agent %q, want roomhook/<version>", ua)
			}
			if h.Get("Content-Length") != fmt.Sprint(len(testBody)) {
				t.Errorf("Content-Length %q, want %d", h.Get("Content-Length"), len(testBody))
			}
			for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "Idempotency-Key"} {
				if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
					t.Errorf("without a whsec_ secret the request has %s: %q", name, v)
				}
			}
			if err := (signature.Verifier{Credentials: signature.Credentials{APIKey: testAPIKey, APISecret: testAPISecret}}).
				Verify(h, rec.body, time.Now()); err != nil {
				t.Errorf("signature.Verifier refused the request: %v", err)
			}
		})
	}
}

func TestSenderStandardWebhooks(t *testing.T) {
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("old-standard-webhooks-key-32byte"))
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("new-standard-webhooks-key-32byte"))
	tests := []struct {
		name    string
		secrets []string
	}{
		{"one secret", []string{newSecret}},
		{"rotation signs with both", []string{newSecret, oldSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recordingServer(t)
			ep := endpointFor(srv.URL)
			ep.StandardSecrets = tt.secrets
			d := delivery()
			before := time.Now().Unix()
			if a := sender.New().Send(context.Background(), ep, d); a.Verdict != sender.Delivered {
				t.Fatalf("verdict %v status %d err %v", a.Verdict, a.Status, a.Err)
			}
			rec := <-got
			if rec.livekitErr != nil {
				t.Errorf("LiveKit's webhook.Receive refused the request: %v", rec.livekitErr)
			}
			h := rec.header
			if h.Get("webhook-id") != d.EventID {
				t.Errorf("webhook-id %q, want the event id %q", h.Get("webhook-id"), d.EventID)
			}
			ts := h.Get("webhook-timestamp")
			var unix int64
			if _, err := fmt.Sscan(ts, &unix); err != nil || unix < before-1 || unix > time.Now().Unix()+1 {
				t.Errorf("webhook-timestamp %q, want the current unix time", ts)
			}
			// Checked by hand from the Standard Webhooks spec, independent of the signer.
			sigs := strings.Fields(h.Get("webhook-signature"))
			for _, secret := range tt.secrets {
				key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
				mac := hmac.New(sha256.New, key)
				fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), ts, rec.body)
				want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
				found := false
				for _, s := range sigs {
					found = found || s == want
				}
				if !found {
					t.Errorf("webhook-signature %q has no valid signature for a configured secret", sigs)
				}
			}
			if len(sigs) != len(tt.secrets) {
				t.Errorf("webhook-signature has %d signatures, want %d", len(sigs), len(tt.secrets))
			}
		})
	}
}

func TestSenderUnsendable(t *testing.T) {
	srv := newServer(t, statusHandler(200))
	noCredentials := endpointFor(srv.URL)
	noCredentials.Credentials = signature.Credentials{}
	tests := []struct {
		name    string
		ep      endpoint.Endpoint
		wantErr error
		reason  string
	}{
		{"no credentials", noCredentials, sender.ErrSigning, "signing failed"},
		{"not a URL", endpointFor("http://bad host/"), endpoint.ErrInvalidURL, "invalid URL"},
		{"other scheme", endpointFor("ftp://files.example/hook"), endpoint.ErrInvalidURL, "invalid URL"},
		{"no host", endpointFor("http:///hook"), endpoint.ErrInvalidURL, "invalid URL"},
	}
	s := sender.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.Send(context.Background(), tt.ep, delivery())
			if a.Verdict != sender.Reject || !errors.Is(a.Err, tt.wantErr) || a.Reason() != tt.reason {
				t.Errorf("got %v err %v reason %q, want reject wrapping %v, reason %q", a.Verdict, a.Err, a.Reason(), tt.wantErr, tt.reason)
			}
		})
	}
}

// Reasons and errors end up in dead letters and logs; neither may carry the API secret or
// a token from the URL.
func TestSenderReasonHoldsNoSecret(t *testing.T) {
	const urlToken = "url-token-that-must-never-leak"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	release := make(chan struct{})
	hanging := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		waitFor(r, release)
	})
	t.Cleanup(func() { close(release) })
	reset := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})
	noCredentials := endpointFor("http://" + closedAddr + "/?token=" + urlToken)
	noCredentials.Credentials.APIKey = ""
	for _, ep := range []endpoint.Endpoint{
		endpointFor("http://" + closedAddr + "/hook?token=" + urlToken),
		endpointFor(hanging.URL + "/hook?token=" + urlToken),
		endpointFor(reset.URL + "/hook?token=" + urlToken),
		endpointFor("http://bad host/?token=" + urlToken),
		noCredentials,
	} {
		a := sender.New(sender.WithTimeout(200*time.Millisecond)).Send(context.Background(), ep, delivery())
		if a.Err == nil {
			t.Fatalf("%s: expected an error", ep.ID)
		}
		for _, text := range []string{a.Reason(), a.Err.Error()} {
			if strings.Contains(text, urlToken) || strings.Contains(text, testAPISecret) {
				t.Errorf("%s: %q leaks a secret", a.Reason(), text)
			}
		}
	}
}

func TestSenderConcurrent(t *testing.T) {
	var requests atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := webhook.Receive(r, auth.NewSimpleKeyProvider(testAPIKey, testAPISecret)); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	s := sender.New()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				ep := endpointFor(fmt.Sprintf("%s/room/%d", srv.URL, g))
				d := sender.Delivery{Body: fmt.Appendf(nil, `{"event":"room_started","id":"%d-%d"}`, g, i), EventID: fmt.Sprint(g, "-", i)}
				if a := s.Send(context.Background(), ep, d); a.Verdict != sender.Delivered {
					t.Errorf("goroutine %d send %d: %v status %d err %v", g, i, a.Verdict, a.Status, a.Err)
				}
			}
		})
	}
	wg.Wait()
	if n := requests.Load(); n != 16*20 {
		t.Errorf("receiver verified %d requests, want %d", n, 16*20)
	}
}

func BenchmarkSend(b *testing.B) {
	srv := newServer(b, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	withStandard := endpointFor(srv.URL)
	withStandard.StandardSecrets = []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-32-bytes!!"))}
	for _, bc := range []struct {
		name string
		ep   endpoint.Endpoint
	}{
		{"jwt", endpointFor(srv.URL)},
		{"jwt+standard", withStandard},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := sender.New()
			defer s.CloseIdleConnections()
			d := delivery()
			b.ReportAllocs()
			b.SetBytes(int64(len(d.Body)))
			for b.Loop() {
				if a := s.Send(context.Background(), bc.ep, d); a.Verdict != sender.Delivered {
					b.Fatalf("%v status %d err %v", a.Verdict, a.Status, a.Err)
				}
			}
		})
	}
}

func ExampleSender_Send() {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := webhook.Receive(r, auth.NewSimpleKeyProvider("APIkey", "secret")); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	s := sender.New(sender.WithTimeout(5 * time.Second))
	ep := endpoint.Endpoint{
		ID:          endpoint.ID(receiver.URL),
		URL:         receiver.URL,
		Credentials: signature.Credentials{APIKey: "APIkey", APISecret: "secret"},
	}
	a := s.Send(context.Background(), ep, sender.Delivery{
		Body:    []byte(`{"event":"room_started","room":{"room_id":"demo"},"id":"e1","created_at":"1767225600"}`),
		EventID: "e1",
	})
	fmt.Println(a.Verdict, a.Reason())
	// Output: delivered status 204
}

// acceptCounter counts the connections a receiver accepts, whether or not a request follows.
type acceptCounter struct {
	net.Listener
	accepted atomic.Int32
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func newGuard(t *testing.T, cfg egress.Config) *egress.Guard {
	t.Helper()
	g, err := egress.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The guard is proven on loopback for real: the receiver on 127.0.0.1 accepts no connection
// for a refused delivery. A delivery the guard lets through afterwards is the barrier: once it
// has arrived, a connection of the refused one would have been counted too.
func TestSenderGuardRefusesLoopbackForReal(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	counter := &acceptCounter{Listener: srv.Listener}
	srv.Listener = counter
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	const token = "room-token-1234567890"

	perRoom := func(url string) endpoint.Endpoint { return endpointFor(url) }
	global := func(url string) endpoint.Endpoint {
		ep := endpointFor(url)
		ep.Global = true
		return ep
	}
	tests := []struct {
		name      string
		cfg       egress.Config
		ep        endpoint.Endpoint
		forbidden bool
	}{
		{"per-room 127.0.0.1", egress.Config{}, perRoom(srv.URL + "/metrics?token=" + token), true},
		{"per-room localhost", egress.Config{}, perRoom("http://localhost:" + port + "/?token=" + token), true},
		{"per-room mapped v6", egress.Config{}, perRoom("http://[::ffff:127.0.0.1]:" + port + "/"), true},
		{"per-room 0.0.0.0", egress.Config{}, perRoom("http://0.0.0.0:" + port + "/"), true},
		{"per-room 127.1.2.3", egress.Config{}, perRoom("http://127.1.2.3:" + port + "/"), true},
		{"global is not guarded by default", egress.Config{}, global(srv.URL), false},
		{"global with guard global", egress.Config{GuardGlobal: true}, global(srv.URL + "/?token=" + token), true},
		{"allowed cidr", egress.Config{AllowedTargets: []string{"127.0.0.1/32"}}, perRoom(srv.URL), false},
		{"allowed host name", egress.Config{AllowedTargets: []string{"localhost"}}, perRoom("http://localhost:" + port + "/"), false},
		{"guard off", egress.Config{AllowPrivate: true, GuardGlobal: true}, perRoom(srv.URL), false},
	}
	unguarded := sender.New()
	defer unguarded.CloseIdleConnections()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sender.New(sender.WithGuard(newGuard(t, tt.cfg)))
			defer s.CloseIdleConnections()
			beforeConns, beforeRequests := counter.accepted.Load(), requests.Load()
			a := s.Send(context.Background(), tt.ep, delivery())
			if !tt.forbidden {
				if a.Verdict != sender.Delivered {
					t.Fatalf("verdict %v (%s), want delivered", a.Verdict, a.Reason())
				}
				return
			}
			var fe *egress.ForbiddenError
			if a.Verdict != sender.Forbidden || !errors.Is(a.Err, egress.ErrForbidden) || !errors.As(a.Err, &fe) {
				t.Fatalf("verdict %v err %v, want forbidden", a.Verdict, a.Err)
			}
			if fe.Kind != egress.KindLoopback && fe.Kind != egress.KindUnspecified {
				t.Errorf("kind %q", fe.Kind)
			}
			if !strings.HasPrefix(a.Reason(), "forbidden: refused ") || !strings.Contains(a.Reason(), ":"+port) {
				t.Errorf("Reason() = %q, want the refused address", a.Reason())
			}
			if strings.Contains(a.Reason(), token) || strings.Contains(a.Err.Error(), token) {
				t.Errorf("reason %q / error %q leaks the URL's token", a.Reason(), a.Err)
			}
			// Barrier: a fresh connection the guard allows.
			barrier := sender.New()
			if b := barrier.Send(context.Background(), global(srv.URL), delivery()); b.Verdict != sender.Delivered {
				t.Fatalf("barrier: %v %s", b.Verdict, b.Reason())
			}
			barrier.CloseIdleConnections()
			if n := counter.accepted.Load() - beforeConns; n != 1 {
				t.Errorf("receiver accepted %d connections, want only the barrier's", n)
			}
			if n := requests.Load() - beforeRequests; n != 1 {
				t.Errorf("receiver got %d requests, want only the barrier's", n)
			}
		})
	}
}

// connectRecorder is a dialer whose Control, which runs after the guard's check and just
// before connect, records the address and fails the dial, so no test connection leaves the
// machine whatever the guard does.
type connectRecorder struct {
	mu        sync.Mutex
	addresses []string
}

var errNotConnected = errors.New("test: connection not made")

func (c *connectRecorder) dialer() *net.Dialer {
	return &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.addresses = append(c.addresses, address)
		return errNotConnected
	}}
}

func (c *connectRecorder) attempted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.addresses...)
}

func TestSenderGuardRefusesNonGlobalWithoutConnecting(t *testing.T) {
	tests := []struct {
		url       string
		forbidden bool
	}{
		{"http://10.0.0.1/hook?token=t", true},
		{"http://172.20.1.1:8080/", true},
		{"https://192.168.1.10/", true},
		{"http://100.100.100.200/", true},
		{"http://169.254.169.254/latest/meta-data/", true},
		{"http://[fd00::1]/", true},
		{"http://[fe80::1]/", true},
		{"http://[::ffff:10.0.0.1]/", true},
		{"http://[64:ff9b::a9fe:a9fe]/", true},
		{"http://224.0.0.1/", true},
		{"http://255.255.255.255/", true},
		// Allowed: the recorder stops it where it would connect, and sees it.
		{"http://203.0.113.9:8080/", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			rec := &connectRecorder{}
			s := sender.New(sender.WithGuard(newGuard(t, egress.Config{})), sender.WithDialer(rec.dialer()))
			a := s.Send(context.Background(), endpointFor(tt.url), delivery())
			if !tt.forbidden {
				if a.Verdict != sender.Retry || !errors.Is(a.Err, errNotConnected) || len(rec.attempted()) != 1 {
					t.Fatalf("verdict %v err %v attempts %v, want one attempt stopped by the recorder", a.Verdict, a.Err, rec.attempted())
				}
				return
			}
			if a.Verdict != sender.Forbidden || !errors.Is(a.Err, egress.ErrForbidden) {
				t.Fatalf("verdict %v err %v, want forbidden", a.Verdict, a.Err)
			}
			if got := rec.attempted(); len(got) != 0 {
				t.Errorf("connections attempted to %v", got)
			}
		})
	}
}

// Without WithGuard the Sender guards nothing, as before the guard existed; the server wires
// one in from configuration.
func TestSenderWithoutGuardReachesLoopback(t *testing.T) {
	srv := newServer(t, statusHandler(http.StatusNoContent))
	if a := sender.New().Send(context.Background(), endpointFor(srv.URL), delivery()); a.Verdict != sender.Delivered {
		t.Fatalf("verdict %v (%s), want delivered", a.Verdict, a.Reason())
	}
}
