package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
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
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/subscriber"
)

// The harness runs real parts: an embedded JetStream server, dispatcher replicas each on its
// own NATS connection, and HTTP receivers on loopback that verify what they get with
// LiveKit's own verifier.

var testCreds = signature.Credentials{APIKey: "test-key", APISecret: "test-secret-0123456789abcdef0123456789"}

// Short forms of natstest's, which the dispatcher's tests call in many places.
func startServer(t testing.TB, storeDir string) *server.Server {
	t.Helper()
	return natstest.NewServer(t, natstest.WithStoreDir(storeDir))
}

func startServerOn(t testing.TB, storeDir string, port int) *server.Server {
	t.Helper()
	return natstest.NewServer(t, natstest.WithStoreDir(storeDir), natstest.WithPort(port))
}

func connect(t testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return natstest.Connect(t, ns.ClientURL())
}

func testConfig(id string, urls ...string) Config {
	eps := make([]endpoint.Endpoint, 0, len(urls))
	for _, u := range urls {
		eps = append(eps, endpoint.Endpoint{ID: endpoint.ID(u), URL: u, Credentials: testCreds, Global: true})
	}
	return Config{
		Region: "default", Partitions: 4, MaxInFlight: 64, Takeover: 2 * time.Second,
		MaxEventBytes: 1 << 20, PerRoomWebhooks: true, RoomGrace: time.Minute, RoomTTL: time.Hour,
		StreamMaxAge: time.Hour, DLQMaxAge: time.Hour, StreamReplicas: 1,
		Retry:       sender.RetrySchedule{Steps: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, Jitter: 0.2},
		Credentials: testCreds, Endpoints: eps, ReplicaID: id, MaxProbeWait: 500 * time.Millisecond,
	}
}

