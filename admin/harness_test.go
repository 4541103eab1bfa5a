package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
)

// The tests run real parts: an embedded JetStream server, dispatcher replicas each running
// the admin service on its own connection (as serve.go does), an admin client on another
// connection, and webhook receivers on loopback that verify every request with LiveKit's own
// verifier.

const testRegion = "default"

var testCreds = signature.Credentials{APIKey: "admin-test-key", APISecret: "admin-test-secret-0123456789abcdef0123"}

func testLogger() *slog.Logger {
	if os.Getenv("ROOMHOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(replica string, urls ...string) dispatcher.Config {
	eps := make([]endpoint.Endpoint, 0, len(urls))
	for _, u := range urls {
		eps = append(eps, endpoint.Endpoint{ID: endpoint.ID(u), URL: u, Credentials: testCreds, Global: true})
	}
	return dispatcher.Config{
		Region: testRegion, Partitions: 4, MaxInFlight: 8, Takeover: 2 * time.Second,
		MaxEventBytes: 1 << 20, PerRoomWebhooks: true, RoomGrace: time.Minute, RoomTTL: time.Hour,
		StreamMaxAge: time.Hour, DLQMaxAge: time.Hour, StreamReplicas: 1,
		Retry:       sender.RetrySchedule{Steps: []time.Duration{0, 20 * time.Millisecond}, Jitter: 0},
		Credentials: testCreds, Endpoints: eps, ReplicaID: replica,
	}
}

// replica is one running dispatcher with its admin service, wired as serve.go wires them.
type replica struct {
	d *dispatcher.Dispatcher
}

func startReplica(t testing.TB, ns *server.Server, cfg dispatcher.Config) *replica {
	t.Helper()
	nc, js := natstest.Connect(t, ns.ClientURL())
	log := testLogger().With("replica", cfg.ReplicaID)
	d, err := dispatcher.New(js, cfg, dispatcher.WithLogger(log),
		dispatcher.WithSender(sender.New(sender.WithTimeout(2*time.Second))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("replica %s: %v", cfg.ReplicaID, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "replica ready", d.Ready)
	svc, err := Start(ctx, nc, Config{Region: cfg.Region, Partitions: cfg.Partitions, ReplicaID: cfg.ReplicaID, Version: "dev", Logger: log,
		MaxEventBytes: cfg.MaxEventBytes,
		Delivers:      func(id string) bool { _, ok := d.Directory().Get(id); return ok }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return &replica{d: d}
}

// paused waits until the replica's workers see the endpoint's pause state as want.
func (r *replica) waitPaused(t testing.TB, id string, want bool) {
	t.Helper()
	waitFor(t, 5*time.Second, "pause state seen by the replica", func() bool {
		v, ok := r.d.Directory().Get(id)
		return ok && v.Paused == want
	})
}

func newClient(t testing.TB, ns *server.Server) *Client {
	t.Helper()
	nc, _ := natstest.Connect(t, ns.ClientURL())
	return NewClient(nc, testRegion, WithTimeout(20*time.Second))
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// received is one webhook a receiver accepted, with the body as it arrived.
type received struct {
	Room, Event, ID string
	Body            []byte
}

// receiver is a webhook endpoint on loopback; it verifies every request with LiveKit's
// verifier and answers what its status function says (200 when nil).
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	got      []received
	requests int
	status   int // answer; 0 = 200
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/webhook" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := webhook.Receive(r, auth.NewSimpleKeyProvider(testCreds.APIKey, testCreds.APISecret))
	if err != nil {
		rc.t.Errorf("receiver: LiveKit's verifier refused a request: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var evt struct {
		Event string `json:"event"`
		ID    string `json:"id"`
		Room  struct {
			RoomID string `json:"room_id"`
		} `json:"room"`
	}
	if err := json.Unmarshal(body, &evt); err != nil {
		rc.t.Errorf("receiver: body is not JSON: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	status := rc.status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 300 {
		rc.got = append(rc.got, received{Room: evt.Room.RoomID, Event: evt.Event, ID: evt.ID, Body: body})
	}
	w.WriteHeader(status)
}

func (rc *receiver) setStatus(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

func (rc *receiver) deliveries() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// waitCount waits until the receiver accepted n webhooks in all.
func (rc *receiver) waitCount(t testing.TB, n int) []received {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%d webhooks at %s", n, rc.URL()), func() bool { return rc.count() >= n })
	return rc.deliveries()
}

func (rc *receiver) requestCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// publish publishes an event as a media node does, with id as its event id.
func publish(t testing.TB, js jetstream.JetStream, room, event, id string) {
	t.Helper()
	evt := &roomhookv1.Event{
		Id:    proto.String(id),
		Event: proto.String(event),
		Room:  &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
	}
	if _, err := schema.Publish(context.Background(), js, testRegion, evt); err != nil {
		t.Fatal(err)
	}
}

// publishGarbage publishes bytes that are no protobuf event: the router dead-letters them as invalid.
func publishGarbage(t testing.TB, js jetstream.JetStream, room string) {
	t.Helper()
	subject, err := schema.Address{Region: testRegion, Room: room, Event: "room_started"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), subject, []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
}

// idsOf lists the event ids of deliveries.
func idsOf(got []received) []string {
	out := make([]string, len(got))
	for i, r := range got {
		out[i] = r.ID
	}
	return out
}

// byRoom keeps the deliveries of one room, in arrival order.
func byRoom(got []received, room string) []received {
	var out []received
	for _, r := range got {
		if r.Room == room {
			out = append(out, r)
		}
	}
	return out
}

// waitDeadLetters waits until the client lists exactly n dead letters for f.
func waitDeadLetters(t testing.TB, c *Client, f Filter, n int) []DeadLetter {
	t.Helper()
	var got DeadLetterList
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		got, err = c.ListDeadLetters(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if got.Matched == n {
			return got.DeadLetters
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters for %+v: %d, want %d", f, got.Matched, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
