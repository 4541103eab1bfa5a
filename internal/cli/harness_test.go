package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
)

// Temporary copy of internal/server's serve helpers until internal/natstest has them.
// These tests run serve() the way `roomhook` runs it: a Config in, the health and metrics
// server on a real port, a NATS server with JetStream in the test process (which the tests stop
// and start again), and webhook receivers on loopback that verify every request with LiveKit's
// own verifier.

const (
	testAPIKey    = "obs-api-key"
	testAPISecret = "obs-api-secret-7d1f0c9b2a8e4f3c6b5a"
)

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// natsServer is an embedded JetStream server on a fixed loopback port, so that a test can stop
// it and start it again where the dispatcher reconnects, with the same store. A server started
// again shuts down before whatever the test set up earlier is cleaned up.
type natsServer struct {
	t              testing.TB
	port           int
	storeDir       string
	user, password string
	ns             *natsserver.Server
}

func startNATS(t testing.TB, user, password string) *natsServer {
	t.Helper()
	s := &natsServer{t: t, port: freePort(t), storeDir: t.TempDir(), user: user, password: password}
	s.start()
	return s
}

func (s *natsServer) start() {
	s.t.Helper()
	opts := []natstest.Option{natstest.WithPort(s.port), natstest.WithStoreDir(s.storeDir)}
	if s.user != "" {
		opts = append(opts, natstest.WithUser(s.user, s.password))
	}
	s.ns = natstest.NewServer(s.t, opts...)
}

func (s *natsServer) stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

func (s *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// jetStream is a media node's connection.
func (s *natsServer) jetStream() jetstream.JetStream {
	s.t.Helper()
	var opts []nats.Option
	if s.user != "" {
		opts = append(opts, nats.UserInfo(s.user, s.password))
	}
	_, js := natstest.Connect(s.t, s.url(), opts...)
	return js
}

// clearRoomhookEnv unsets every ROOMHOOK_ variable until the test ends, so that only what
// the test sets counts.
func clearRoomhookEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ROOMHOOK_") {
			t.Setenv(k, "") // restores the value when the test ends
			os.Unsetenv(k)
		}
	}
}

// testServeConfig is the default configuration with short retry steps, pointing at natsURL
// and delivering to the global webhook URLs given.
func testServeConfig(t *testing.T, natsURL string, webhookURLs ...string) server.Config {
	t.Helper()
	clearRoomhookEnv(t)
	c, err := server.LoadConfig(server.ScopeServe)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.NATSURL, c.DataDir = natsURL, t.TempDir()
	c.APIKey, c.APISecret = testAPIKey, testAPISecret
	c.WebhookURLs = webhookURLs
	c.RetrySchedule = "0s,50ms,100ms,200ms"
	c.HTTPTimeout, c.Partitions, c.MaxInFlight, c.Takeover = 2*time.Second, 2, 16, 2*time.Second
	c.ShutdownGrace, c.ReplicaID = 15*time.Second, "obs-test"
	c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	c.LogFormat, c.LogLevel = "json", "debug"
	return c
}

// servedProcess is one serve() running in the test.
type servedProcess struct {
	base   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startServe runs serve with c, its logger writing to logs, until the test ends; it returns
// once /readyz answers 200.
func startServe(t testing.TB, c server.Config, logs io.Writer) *servedProcess {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &servedProcess{base: "http://" + c.HTTPAddr, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- server.Serve(ctx, c, server.NewLogger(c, logs), "test") }()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	p.waitStatus(t, "/readyz", http.StatusOK, 20*time.Second)
	return p
}

// stop ends serve as SIGTERM does and returns what serve returned.
func (p *servedProcess) stop() error {
	p.once.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(30 * time.Second):
			p.err = errors.New("serve did not return within 30s of its context ending")
		}
	})
	return p.err
}

func (p *servedProcess) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitStatus waits until path answers status, and fails the test at once if serve returns.
func (p *servedProcess) waitStatus(t testing.TB, path string, status int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, body := p.get(t, path)
		if got == status {
			return body
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve returned while waiting for %s to answer %d: %v", path, status, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d (%q), not %d, for %s", path, got, strings.TrimSpace(body), status, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookReceiver is a webhook endpoint on loopback. It verifies every request with LiveKit's
// verifier (and the Standard Webhooks signature when it has whsec secrets), answers what
// answer says, and keeps every token it was sent.
type hookReceiver struct {
	t         testing.TB
	srv       *httptest.Server
	apiKey    string
	apiSecret string
	whsec     []string
	answer    func(id string, attempt int) int // status for the attempt-th request for id; 0: 200

	mu       sync.Mutex
	attempts map[string]int
	answered []string // event ids answered 2xx, in arrival order
	tokens   []string // every Authorization, Hash-Token and webhook-signature value received
}

func newHookReceiver(t testing.TB, apiKey, apiSecret string, answer func(id string, attempt int) int) *hookReceiver {
	h := &hookReceiver{t: t, apiKey: apiKey, apiSecret: apiSecret, answer: answer, attempts: map[string]int{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) url() string { return h.srv.URL + "/webhook" }

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var tokens []string
	for _, name := range []string{"Authorization", "Hash-Token", "Webhook-Signature"} {
		for _, v := range r.Header.Values(name) {
			tokens = append(tokens, v)
		}
	}
	header := r.Header.Clone()
	body, err := webhook.Receive(r, auth.NewSimpleKeyProvider(h.apiKey, h.apiSecret))
	if err != nil {
		h.t.Errorf("receiver: LiveKit's verifier refused a request: %v", err)
		http.Error(w, "unverified", http.StatusUnauthorized)
		return
	}
	if len(h.whsec) > 0 {
		if err := signature.VerifyStandard(h.whsec, header, body, 5*time.Minute, time.Now()); err != nil {
			h.t.Errorf("receiver: Standard Webhooks signature: %v", err)
		}
	}
	var evt struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &evt); err != nil {
		h.t.Errorf("receiver: body is not JSON: %v", err)
	}
	h.mu.Lock()
	h.tokens = append(h.tokens, tokens...)
	h.attempts[evt.ID]++
	status := http.StatusOK
	if h.answer != nil {
		if s := h.answer(evt.ID, h.attempts[evt.ID]); s != 0 {
			status = s
		}
	}
	if status >= 200 && status < 300 {
		h.answered = append(h.answered, evt.ID)
	}
	h.mu.Unlock()
	w.WriteHeader(status)
}

func (h *hookReceiver) answeredCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.answered)
}

func (h *hookReceiver) attemptsFor(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts[id]
}

func (h *hookReceiver) receivedTokens() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.tokens)
}

func roomEvent(room, name, id string, webhookURLs ...string) *roomhookv1.Event {
	return &roomhookv1.Event{
		Event: proto.String(name), Id: proto.String(id),
		Room:        &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
		WebhookUrls: webhookURLs,
	}
}

func publishEvents(t testing.TB, js jetstream.JetStream, evts ...*roomhookv1.Event) {
	t.Helper()
	for _, evt := range evts {
		if _, err := schema.Publish(context.Background(), js, "default", evt); err != nil {
			t.Fatal(err)
		}
	}
}

// publishGarbage publishes bytes that are not a protobuf event on a valid subject.
func publishGarbage(t testing.TB, js jetstream.JetStream, room string) {
	t.Helper()
	subject, err := schema.Address{Region: "default", Room: room, Event: "participant_joined"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), subject, []byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
}

// endpointLabel is the endpoint label of a global endpoint's series: its id.
