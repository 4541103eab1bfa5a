// Package webhooktest is a webhook endpoint for tests, like net/http/httptest for HTTP: a
// server on loopback that verifies every request (roomhook's receiver package for the JWT, the
// body hash and Standard Webhooks signatures, and LiveKit's own verifier), answers what the test
// plans, and keeps what it got.
//
// It is a package of its own rather than part of internal/natstest because the receiver
// package imports traffic, whose own tests use natstest.
package webhooktest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/schema/signature"
)

// Options configure a Receiver.
type Options struct {
	// Credentials verify the JWT. Required.
	Credentials signature.Credentials
	// StandardSecrets, when set, also require a valid Standard Webhooks signature.
	StandardSecrets []string
	// Answer gives the status of the attempt-th request (from 1) for the event id; 0 or a nil
	// Answer is 200.
	Answer func(id string, attempt int) int
}

// Receiver is a verifying webhook endpoint on loopback. A request that fails verification fails
// the test and is answered with the status the receiver package gives it.
type Receiver struct {
	t      testing.TB
	srv    *httptest.Server
	verify *receiver.Receiver
	opts   Options

	mu       sync.Mutex
	attempts map[string]int
	answered []string // event ids answered 2xx, in arrival order
	tokens   []string // every Authorization, Hash-Token and webhook-signature value received
}

// New starts a Receiver that closes when the test ends.
func New(t testing.TB, opts Options) *Receiver {
	t.Helper()
	verify, err := receiver.New(receiver.Options{Credentials: opts.Credentials, StandardSecrets: opts.StandardSecrets})
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{t: t, verify: verify, opts: opts, attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the endpoint's URL: the server's base with the path /webhook.
func (r *Receiver) URL() string { return r.srv.URL + "/webhook" }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	var tokens []string
	for _, name := range []string{"Authorization", "Hash-Token", "Webhook-Signature"} {
		tokens = append(tokens, req.Header.Values(name)...)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "unreadable", http.StatusBadRequest)
		return
	}
	// roomhook's verifier, with the Standard Webhooks signatures when the test has secrets.
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	r.verify.ServeHTTP(rec, check)
	if rec.Code != http.StatusOK {
		r.t.Errorf("webhooktest: request refused by roomhook's verifier: %d %s", rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
		w.WriteHeader(rec.Code)
		return
	}
	// And LiveKit's own, which receivers in the field use.
	lk := req.Clone(req.Context())
	lk.Body = io.NopCloser(bytes.NewReader(body))
	if _, err := webhook.Receive(lk, auth.NewSimpleKeyProvider(r.opts.Credentials.APIKey, r.opts.Credentials.APISecret)); err != nil {
		r.t.Errorf("webhooktest: LiveKit's verifier refused a request: %v", err)
		http.Error(w, "unverified", http.StatusUnauthorized)
		return
	}
	var evt struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &evt); err != nil {
		r.t.Errorf("webhooktest: body is not JSON: %v", err)
	}
	r.mu.Lock()
	r.tokens = append(r.tokens, tokens...)
	r.attempts[evt.ID]++
	status := http.StatusOK
	if r.opts.Answer != nil {
		if s := r.opts.Answer(evt.ID, r.attempts[evt.ID]); s != 0 {
			status = s
		}
	}
	if status >= 200 && status < 300 {
		r.answered = append(r.answered, evt.ID)
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

// Answered returns the event ids answered 2xx, in the order they arrived.
func (r *Receiver) Answered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.answered)
}

// AnsweredCount is len(Answered()).
func (r *Receiver) AnsweredCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answered)
}

// Has reports whether the event id was answered 2xx: the barrier a test waits for.
func (r *Receiver) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.answered, id)
}

// Attempts is how many verified requests came for the event id.
func (r *Receiver) Attempts(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id]
}

// Tokens returns every Authorization, Hash-Token and webhook-signature value received, so that a
// test can look for them where they must not be (logs).
func (r *Receiver) Tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}