// replica is one running dispatcher with its own connection.
type replica struct {
	d      *Dispatcher
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

func testLogger() *slog.Logger {
	if os.Getenv("ROOMHOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startReplica(t testing.TB, ns *server.Server, cfg Config, opts ...Option) *replica {
	t.Helper()
	r := launchReplica(t, ns, cfg, opts...)
	waitFor(t, 10*time.Second, "replica ready", r.d.Ready)
	return r
}

// launchReplica starts a replica and returns at once, before it is ready.
func launchReplica(t testing.TB, ns *server.Server, cfg Config, opts ...Option) *replica {
	t.Helper()
	nc, js := connect(t, ns)
	opts = append([]Option{WithLogger(testLogger().With("replica", cfg.ReplicaID)), WithSender(sender.New(sender.WithTimeout(2 * time.Second)))}, opts...)
	d, err := New(js, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{d: d, nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("replica %s: %v", cfg.ReplicaID, err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// stop is a graceful stop, as on SIGTERM.
func (r *replica) stop() {
	r.cancel()
	<-r.done
}

// kill closes the replica's connection abruptly, as if its process died: it settles nothing
// and hands nothing back.
func (r *replica) kill() {
	r.nc.Close()
	r.cancel()
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

// waitSettled waits until the region's partition and spill streams hold nothing: every
// delivery of every event published so far is delivered, dead-lettered or dropped, so no
// attempt of one can still come. It is the barrier for "nothing more arrives" where no
// later event can reach the endpoint in question (it is disabled, or its event was the
// room's last).
func waitSettled(t testing.TB, js jetstream.JetStream, timeout time.Duration) {
	t.Helper()
	n := subscriber.Names{Region: "default"}
	waitFor(t, timeout, "the partition and spill streams to be empty", func() bool {
		for _, name := range []string{n.PartStream(), n.SpillStream()} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := js.Stream(ctx, name)
			if err != nil {
				cancel()
				return false
			}
			info, err := st.Info(ctx)
			cancel()
			if err != nil || info.State.Msgs > 0 {
				return false
			}
		}
		return true
	})
}

// received is one webhook request as a receiver saw it.
type received struct {
	Room, Event, ID string
	Body            []byte
	Header          http.Header
	At              time.Time
}

// receiver is a webhook endpoint on loopback. Every request is verified with LiveKit's own
// verifier; a request that fails verification fails the test.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	status func(r received, n int) int // status to answer; n counts requests for this event id
	tries  map[string]int
	delay  time.Duration // how long each answer takes
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, tries: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/webhook" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := webhook.Receive(r, auth.NewSimpleKeyProvider(testCreds.APIKey, testCreds.APISecret))
	if err != nil {
		rc.t.Errorf("receiver: livekit verifier refused a request: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	evt, err := decodeBody(body)
	if err != nil {
		rc.t.Errorf("receiver: body is not JSON: %v", err)
	}
	if rc.delay > 0 {
		select {
		case <-time.After(rc.delay):
		case <-r.Context().Done():
			return
		}
	}
	rec := received{Room: evt.Room.RoomID, Event: evt.Event, ID: evt.ID, Body: body, Header: r.Header.Clone(), At: time.Now()}
	rc.mu.Lock()
	rc.tries[rec.ID]++
	n := rc.tries[rec.ID]
	status := http.StatusOK
	if rc.status != nil {
		status = rc.status(rec, n)
	}
	if status >= 200 && status < 300 {
		rc.got = append(rc.got, rec)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
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

// publisher publishes events the way a media node does.
type publisher struct {
	t  testing.TB
	js jetstream.JetStream
}

func newEvent(room, name, id string, createdAt int64) *roomhookv1.Event {
	evt := &roomhookv1.Event{
		Event: proto.String(name),
		Room:  &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
	}
	if id != "" {
		evt.Id = proto.String(id)
	}
	if createdAt != 0 {
		evt.CreatedAt = proto.Int64(createdAt)
	}
	return evt
}

func (p publisher) publish(evt *roomhookv1.Event) {
	p.t.Helper()
	p.publishRaw(evt.GetRoom().GetRoomId(), evt.GetEvent(), evt.GetId(), mustMarshal(p.t, evt))
}

func (p publisher) publishRaw(room, event, id string, data []byte) {
	p.t.Helper()
	subj, err := schema.Address{Region: "default", Room: room, Event: event}.Subject()
	if err != nil {
		p.t.Fatal(err)
	}
	p.publishOn(subj, id, data)
}

// publishOn publishes data on any subject, as a media node that does not use the subject
// codec could.
func (p publisher) publishOn(subj, id string, data []byte) {
	p.t.Helper()
	msg := nats.NewMsg(subj)
	msg.Data = data
	if id != "" {
		msg.Header.Set(nats.MsgIdHdr, id)
	}
	if _, err := p.js.PublishMsg(context.Background(), msg); err != nil {
		p.t.Fatal(err)
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkOrder fails the test unless, for every room, the events a receiver got carry the
// sequence numbers in increasing order (duplicates allowed: at least once).
// checkOrder checks that each room's events arrived for the first time in order. A repeat
// of an event already delivered (after a replica, NATS or ack loss) is not an order
// violation: receivers deduplicate by id.
func checkOrder(t testing.TB, name string, got []received, seqOf func(received) int) {
	t.Helper()
	last := map[string]int{}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		s := seqOf(r)
		if prev, ok := last[r.Room]; ok && s < prev {
			t.Errorf("%s: room %s got #%d after #%d", name, r.Room, s, prev)
			return
		}
		last[r.Room] = s
	}
}

// eventIndex reads the publish index our tests put at the end of event ids ("ev-<room>-<n>").
func eventIndex(r received) int {
	i := strings.LastIndexByte(r.ID, '-')
	n, err := strconv.Atoi(r.ID[i+1:])
	if i < 0 || err != nil {
		return -1
	}
	return n
}

// webhookBody is the part of a webhook body the pipeline tests look at.
type webhookBody struct {
	Event string `json:"event"`
	Room  struct {
		RoomID string `json:"room_id"`
	} `json:"room"`
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
}

func decodeBody(b []byte) (webhookBody, error) {
	var w webhookBody
	err := json.Unmarshal(b, &w)
	return w, err
}

// outcome is how a faultReceiver treats one attempt.
type outcome struct {
	Status     int    // status to answer; 0 answers 200
	RetryAfter string // Retry-After header sent with the answer
	Hang       bool   // never answer, so the sender's timeout has to end the attempt
	Reset      bool   // read the request, then drop the connection with a TCP reset
}

// attempt is one request a faultReceiver saw, whatever became of it.
type attempt struct {
	At   time.Time // when the request reached the handler
	Body []byte
}

// testStatusHeader carries a faultReceiver's chosen status into the receiver's status function.
const testStatusHeader = "Roomhook-Test-Status"

// faultReceiver is a receiver that fails the attempts its plan chooses, with a status or at the
// network level, and records every attempt with its arrival time. Answered requests go through
// the receiver's verification, and 2xx ones count as deliveries, exactly as with newReceiver;
// its status field is the plan's and must not be set.
type faultReceiver struct {
	*receiver
	plan func(id string, n int) outcome // n counts attempts for id from 1, failed ones included

	attemptsMu sync.Mutex
	attempts   map[string][]attempt
}

func newFaultReceiver(t testing.TB, plan func(id string, n int) outcome) *faultReceiver {
	fr := &faultReceiver{receiver: &receiver{t: t, tries: map[string]int{}}, plan: plan, attempts: map[string][]attempt{}}
	fr.status = func(r received, _ int) int {
		if s, err := strconv.Atoi(r.Header.Get(testStatusHeader)); err == nil {
			return s
		}
		return http.StatusOK
	}
	fr.srv = httptest.NewServer(http.HandlerFunc(fr.serveWithFaults))
	t.Cleanup(fr.srv.Close)
	return fr
}

func (fr *faultReceiver) serveWithFaults(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the sender gave up mid-request; it retries
	}
	evt, _ := decodeBody(body)
	fr.attemptsMu.Lock()
	fr.attempts[evt.ID] = append(fr.attempts[evt.ID], attempt{At: at, Body: body})
	n := len(fr.attempts[evt.ID])
	fr.attemptsMu.Unlock()

	o := fr.plan(evt.ID, n)
	switch {
	case o.Hang:
		// The sender closes the connection when its timeout passes, which ends the wait.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	case o.Reset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			fr.t.Errorf("receiver: hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST rather than FIN
		}
		conn.Close()
		return
	}
	if o.RetryAfter != "" {
		w.Header().Set("Retry-After", o.RetryAfter)
	}
	if o.Status != 0 {
		r.Header.Set(testStatusHeader, strconv.Itoa(o.Status))
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	fr.serve(w, r)
}

// attemptsFor lists every attempt made for one event id, in arrival order.
func (fr *faultReceiver) attemptsFor(id string) []attempt {
	fr.attemptsMu.Lock()
	defer fr.attemptsMu.Unlock()
	return append([]attempt(nil), fr.attempts[id]...)
}

// attemptCount is how many requests reached the receiver, for every event.
func (fr *faultReceiver) attemptCount() int {
	fr.attemptsMu.Lock()
	defer fr.attemptsMu.Unlock()
	n := 0
	for _, a := range fr.attempts {
		n += len(a)
	}
	return n
}

// The contract's names in region "default", spelled out so that the tests check them.
const (
	testDLQStream       = "ROOMHOOK_DLQ_DEFAULT"
	testEndpointsBucket = "ROOMHOOK_ENDPOINTS_DEFAULT"
)

func dlqSubject(endpointID string) string { return "roomhook.dlq.default." + endpointID }

// deadLetters reads every dead letter stored under subject, oldest first.
func deadLetters(t testing.TB, js jetstream.JetStream, subject string) []deadletter.Letter {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, testDLQStream)
	if err != nil {
		t.Fatal(err)
	}
	var out []deadletter.Letter
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, deadletter.Parse(m))
		seq = m.Sequence + 1
	}
}

// waitDeadLetters waits until at least n dead letters are stored under subject and returns them.
func waitDeadLetters(t testing.TB, js jetstream.JetStream, subject string, n int, timeout time.Duration) []deadletter.Letter {
	t.Helper()
	var got []deadletter.Letter
	waitFor(t, timeout, fmt.Sprintf("%d dead letters on %s", n, subject), func() bool {
		got = deadLetters(t, js, subject)
		return len(got) >= n
	})
	return got
}

// endpointRecord reads an endpoint's shared state from the endpoints bucket.
func endpointRecord(t testing.TB, js jetstream.JetStream, id string) endpoint.Record {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, testEndpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, id)
	if err != nil {
		t.Fatalf("endpoint %s: %v", id, err)
	}
	var rec endpoint.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatalf("endpoint %s: %v", id, err)
	}
	return rec
}

// logCopyOnFailure logs, when the test fails, the events and partition streams of region
// "default" with the partition stream's sources, and the partition consumers: how a copy
// that stopped, or a partition that stopped reading, shows itself.
func logCopyOnFailure(t testing.TB, js jetstream.JetStream, partitions int) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx := context.Background()
		for _, name := range []string{"ROOMHOOK_EVENTS_DEFAULT", "ROOMHOOK_PART_DEFAULT"} {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Logf("%s: %v", name, err)
				continue
			}
			si := st.CachedInfo()
			t.Logf("%s: msgs=%d first=%d last=%d", name, si.State.Msgs, si.State.FirstSeq, si.State.LastSeq)
			for _, src := range si.Sources {
				t.Logf("  source %v lag=%d seq=%d active=%s err=%v", src.SubjectTransforms, src.Lag, src.Seq, src.Active, src.Error)
			}
		}
		for p := range partitions {
			c, err := js.Consumer(ctx, "ROOMHOOK_PART_DEFAULT", fmt.Sprintf("part_%d", p))
			if err != nil {
				t.Logf("part_%d: %v", p, err)
				continue
			}
			t.Logf("part_%d: %v", p, consumerState(ctx, c))
		}
	})
}
