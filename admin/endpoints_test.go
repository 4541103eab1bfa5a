package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// A paused endpoint gets nothing while paused, its backlog is counted, and on resume it gets
// the backlog in order with the ids the other endpoint got; both replicas act on the pause.
func TestPauseResume(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	held, other, perRoom := newReceiver(t), newReceiver(t), newReceiver(t)
	heldURL := held.URL() + "?token=s3cret-token"
	cfg := testConfig("r1", heldURL, other.URL())
	r1 := startReplica(t, ns, cfg)
	_, js := natstest.Connect(t, ns.ClientURL())
	// Let the first replica create its consumers before the second provisions: nats-server
	// 2.15.2 has a data race between a stream update and a consumer creation on that stream,
	// which -race would report here.
	waitFor(t, 10*time.Second, "the first replica's consumers", func() bool {
		st, err := js.Stream(context.Background(), "ROOMHOOK_PART_DEFAULT")
		return err == nil && st.CachedInfo().State.Consumers == cfg.Partitions
	})
	cfg.ReplicaID = "r2"
	r2 := startReplica(t, ns, cfg)
	c := newClient(t, ns)
	heldID := endpoint.ID(heldURL)

	eps, err := c.ListEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 {
		t.Fatalf("listed %d endpoints, want 2: %+v", len(eps), eps)
	}
	for _, ep := range eps {
		if !ep.Global || ep.State() != "active" || ep.Breaker != breaker.Closed {
			t.Errorf("endpoint %+v: want global, active, breaker closed", ep)
		}
		if strings.Contains(ep.URL, "s3cret") {
			t.Errorf("listed URL %q shows the query token", ep.URL)
		}
	}
	i := slices.IndexFunc(eps, func(e Endpoint) bool { return e.ID == heldID })
	if i < 0 || eps[i].URL != held.URL() {
		t.Fatalf("endpoint %s not listed with its redacted URL: %+v", heldID, eps)
	}

	// Pause by URL, in another spelling of the same URL.
	ep, err := c.PauseEndpoint(ctx, strings.Replace(heldURL, "http://", "HTTP://", 1))
	if err != nil {
		t.Fatal(err)
	}
	if ep.ID != heldID || !ep.Paused || ep.State() != "paused" {
		t.Fatalf("pause answered %+v", ep)
	}
	r1.waitPaused(t, heldID, true)
	r2.waitPaused(t, heldID, true)

	rooms := []string{"room-a", "room-b.with dots"}
	var want []string
	for n := 1; n <= 6; n++ {
		for _, room := range rooms {
			id := fmt.Sprintf("ev-%s-%d", room, n)
			publish(t, js, room, "participant_joined", id)
			want = append(want, id)
		}
	}
	waitFor(t, 10*time.Second, "the other endpoint to get every event", func() bool { return len(other.deliveries()) >= len(want) })

	// Status counts the paused endpoint's backlog: every event published to it.
	var st Status
	waitFor(t, 10*time.Second, "status to settle", func() bool {
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		return st.Totals.Backlog == uint64(len(want))
	})
	for _, es := range st.Endpoints {
		switch es.ID {
		case heldID:
			if es.Backlog != uint64(len(want)) || !es.Paused {
				t.Errorf("paused endpoint: backlog %d paused %v, want %d and true", es.Backlog, es.Paused, len(want))
			}
		default:
			if es.Backlog != 0 {
				t.Errorf("endpoint %s: backlog %d, want 0", es.ID, es.Backlog)
			}
		}
	}
	if n := held.requestCount(); n != 0 {
		t.Fatalf("paused endpoint got %d requests", n)
	}

	// Resume by id.
	if ep, err = c.ResumeEndpoint(ctx, heldID); err != nil {
		t.Fatal(err)
	}
	if ep.Paused || ep.State() != "active" {
		t.Fatalf("resume answered %+v", ep)
	}
	waitFor(t, 10*time.Second, "the resumed endpoint to get its backlog", func() bool { return len(held.deliveries()) >= len(want) })
	got := held.deliveries()
	if len(got) != len(want) {
		t.Errorf("resumed endpoint got %d deliveries, want %d", len(got), len(want))
	}
	gotIDs := idsOf(got)
	for _, id := range want {
		if !slices.Contains(gotIDs, id) {
			t.Errorf("resumed endpoint never got %s", id)
		}
	}
	for _, room := range rooms {
		var roomWant []string
		for _, id := range want {
			if strings.HasPrefix(id, "ev-"+room+"-") {
				roomWant = append(roomWant, id)
			}
		}
		if g := idsOf(byRoom(got, room)); !slices.Equal(g, roomWant) {
			t.Errorf("room %s: resumed endpoint got %v, want %v in this order", room, g, roomWant)
		}
	}
	waitFor(t, 10*time.Second, "the backlog to drain", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.Totals.Backlog == 0
	})

	// A URL registered by a room is listed as a per-room endpoint.
	evt := &roomhookv1.Event{
		Id: proto.String("created-1"), Event: proto.String("room_created"), WebhookUrls: []string{perRoom.URL()},
		Room: &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_c"), RoomId: proto.String("room-c")},
	}
	if _, err := schema.Publish(ctx, js, testRegion, evt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the per-room endpoint to get room_created", func() bool { return len(perRoom.deliveries()) == 1 })
	if eps, err = c.ListEndpoints(ctx); err != nil {
		t.Fatal(err)
	}
	i = slices.IndexFunc(eps, func(e Endpoint) bool { return e.ID == endpoint.ID(perRoom.URL()) })
	if len(eps) != 3 || i < 0 || eps[i].Global || eps[i].URL != perRoom.URL() {
		t.Errorf("want the per-room endpoint listed with global false: %+v", eps)
	}
}

