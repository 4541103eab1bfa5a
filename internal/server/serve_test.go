package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/subscriber"
)

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
	ns             *server.Server
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
func testServeConfig(t *testing.T, natsURL string, webhookURLs ...string) Config {
	t.Helper()
	clearRoomhookEnv(t)
	c, err := LoadConfig(ScopeServe)
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
func startServe(t testing.TB, c Config, logs io.Writer) *servedProcess {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &servedProcess{base: "http://" + c.HTTPAddr, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- Serve(ctx, c, NewLogger(c, logs), "test") }()
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
func endpointLabel(t testing.TB, rawURL string) string {
	t.Helper()
	urls, err := dispatcher.ParseWebhookURLs([]string{rawURL})
	if err != nil {
		t.Fatal(err)
	}
	return dispatcher.EndpointID(urls[0])
}

// scrape reads /metrics with Prometheus' own text parser.
func scrape(t testing.TB, p *servedProcess) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

// labelKey names a series within its family: "k=v,k=v" with the label names sorted.
func labelKey(pairs ...string) string {
	var kv []string
	for i := 0; i+1 < len(pairs); i += 2 {
		kv = append(kv, pairs[i]+"="+pairs[i+1])
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// seriesValues lists a family's series by labelKey: the value of counters and gauges, the
// observation count of histograms.
func seriesValues(fams map[string]*dto.MetricFamily, family string) map[string]float64 {
	out := map[string]float64{}
	f := fams[family]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		var pairs []string
		for _, l := range m.GetLabel() {
			pairs = append(pairs, l.GetName(), l.GetValue())
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		}
		out[labelKey(pairs...)] = v
	}
	return out
}

// metricsDiff lists where the scraped families differ from want, which holds every series
// each family must have, and no other.
func metricsDiff(fams map[string]*dto.MetricFamily, want map[string]map[string]float64) string {
	var diffs []string
	for family, series := range want {
		got := seriesValues(fams, family)
		for key, v := range series {
			if g, ok := got[key]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s{%s} missing, want %g", family, key, v))
			} else if g != v {
				diffs = append(diffs, fmt.Sprintf("%s{%s} = %g, want %g", family, key, g, v))
			}
		}
		for key, g := range got {
			// Zero series of label values nothing used are Metrics.Preset's, there from the start.
			if _, ok := series[key]; !ok && g != 0 {
				diffs = append(diffs, fmt.Sprintf("%s{%s} = %g, not expected", family, key, g))
			}
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

// TestServeMetricsCountWhatARunDid runs a known set of events through serve and finds exactly
// their counts on /metrics: 5 events (one of an unknown name) to 2 global endpoints, 3 of them
// also to a per-room endpoint, one 500 answered once, and one undecodable event.
func TestServeMetricsCountWhatARunDid(t *testing.T) {
	ns := startNATS(t, "", "")
	steady := newHookReceiver(t, testAPIKey, testAPISecret, nil)
	flaky := newHookReceiver(t, testAPIKey, testAPISecret, func(id string, n int) int {
		if id == "ev-r2-1" && n == 1 {
			return http.StatusInternalServerError
		}
		return 0
	})
	perRoom := newHookReceiver(t, testAPIKey, testAPISecret, nil)
	c := testServeConfig(t, ns.url(), steady.url(), flaky.url())
	p := startServe(t, c, io.Discard)

	js := ns.jetStream()
	publishEvents(t, js,
		roomEvent("r1", "room_created", "ev-r1-0", perRoom.url()),
		roomEvent("r1", "participant_joined", "ev-r1-1"),
		roomEvent("r1", "participant_joined", "ev-r1-2"),
		roomEvent("r2", "participant_joined", "ev-r2-1"),
		roomEvent("r2", "made_up_event", "ev-r2-2"), // not a known name: labelled "other"
	)
	publishGarbage(t, js, "r3")
	waitUntil(t, 15*time.Second, "every delivery", func() bool {
		return steady.answeredCount() == 5 && flaky.answeredCount() == 5 && perRoom.answeredCount() == 3
	})

	a, b := endpointLabel(t, steady.url()), endpointLabel(t, flaky.url())
	ep := func(id string) string { return labelKey("endpoint", id) }
	delivery := func(id, outcome, class string) string {
		return labelKey("endpoint", id, "outcome", outcome, "status_class", class)
	}
	want := map[string]map[string]float64{
		"roomhook_events_consumed_total": {
			labelKey("event", "room_created"): 1, labelKey("event", "participant_joined"): 3, labelKey("event", "other"): 1,
		},
		"roomhook_deliveries_total": {
			delivery(a, "delivered", "2xx"): 5,
			delivery(b, "delivered", "2xx"): 5, delivery(b, "retry", "5xx"): 1,
			delivery("per_room", "delivered", "2xx"): 3,
		},
		"roomhook_retries_total":            {ep(b): 1},
		"roomhook_invalid_events_total":     {"": 1},
		"roomhook_dead_letters_total":       {labelKey("reason", "invalid"): 1},
		"roomhook_attempt_duration_seconds": {ep(a): 5, ep(b): 6, ep("per_room"): 3},
		"roomhook_end_to_end_seconds":       {ep(a): 5, ep(b): 5, ep("per_room"): 3},
		"roomhook_units_owned":              {"": float64(c.Partitions + 1)},
		"roomhook_in_flight":                {ep(a): 0, ep(b): 0, ep("per_room"): 0},
		"roomhook_held_deliveries":          {ep(a): 0, ep(b): 0, ep("per_room"): 0},
	}
	// Counters are recorded just after the receiver answers, so wait for them to arrive; then,
	// a little later, they must still be exactly the same: nothing counted twice or late.
	var diff string
	deadline := time.Now().Add(10 * time.Second)
	for diff = metricsDiff(scrape(t, p), want); diff != "" && time.Now().Before(deadline); diff = metricsDiff(scrape(t, p), want) {
		time.Sleep(50 * time.Millisecond)
	}
	if diff != "" {
		t.Fatalf("/metrics after the run:\n%s", diff)
	}
	time.Sleep(500 * time.Millisecond)
	fams := scrape(t, p)
	if diff := metricsDiff(fams, want); diff != "" {
		t.Errorf("/metrics changed after the run settled:\n%s", diff)
	}

	for _, name := range []string{"roomhook_attempt_duration_seconds", "roomhook_end_to_end_seconds"} {
		for _, m := range fams[name].GetMetric() {
			if h := m.GetHistogram(); h.GetSampleSum() <= 0 {
				t.Errorf("%s %v: sum %g, want a positive duration", name, m.GetLabel(), h.GetSampleSum())
			}
		}
	}
	for key, v := range seriesValues(fams, "roomhook_breakers_open") {
		if v != 0 {
			t.Errorf("roomhook_breakers_open{%s} = %g; one 500 must not open a breaker", key, v)
		}
	}
	for _, name := range []string{"roomhook_backlog", "go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	for key, v := range seriesValues(fams, "roomhook_backlog") {
		if v < 0 {
			t.Errorf("roomhook_backlog{%s} = %g", key, v)
		}
	}
	// Bounded cardinality: no label value is a URL or a room.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "://") || strings.Contains(v, "127.0.0.1") || v == "r1" || v == "r2" {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
	}
}

// TestReadyzFollowsNATS stops the NATS server under a running serve and starts it again on the
// same port with the same store: /readyz must turn 503 and come back to 200 by itself, /healthz
// stays 200 throughout, and deliveries go on afterwards.
func TestReadyzFollowsNATS(t *testing.T) {
	ns := startNATS(t, "", "")
	rc := newHookReceiver(t, testAPIKey, testAPISecret, nil)
	c := testServeConfig(t, ns.url(), rc.url())
	logs := &lockedBuffer{}
	p := startServe(t, c, logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	})
	js := ns.jetStream()
	publishEvents(t, js, roomEvent("before", "room_started", "ev-before"))
	waitUntil(t, 10*time.Second, "delivery before the outage", func() bool { return rc.answeredCount() == 1 })

	ns.stop()
	body := p.waitStatus(t, "/readyz", http.StatusServiceUnavailable, 5*time.Second)
	if !strings.Contains(body, "NATS") {
		t.Errorf("/readyz during the outage says %q; want the reason", strings.TrimSpace(body))
	}
	if status, _ := p.get(t, "/healthz"); status != http.StatusOK {
		t.Errorf("/healthz during the outage answered %d; a NATS outage must not get the process restarted", status)
	}
	if status, _ := p.get(t, "/metrics"); status != http.StatusOK {
		t.Errorf("/metrics during the outage answered %d", status)
	}

	ns.start()
	p.waitStatus(t, "/readyz", http.StatusOK, 15*time.Second)
	// Let leases and consumers settle after the restart (several takeover periods), so that the
	// delivery below shows the replica working again, not work left over from before.
	time.Sleep(3 * c.Takeover)
	if status, body := p.get(t, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz after NATS settled: %d %q", status, strings.TrimSpace(body))
	}
	publishEvents(t, ns.jetStream(), roomEvent("after", "room_started", "ev-after"))
	waitUntil(t, 20*time.Second, "delivery after NATS came back", func() bool { return rc.answeredCount() == 2 })
	p.stop() // while NATS still runs: the restarted server's cleanup would stop it first; startServe's cleanup reports the error
}

// TestReadyzChecksJetStream checks the readiness check against a server that accepts
// connections but lacks what roomhook provisioned: nothing at all, as after a restart without
// its store, or one bucket, as after a restart that dropped the memory-stored buckets.
func TestReadyzChecksJetStream(t *testing.T) {
	ns := startNATS(t, "", "")
	nc, js := natstest.Connect(t, ns.url())
	names := subscriber.Names{Region: "default"}
	running := true
	r := newReadiness(nc, js, names, func() bool { return running })
	r.ttl = 200 * time.Millisecond
	ctx := context.Background()
	checkMissing := func(when, missing string) {
		t.Helper()
		err := r.check(ctx)
		if !errors.Is(err, errJetStreamUnhealthy) || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: %v; want %s named as missing", when, err, missing)
		}
	}

	checkMissing("nothing provisioned", names.EventsStream())
	if _, err := subscriber.Provision(ctx, js, names, subscriber.StreamSettings{
		MaxAge: time.Hour, Replicas: 1, DLQMaxAge: time.Hour, Takeover: 2 * time.Second, RoomTTL: time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	// Cached: probes cost NATS at most one round trip per period.
	checkMissing("right after provisioning", names.EventsStream())
	time.Sleep(r.ttl)
	if err := r.check(ctx); err != nil {
		t.Errorf("everything provisioned: %v", err)
	}
	if err := js.DeleteKeyValue(ctx, names.LeasesBucket()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(r.ttl)
	checkMissing("leases bucket gone", names.LeasesBucket())

	running = false
	if err := r.check(ctx); !errors.Is(err, errDispatcherStopped) {
		t.Errorf("dispatcher stopped: %v", err)
	}
	running = true
	ns.stop()
	waitUntil(t, 5*time.Second, "the client to notice", func() bool { return !nc.IsConnected() })
	if err := r.check(ctx); !errors.Is(err, errNATSDisconnected) {
		t.Errorf("disconnected: %v; a lost connection must show at once, not after the cache", err)
	}
}

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// parseLogLine reads one record of either format into its attributes.
func parseLogLine(format, line string) (map[string]string, error) {
	out := map[string]string{}
	if format == "json" {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, err
		}
		for k, v := range rec {
			out[k] = fmt.Sprint(v)
		}
		return out, nil
	}
	for rest := line; rest != ""; {
		rest = strings.TrimLeft(rest, " ")
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, fmt.Errorf("not key=value at %q", rest)
		}
		var value string
		if strings.HasPrefix(after, `"`) {
			quoted, err := strconv.QuotedPrefix(after)
			if err != nil {
				return nil, err
			}
			value, _ = strconv.Unquote(quoted)
			rest = after[len(quoted):]
		} else {
			value, rest, _ = strings.Cut(after, " ")
		}
		out[key] = value
	}
	return out, nil
}

var endpointIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// deliveryMessages are the records about one delivery to one endpoint.
var deliveryMessages = []string{"delivered", "delivery failed; will retry", "delivery dead-lettered"}

// TestLogsCarryDeliveriesButNoSecrets runs deliveries, a retry, a rejected delivery and an
// invalid event at debug level, in both formats, with every kind of secret configured: the API
// secret, a NATS password (in the URL, or in ROOMHOOK_NATS_PASSWORD), an endpoint's own API
// secret, its Standard Webhooks secret and a token in its URL. None of them, and none of the
// tokens the receivers got, may appear in what the logger wrote; every delivery record names
// the room, the event id and the endpoint.
func TestLogsCarryDeliveriesButNoSecrets(t *testing.T) {
	const (
		natsUser     = "roomhook"
		natsPassword = "nats-pw-4b9e1d7c2f"
		ownKey       = "lms-key"
		ownSecret    = "lms-own-secret-0a8f3e6d5c"
		whsecBase64  = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		whsec        = "whsec_" + whsecBase64
		urlToken     = "url-token-e2c4a6b8d0"
	)
	for _, tc := range []struct {
		format    string
		natsInURL bool // credentials in ROOMHOOK_NATS_URL rather than USER/PASSWORD
	}{
		{format: "text", natsInURL: true},
		{format: "json"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			ns := startNATS(t, natsUser, natsPassword)
			// The endpoint with its own credentials answers 500 once, then 200.
			own := newHookReceiver(t, ownKey, ownSecret, func(id string, n int) int {
				if id == "ev-2" && n == 1 {
					return http.StatusInternalServerError
				}
				return 0
			})
			own.whsec = []string{whsec}
			// The endpoint signed with the API secret refuses one event: a dead letter.
			plain := newHookReceiver(t, testAPIKey, testAPISecret, func(id string, _ int) int {
				if id == "ev-3" {
					return http.StatusBadRequest
				}
				return 0
			})
			file := filepath.Join(t.TempDir(), "endpoints.yaml")
			content := fmt.Sprintf("endpoints:\n  - url: %s?token=%s\n    api_key: %s\n    api_secret: %s\n    standard_webhooks_secrets: [%s]\n",
				own.url(), urlToken, ownKey, ownSecret, whsec)
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}

			c := testServeConfig(t, ns.url(), plain.url())
			c.EndpointsFile, c.LogFormat, c.LogLevel = file, tc.format, "debug"
			if tc.natsInURL {
				c.NATSURL = fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", natsUser, natsPassword, ns.port)
			} else {
				c.NATSUser, c.NATSPassword = natsUser, natsPassword
			}
			logs := &lockedBuffer{}
			p := startServe(t, c, logs)

			js := ns.jetStream()
			publishEvents(t, js,
				roomEvent("log-room", "room_started", "ev-1"),
				roomEvent("log-room", "participant_joined", "ev-2"),
				roomEvent("log-room", "room_finished", "ev-3"),
			)
			publishGarbage(t, js, "log-room")
			waitUntil(t, 15*time.Second, "deliveries, the retry and the dead letters in the log", func() bool {
				out := logs.String()
				return own.answeredCount() == 3 && plain.answeredCount() == 2 &&
					strings.Contains(out, "delivery dead-lettered") && strings.Contains(out, "invalid event dead-lettered")
			})
			if err := p.stop(); err != nil {
				t.Fatalf("serve: %v", err)
			}
			out := logs.String()

			secrets := map[string]string{
				"ROOMHOOK_API_SECRET": testAPISecret, "NATS password": natsPassword,
				"endpoint api_secret": ownSecret, "whsec_ secret": whsecBase64, "token in the endpoint URL": urlToken,
			}
			tokens := append(own.receivedTokens(), plain.receivedTokens()...)
			// own: 4 requests with Authorization, Hash-Token and webhook-signature; plain: 3 with two.
			if len(tokens) != 4*3+3*2 {
				t.Fatalf("receivers kept %d tokens, want 18", len(tokens))
			}
			for i, tok := range tokens {
				secrets[fmt.Sprintf("token #%d a receiver got", i)] = tok
				// A JWT's signature part, or a Standard Webhooks signature, on its own.
				if j := strings.LastIndexAny(tok, ".,"); j >= 0 && len(tok)-j > 16 {
					secrets[fmt.Sprintf("signature of token #%d", i)] = tok[j+1:]
				}
			}
			for what, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("the log contains the %s", what)
				}
			}

			seen := map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(out))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				rec, err := parseLogLine(tc.format, sc.Text())
				if err != nil {
					t.Errorf("log line is not %s: %v: %s", tc.format, err, sc.Text())
					continue
				}
				msg := rec["msg"]
				_, hasEventID := rec["event_id"]
				if !slices.Contains(deliveryMessages, msg) && !hasEventID {
					continue
				}
				seen[msg]++
				if rec["room"] != "log-room" || rec["event_id"] == "" || !endpointIDPattern.MatchString(rec["endpoint"]) {
					t.Errorf("delivery record without room, event_id and endpoint id: %s", sc.Text())
				}
			}
			for msg, want := range map[string]int{"delivered": 5, "delivery failed; will retry": 1, "delivery dead-lettered": 1} {
				if seen[msg] != want {
					t.Errorf("%d %q records, want %d", seen[msg], msg, want)
				}
			}
			if tc.natsInURL && !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", ns.port)) {
				t.Errorf("the log does not say which NATS server it uses (redacted)")
			}
		})
	}
}

