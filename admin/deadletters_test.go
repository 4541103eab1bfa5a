package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/queue"
)

// deadLetterIDs lists the event ids of dead letters.
func deadLetterIDs(dls []DeadLetter) []string {
	out := make([]string, len(dls))
	for i, dl := range dls {
		out[i] = dl.EventID
	}
	return out
}

// Replaying one room's dead letters re-delivers exactly those, in order, with their original
// ids; they leave the DLQ once delivered, and the other dead letters stay.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	good, flaky := newReceiver(t), newReceiver(t)
	flaky.setStatus(400)
	startReplica(t, ns, testConfig("r1", good.URL(), flaky.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	flakyID := endpoint.ID(flaky.URL())

	var all, roomA []string
	for n := 1; n <= 3; n++ {
		for _, room := range []string{"room-a", "room-b"} {
			id := fmt.Sprintf("ev-%s-%d", room, n)
			publish(t, js, room, "participant_joined", id)
			all = append(all, id)
			if room == "room-a" {
				roomA = append(roomA, id)
			}
		}
	}
	publishGarbage(t, js, "room-z")
	waitDeadLetters(t, c, Filter{Endpoint: flaky.URL()}, len(all))
	waitDeadLetters(t, c, Filter{Reason: deadletter.ReasonInvalid}, 1)
	waitFor(t, 10*time.Second, "the good endpoint to get every event", func() bool { return len(good.deliveries()) == len(all) })

	listed := waitDeadLetters(t, c, Filter{Room: "room-a", Endpoint: flakyID}, len(roomA))
	if got := deadLetterIDs(listed); !slices.Equal(got, roomA) {
		t.Fatalf("room-a dead letters %v, want %v", got, roomA)
	}
	for _, dl := range listed {
		if dl.Reason != deadletter.ReasonRejected || dl.LastStatus != 400 || dl.Attempts != 1 ||
			dl.EndpointID != flakyID || dl.EndpointURL != flaky.URL() || dl.Event != "participant_joined" ||
			dl.EventSeq == 0 || dl.Time.IsZero() || dl.BodyBytes == 0 {
			t.Errorf("dead letter %+v: fields not as recorded", dl)
		}
	}
	before := waitDeadLetters(t, c, Filter{}, len(all)+1)

	// Replay room-a only.
	flaky.setStatus(200)
	res, err := c.ReplayDeadLetters(ctx, Filter{Room: "room-a"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != len(roomA) || res.Replayed != len(roomA) || res.SkippedTotal != 0 {
		t.Fatalf("replay answered %+v, want %d matched and replayed", res, len(roomA))
	}
	waitFor(t, 10*time.Second, "the replayed deliveries", func() bool { return len(flaky.deliveries()) >= len(roomA) })
	if got := idsOf(flaky.deliveries()); !slices.Equal(got, roomA) {
		t.Errorf("replay delivered %v, want exactly %v in this order", got, roomA)
	}
	// They leave the DLQ once delivered; the rest stays as it was.
	left := waitDeadLetters(t, c, Filter{}, len(before)-len(roomA))
	var wantLeft []uint64
	for _, dl := range before {
		if dl.Room != "room-a" {
			wantLeft = append(wantLeft, dl.Seq)
		}
	}
	var gotLeft []uint64
	for _, dl := range left {
		gotLeft = append(gotLeft, dl.Seq)
	}
	if !slices.Equal(gotLeft, wantLeft) {
		t.Errorf("dead letters left %v, want %v", gotLeft, wantLeft)
	}

	// Invalid events have no endpoint: skipped, and kept.
	res, err = c.ReplayDeadLetters(ctx, Filter{Reason: deadletter.ReasonInvalid})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 1 || res.Replayed != 0 || res.SkippedTotal != 1 || len(res.Skipped) != 1 {
		t.Errorf("replay of the invalid event answered %+v, want it skipped", res)
	}

	if n := len(good.deliveries()); n != len(all) {
		t.Errorf("the good endpoint got %d deliveries, want %d: a replay went to the wrong endpoint", n, len(all))
	}
}

// A replayed dead letter whose delivery fails again is replaced by a new dead letter: it is
// never lost, even when the replay comes within JetStream's duplicate window of the first
// failure.
func TestReplayFailingAgain(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	flaky := newReceiver(t)
	flaky.setStatus(400)
	startReplica(t, ns, testConfig("r1", flaky.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	roomB := []string{"ev-b-1", "ev-b-2", "ev-b-3"}
	for _, id := range roomB {
		publish(t, js, "room-b", "participant_joined", id)
	}

	flaky.setStatus(422)
	oldB := waitDeadLetters(t, c, Filter{Room: "room-b"}, len(roomB))
	res, err := c.ReplayDeadLetters(ctx, Filter{Room: "room-b"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != len(roomB) {
		t.Fatalf("replay answered %+v", res)
	}
	waitFor(t, 10*time.Second, "the replayed attempts", func() bool { return flaky.requestCount() == 2*len(roomB) })
	waitFor(t, 10*time.Second, "room-b's dead letters to be replaced", func() bool {
		got, err := c.ListDeadLetters(ctx, Filter{Room: "room-b"})
		if err != nil || got.Matched != len(roomB) {
			return false
		}
		for _, dl := range got.DeadLetters {
			if dl.Seq <= oldB[len(oldB)-1].Seq || dl.LastStatus != 422 {
				return false
			}
		}
		return true
	})
	newB, _ := c.ListDeadLetters(ctx, Filter{Room: "room-b"})
	if got := deadLetterIDs(newB.DeadLetters); !slices.Equal(got, roomB) {
		t.Errorf("room-b's new dead letters %v, want %v", got, roomB)
	}
}

// Purge deletes exactly the dead letters selected.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	bad := newReceiver(t)
	bad.setStatus(403)
	startReplica(t, ns, testConfig("r1", bad.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())

	publish(t, js, "room-a", "room_started", "a-1")
	publish(t, js, "room-a", "participant_joined", "a-2")
	publish(t, js, "room-a", "participant_joined", "a-3")
	publish(t, js, "room-b", "room_started", "b-1")
	publish(t, js, "room-a", "room_finished", "a-4")
	publishGarbage(t, js, "room-c")
	all := waitDeadLetters(t, c, Filter{}, 6)

	if _, err := c.PurgeDeadLetters(ctx, PurgeRequest{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("purge without a filter or all: got %v, want ErrBadRequest", err)
	}
	steps := []struct {
		req  PurgeRequest
		gone []string // event ids purged; "" is the invalid event
	}{
		{PurgeRequest{Filter: Filter{Event: "participant_joined"}}, []string{"a-2", "a-3"}},
		{PurgeRequest{Filter: Filter{Room: "room-b", Reason: deadletter.ReasonRejected}}, []string{"b-1"}},
		{PurgeRequest{Filter: Filter{Endpoint: deadletter.ReasonInvalid}}, []string{""}},
		{PurgeRequest{Filter: Filter{Limit: 1}}, []string{"a-1"}},
		{PurgeRequest{All: true}, []string{"a-4"}},
	}
	remaining := all
	for _, step := range steps {
		res, err := c.PurgeDeadLetters(ctx, step.req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Purged != uint64(len(step.gone)) {
			t.Errorf("purge %+v: purged %d, want %d", step.req, res.Purged, len(step.gone))
		}
		remaining = slices.DeleteFunc(remaining, func(dl DeadLetter) bool { return slices.Contains(step.gone, dl.EventID) })
		got, err := c.ListDeadLetters(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := deadLetterIDs(got.DeadLetters), deadLetterIDs(remaining); !slices.Equal(g, w) {
			t.Errorf("after purge %+v: left %v, want %v", step.req, g, w)
		}
	}
}

// dlq list filters by time and limit, and dlq show returns the body.
func TestListAndShow(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	bad := newReceiver(t)
	bad.setStatus(404)
	startReplica(t, ns, testConfig("r1", bad.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())

	publish(t, js, "room-a", "room_started", "early")
	first := waitDeadLetters(t, c, Filter{}, 1)[0]
	// The stream stamps each dead letter when it stores it, and the next ones are stored after
	// the first was listed, so a nanosecond past the first's time splits them.
	mid := first.Time.Add(time.Nanosecond)
	publishGarbage(t, js, "room-z")
	waitDeadLetters(t, c, Filter{}, 2)
	publish(t, js, "room-a", "room_finished", "late")
	waitDeadLetters(t, c, Filter{}, 3)

	for _, tt := range []struct {
		name string
		f    Filter
		want []string
		n    int // matched
	}{
		{"since", Filter{Since: mid}, []string{"", "late"}, 2},
		{"until", Filter{Until: mid}, []string{"early"}, 1},
		{"since after the last", Filter{Since: time.Now().Add(time.Hour)}, []string{}, 0},
		{"limit", Filter{Limit: 2}, []string{"early", ""}, 3},
		{"event", Filter{Event: "room_finished"}, []string{"late"}, 1},
		{"endpoint by id", Filter{Endpoint: endpoint.ID(bad.URL())}, []string{"early", "late"}, 2},
		{"unknown endpoint", Filter{Endpoint: "https://nobody.example.com/x"}, []string{}, 0},
		{"room and reason", Filter{Room: "room-z", Reason: deadletter.ReasonInvalid}, []string{""}, 1},
	} {
		got, err := c.ListDeadLetters(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if ids := deadLetterIDs(got.DeadLetters); !slices.Equal(ids, tt.want) || got.Matched != tt.n {
			t.Errorf("%s: listed %v matched %d, want %v matched %d", tt.name, ids, got.Matched, tt.want, tt.n)
		}
	}
	for _, f := range []Filter{{Reason: "lost"}, {Event: "Room_Started"}, {Limit: MaxListLimit + 1}, {Limit: -1},
		{Since: mid, Until: mid.Add(-time.Second)}, {Endpoint: "nonsense"}} {
		if _, err := c.ListDeadLetters(ctx, f); !errors.Is(err, ErrBadRequest) {
			t.Errorf("list %+v: got %v, want ErrBadRequest", f, err)
		}
	}

	shown, err := c.ShowDeadLetter(ctx, first.Seq)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ID    string `json:"id"`
		Event string `json:"event"`
	}
	if err := json.Unmarshal([]byte(shown.Body), &body); err != nil || body.ID != "early" || body.Event != "room_started" {
		t.Errorf("shown body %q (%v): want the webhook body of event early", shown.Body, err)
	}
	if shown.BodyBytes != len(shown.Body) || shown.BodyBytes != first.BodyBytes || shown.Seq != first.Seq {
		t.Errorf("shown %+v does not match listed %+v", shown.DeadLetter, first)
	}
	invalid := waitDeadLetters(t, c, Filter{Reason: deadletter.ReasonInvalid}, 1)[0]
	shown, err = c.ShowDeadLetter(ctx, invalid.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(shown.BodyBase64); string(raw) != "\xff\xff\xff" || shown.Body != "" {
		t.Errorf("invalid event shown with body %q / %q, want the raw payload in base64", shown.Body, shown.BodyBase64)
	}
	if _, err := c.ShowDeadLetter(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("show 9999: got %v, want ErrNotFound", err)
	}
	if _, err := c.ShowDeadLetter(ctx, 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("show 0: got %v, want ErrBadRequest", err)
	}
}

// Replaying again while the first replay is still queued (here: the endpoint is paused) queues
// nothing more, so the endpoint gets the event once.
func TestReplayTwice(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	rc := newReceiver(t)
	rc.setStatus(400)
	r := startReplica(t, ns, testConfig("r1", rc.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	id := endpoint.ID(rc.URL())
	publish(t, js, "room-a", "room_started", "once-1")
	waitDeadLetters(t, c, Filter{}, 1)

	rc.setStatus(200)
	if _, err := c.PauseEndpoint(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.waitPaused(t, id, true)
	first, err := c.ReplayDeadLetters(ctx, Filter{Endpoint: id})
	if err != nil || first.Replayed != 1 {
		t.Fatalf("first replay: %+v, %v", first, err)
	}
	second, err := c.ReplayDeadLetters(ctx, Filter{Endpoint: id})
	if err != nil || second.Replayed != 0 || second.SkippedTotal != 1 {
		t.Fatalf("second replay: %+v, %v; want it skipped as already queued", second, err)
	}
	if _, err := c.ResumeEndpoint(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitDeadLetters(t, c, Filter{}, 0)
	// A barrier: a later event of the same room reaches the endpoint after anything queued
	// before it, so once it is in, a second copy of once-1 would have arrived too.
	publish(t, js, "room-a", "room_finished", "barrier-1")
	waitFor(t, 10*time.Second, "the barrier event", func() bool {
		return slices.Contains(idsOf(rc.deliveries()), "barrier-1")
	})
	if got := idsOf(rc.deliveries()); !slices.Equal(got, []string{"once-1", "barrier-1"}) {
		t.Errorf("delivered %v, want once-1 exactly once, then the barrier", got)
	}
}

// A dead letter of a global endpoint that no replica is configured with any more is not
// replayed: nothing would ever deliver it.
func TestReplaySkipsEndpointNoReplicaServes(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	startReplica(t, ns, testConfig("r1", newReceiver(t).URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())

	const removed = "https://removed.example.com/hook"
	id := endpoint.ID(removed)
	kv, err := js.KeyValue(ctx, "ROOMHOOK_ENDPOINTS_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(endpoint.Record{URL: removed, Global: true, Updated: time.Now()})
	if _, err := kv.Create(ctx, id, rec); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("roomhook.dlq.default." + id)
	msg.Data = []byte(`{"event":"room_started","id":"old-1"}`)
	for k, v := range map[string]string{
		deadletter.HeaderReason: deadletter.ReasonExhausted, deadletter.HeaderEndpointID: id, deadletter.HeaderEndpointURL: removed,
		queue.HeaderRoom: "room-a", queue.HeaderEvent: "room_started", queue.HeaderEventID: "old-1", queue.HeaderEventSeq: "1",
	} {
		msg.Header.Set(k, v)
	}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}

	res, err := c.ReplayDeadLetters(ctx, Filter{Endpoint: removed})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 1 || res.Replayed != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "not configured") {
		t.Fatalf("replay answered %+v, want the dead letter skipped", res)
	}
	st, err := js.Stream(ctx, "ROOMHOOK_SPILL_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("spill stream holds %d messages, want none queued for the removed endpoint", n)
	}
}

// Deleting a dead letter that is already gone is not an error: a purge racing with a replay
// that was delivered, or with expiry, purges what is left.
func TestDeleteMsgAlreadyGone(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Connect(t, natstest.NewServer(t).ClientURL())
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GONE", Subjects: []string{"gone.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "gone.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		deleted, err := deleteMsg(ctx, st, 1)
		if err != nil || deleted != want {
			t.Errorf("delete #%d: %v, %v; want %v, nil", i+1, deleted, err, want)
		}
	}
	if deleted, err := deleteMsg(ctx, st, 99); err != nil || deleted {
		t.Errorf("delete of a sequence never stored: %v, %v; want false, nil", deleted, err)
	}
}
