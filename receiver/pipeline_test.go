package receiver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/traffic"
)

var pipelineCreds = signature.Credentials{APIKey: "e2e-key", APISecret: "e2e-secret-0123456789abcdef0123456789"}

const globalSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// alsoLiveKit checks every request with LiveKit's own verifier before the Receiver sees it.
func alsoLiveKit(t *testing.T, next http.Handler) http.Handler {
	keys := auth.NewSimpleKeyProvider(pipelineCreds.APIKey, pipelineCreds.APISecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading body: %v", err)
			return
		}
		check := r.Clone(r.Context())
		check.Body = io.NopCloser(bytes.NewReader(body))
		if _, err := webhook.Receive(check, keys); err != nil {
			t.Errorf("LiveKit's verifier refused a request roomhook sent: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// TestPublishThroughPipelineToReceiver runs the three tools' parts together: traffic is
// published on JetStream, a dispatcher replica delivers it to a global endpoint (with a
// Standard Webhooks secret) and to per-room endpoints registered by room_created, and
// receivers verify and count it.
func TestPublishThroughPipelineToReceiver(t *testing.T) {
	ns := natstest.NewServer(t)

	global, err := receiver.New(receiver.Options{Credentials: pipelineCreds, StandardSecrets: []string{globalSecret}})
	if err != nil {
		t.Fatal(err)
	}
	perRoom, err := receiver.New(receiver.Options{Credentials: pipelineCreds})
	if err != nil {
		t.Fatal(err)
	}
	globalSrv := httptest.NewServer(alsoLiveKit(t, global))
	t.Cleanup(globalSrv.Close)
	roomSrv := httptest.NewServer(alsoLiveKit(t, perRoom))
	t.Cleanup(roomSrv.Close)

	globalURL := globalSrv.URL + "/global"
	cfg := dispatcher.Config{
		Region: "default", Partitions: 4, MaxInFlight: 64, Takeover: 2 * time.Second,
		MaxEventBytes: 1 << 20, PerRoomWebhooks: true, RoomGrace: time.Minute, RoomTTL: time.Hour,
		StreamMaxAge: time.Hour, DLQMaxAge: time.Hour, StreamReplicas: 1,
		Retry:       sender.RetrySchedule{Steps: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}},
		Credentials: pipelineCreds, ReplicaID: "e2e",
		Endpoints: []endpoint.Endpoint{{ID: endpoint.ID(globalURL), URL: globalURL, Credentials: pipelineCreds,
			StandardSecrets: []string{globalSecret}, Global: true}},
	}
	_, dispatcherJS := natstest.Connect(t, ns.ClientURL())
	d, err := dispatcher.New(dispatcherJS, cfg, dispatcher.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	g, err := traffic.NewGenerator(traffic.Config{Run: "e2e", Seed: 11, Rooms: 6, Participants: 4,
		RoomWebhooks: []string{roomSrv.URL + "/room"}})
	if err != nil {
		t.Fatal(err)
	}
	_, publisherJS := natstest.Connect(t, ns.ClientURL())
	st, err := traffic.Publish(context.Background(), publisherJS, g, traffic.PublishOptions{WaitForStream: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	events := uint64(st.Published)

	deadline := time.Now().Add(30 * time.Second)
	for global.Stats().Accepted < events || perRoom.Stats().Accepted < events {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: global %v; per room %v; published %d", global.Stats(), perRoom.Stats(), events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, r := range map[string]*receiver.Receiver{"global": global, "per-room": perRoom} {
		s := r.Stats()
		if s.Accepted != events || s.Verified != events || s.Rejected != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 {
			t.Errorf("%s endpoint: %v; want all %d events verified, in order, once", name, s, events)
		}
	}
	if p := perRoom.Stats().Paths["/room"]; p != events {
		t.Errorf("per-room path got %d", p)
	}

	// Requests that did not come from the pipeline are counted on top, as a receiver's operator
	// would see them: a body altered after signing, an earlier event of a room posted after a
	// later one (properly signed), and a replay.
	inj := injectionBodies(t)
	direct := httptest.NewServer(perRoom) // no LiveKit check: some of these must fail it
	t.Cleanup(direct.Close)
	url := direct.URL + "/room"
	tampered := bytes.Replace(inj[0], []byte(`"room_created"`), []byte(`"room_finished"`), 1)
	for _, p := range []struct {
		body, signed []byte
		status       int
	}{
		{tampered, inj[0], http.StatusUnauthorized},
		{inj[2], inj[2], http.StatusOK},
		{inj[1], inj[1], http.StatusOK}, // seq 2 after seq 3: out of order
		{inj[2], inj[2], http.StatusOK}, // seq 3 again: duplicate
	} {
		if got := postSigned(t, url, p.body, p.signed); got != p.status {
			t.Errorf("injected request answered %d, want %d", got, p.status)
		}
	}
	s := perRoom.Stats()
	if s.Rejected != 1 || s.Reasons[receiver.ReasonBodyHashMismatch] != 1 || s.OutOfOrder != 1 || s.Duplicates != 1 || s.Accepted != events+3 {
		t.Errorf("after injections: %v", s)
	}
}

// injectionBodies are the first webhook bodies of a room no pipeline run touched.
func injectionBodies(t *testing.T) [][]byte {
	t.Helper()
	g, err := traffic.NewGenerator(traffic.Config{Run: "inj", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(out) < 3 {
		evt, _ := g.Next()
		b, err := schema.MarshalBody(evt, schema.Fallback{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// postSigned posts body with the headers roomhook would send for signedBody.
func postSigned(t *testing.T, url string, body, signedBody []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := (signature.Signer{Credentials: pipelineCreds}).Sign(req.Header, signedBody, "inj", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