// Resuming clears a 410 Gone: the endpoint takes deliveries again.
func TestResumeClearsGone(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	rc := newReceiver(t)
	rc.setStatus(410)
	r := startReplica(t, ns, testConfig("r1", rc.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	id := endpoint.ID(rc.URL())

	publish(t, js, "room-a", "room_started", "gone-1")
	waitFor(t, 10*time.Second, "the endpoint to be disabled", func() bool {
		eps, err := c.ListEndpoints(ctx)
		return err == nil && len(eps) == 1 && eps[0].Disabled
	})
	eps, _ := c.ListEndpoints(ctx)
	if eps[0].State() != "disabled" || eps[0].DisabledReason == "" {
		t.Errorf("disabled endpoint listed as %+v, want state disabled with a reason", eps[0])
	}

	rc.setStatus(200)
	ep, err := c.ResumeEndpoint(ctx, rc.URL())
	if err != nil {
		t.Fatal(err)
	}
	if ep.Disabled || ep.DisabledReason != "" {
		t.Fatalf("resume answered %+v, want enabled", ep)
	}
	waitFor(t, 5*time.Second, "the replica to see it enabled", func() bool {
		v, ok := r.d.Directory().Get(id)
		return ok && !v.Disabled
	})
	publish(t, js, "room-a", "room_finished", "gone-2")
	waitFor(t, 10*time.Second, "a delivery after resume", func() bool { return len(rc.deliveries()) == 1 })
	if got := rc.deliveries()[0].ID; got != "gone-2" {
		t.Errorf("delivered %s after resume, want gone-2", got)
	}
}

func TestEndpointErrors(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	c := newClient(t, ns)

	// No replica yet.
	_, err := c.ListEndpoints(ctx)
	if !errors.Is(err, ErrNoReplica) {
		t.Fatalf("got %v, want ErrNoReplica", err)
	}
	if want := "no roomhook replica answered on roomhook.admin.default.>: is it running?"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	startReplica(t, ns, testConfig("r1", newReceiver(t).URL()))
	for _, tt := range []struct {
		ref  string
		want error
	}{
		{"", ErrBadRequest},
		{"not a url", ErrBadRequest},
		{"ftp://x.example.com/hook", ErrBadRequest},
		{"http://x.example.com:99999/hook", ErrBadRequest},
		{"0123456789abcdef", ErrNotFound},
		{"https://unknown.example.com/hook", ErrNotFound},
	} {
		if _, err := c.PauseEndpoint(ctx, tt.ref); !errors.Is(err, tt.want) {
			t.Errorf("pause %q: got %v, want %v", tt.ref, err, tt.want)
		}
		if _, err := c.ResumeEndpoint(ctx, tt.ref); !errors.Is(err, tt.want) {
			t.Errorf("resume %q: got %v, want %v", tt.ref, err, tt.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://h.example.com/hook":                   "https://h.example.com/hook",
		"https://h.example.com/hook?token=abc":         "https://h.example.com/hook",
		"https://h.example.com/hook?a=1&b=2&flag":      "https://h.example.com/hook",
		"http://127.0.0.1:9000/x?key=a%20b#frag":       "http://127.0.0.1:9000/x",
		"https://user:pw@h.example.com/x":              "https://h.example.com/x",
		"://bad?secret=1":                              "://bad",
		"https://h.example.com/path?":                  "https://h.example.com/path",
		"https://h.example.com/p?sig=" + "x/y+z==&v=2": "https://h.example.com/p",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