// TestLogsFormatAndLevel checks ROOMHOOK_LOG_FORMAT and ROOMHOOK_LOG_LEVEL.
func TestLogsFormatAndLevel(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		want          []string // messages that must appear, the others must not
	}{
		{"json", "debug", []string{"d", "i", "w", "e"}},
		{"json", "warn", []string{"w", "e"}},
		{"text", "info", []string{"i", "w", "e"}},
		{"text", "error", []string{"e"}},
	} {
		t.Run(tc.format+"-"+tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			log := NewLogger(Config{LogFormat: tc.format, LogLevel: tc.level}, &buf)
			log.Debug("d", "room", "r")
			log.Info("i", "room", "r")
			log.Warn("w", "room", "r")
			log.Error("e", "room", "r")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				rec, err := parseLogLine(tc.format, line)
				if err != nil {
					t.Fatalf("not %s: %v: %s", tc.format, err, line)
				}
				if rec["room"] != "r" {
					t.Errorf("attribute lost: %s", line)
				}
				got = append(got, rec["msg"])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("logged %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	clearRoomhookEnv(t)
	const secret = "config-test-secret-5e7a"
	natsURL := map[string]string{"ROOMHOOK_NATS_URL": "nats://nats.example:4222"}
	tests := []struct {
		env   map[string]string
		unset []string // of the credentials every case gets otherwise
		want  string   // the variable the error must name; "" for a valid configuration
	}{
		{env: map[string]string{}},
		{env: map[string]string{}, unset: []string{"ROOMHOOK_API_KEY", "ROOMHOOK_API_SECRET"}}, // development credentials
		{env: natsURL},
		{env: map[string]string{"ROOMHOOK_TAKEOVER": "abc"}, want: "ROOMHOOK_TAKEOVER"},
		{env: map[string]string{"ROOMHOOK_TAKEOVER": "500ms"}, want: "ROOMHOOK_TAKEOVER"},
		{env: map[string]string{"ROOMHOOK_PARTITIONS": "0"}, want: "ROOMHOOK_PARTITIONS"},
		{env: map[string]string{"ROOMHOOK_PARTITIONS": "eight"}, want: "ROOMHOOK_PARTITIONS"},
		{env: map[string]string{"ROOMHOOK_REGION": "EU"}, want: "ROOMHOOK_REGION"},
		{env: map[string]string{"ROOMHOOK_RETRY_SCHEDULE": "1s,-2s"}, want: "ROOMHOOK_RETRY_SCHEDULE"},
		{env: map[string]string{"ROOMHOOK_RETRY_JITTER": "1.5"}, want: "ROOMHOOK_RETRY_JITTER"},
		{env: map[string]string{"ROOMHOOK_WEBHOOK_URLS": "https://ok.example/hook,ftp://x"}, want: "ROOMHOOK_WEBHOOK_URLS"},
		{env: map[string]string{"ROOMHOOK_LOG_FORMAT": "xml"}, want: "ROOMHOOK_LOG_FORMAT"},
		{env: map[string]string{"ROOMHOOK_LOG_LEVEL": "loud"}, want: "ROOMHOOK_LOG_LEVEL"},
		{env: map[string]string{"ROOMHOOK_HTTP_ADDR": "8080"}, want: "ROOMHOOK_HTTP_ADDR"},
		{env: map[string]string{"ROOMHOOK_HTTP_TIMEOUT": "0s"}, want: "ROOMHOOK_HTTP_TIMEOUT"},
		{env: map[string]string{"ROOMHOOK_PER_ROOM_WEBHOOKS": "maybe"}, want: "ROOMHOOK_PER_ROOM_WEBHOOKS"},
		{env: map[string]string{"ROOMHOOK_STREAM_REPLICAS": "7"}, want: "ROOMHOOK_STREAM_REPLICAS"},
		{env: map[string]string{"ROOMHOOK_MAX_EVENT_BYTES": "-1"}, want: "ROOMHOOK_MAX_EVENT_BYTES"},
		{env: map[string]string{"ROOMHOOK_ENDPOINTS_FILE": "/nonexistent/endpoints.yaml"}, want: "ROOMHOOK_ENDPOINTS_FILE"},
		{env: natsURL, unset: []string{"ROOMHOOK_API_KEY"}, want: "ROOMHOOK_API_KEY"},
		{env: natsURL, unset: []string{"ROOMHOOK_API_SECRET"}, want: "ROOMHOOK_API_SECRET"},
	}
	for _, tc := range tests {
		name := cmp.Or(tc.want, "valid")
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"ROOMHOOK_API_KEY": "config-test-key", "ROOMHOOK_API_SECRET": secret}
			maps.Copy(env, tc.env)
			for _, k := range tc.unset {
				delete(env, k)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig(ScopeServe)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid configuration %v refused: %v", env, err)
			case tc.want == "":
			case err == nil:
				t.Errorf("%v accepted", env)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("error does not name %s: %v", tc.want, err)
			case strings.Contains(err.Error(), secret):
				t.Errorf("error repeats the API secret: %v", err)
			}
		})
	}
}
