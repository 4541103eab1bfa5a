package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/subscriber"
)

// barrierEvent is the event each test room ends with, after every event a test resends:
// resending it alone, room by room, is the barrier after which nothing of an earlier resend of
// that room to that endpoint can still arrive, since a room's deliveries to one endpoint go out
// in order. (Unknown event names are delivered as they are.)
const barrierEvent = "barrier"

// startResendReplica starts a replica as startReplica does, with the admin service also told
// the endpoints' event filters (as internal/server wires it).
func startResendReplica(t testing.TB, ns *server.Server, cfg dispatcher.Config) *replica {
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
	svc, err := Start(ctx, nc, Config{
		Region: cfg.Region, Partitions: cfg.Partitions, ReplicaID: cfg.ReplicaID, Version: "dev", Logger: log,
		MaxEventBytes: cfg.MaxEventBytes,
		Delivers:      func(id string) bool { _, ok := d.Directory().Get(id); return ok },
		EventFilter: func(id string) (endpoint.EventFilter, bool) {
			v, ok := d.Directory().Get(id)
			return v.Filter, ok
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return &replica{d: d}
}

// sent is one published event.
type sent struct {
	Room, Event, ID string
	Seq             uint64
}

// publishFull publishes an event as plugNmeet does, with its id and created_at (the body then
// depends on nothing but the event), and urls as a room_created's per-room webhooks.
func publishFull(t testing.TB, js jetstream.JetStream, room, event, id string, urls ...string) sent {
	t.Helper()
	evt := &roomhookv1.Event{
		Id:          proto.String(id),
		Event:       proto.String(event),
		CreatedAt:   proto.Int64(1761815000),
		Room:        &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room), MaxParticipants: proto.Uint32(10)},
		WebhookUrls: urls,
	}
	ack, err := schema.Publish(context.Background(), js, testRegion, evt)
	if err != nil {
		t.Fatal(err)
	}
	return sent{Room: room, Event: event, ID: id, Seq: ack.Sequence}
}

// streamFirst is when the oldest event still in the events stream was stored.
func streamFirst(t testing.TB, js jetstream.JetStream) time.Time {
	t.Helper()
	st, err := js.Stream(context.Background(), schema.EventsStreamName(testRegion))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.FirstTime
}

// barrier resends each room's barrier event alone to the endpoint and waits for them: once they
// are in, every earlier resend of those rooms to it has arrived too. It returns the webhooks
// the receiver accepted after its first n, barriers left out.
func barrier(t testing.TB, c *Client, rc *receiver, since time.Time, n int, rooms ...string) []received {
	t.Helper()
	for _, room := range rooms {
		res, err := c.Resend(context.Background(), ResendRequest{Endpoint: rc.URL(), Since: since, Room: room, Event: barrierEvent})
		if err != nil {
			t.Fatal(err)
		}
		if res.Queued != 1 {
			t.Fatalf("barrier resend of %s answered %+v, want 1 queued", room, res)
		}
	}
	var after []received
	waitFor(t, 15*time.Second, "the barriers at "+rc.URL(), func() bool {
		got := rc.deliveries()
		if len(got) < n {
			return false
		}
		after = got[n:]
		for _, room := range rooms {
			if !slices.ContainsFunc(after, func(h received) bool { return h.Room == room && h.Event == barrierEvent }) {
				return false
			}
		}
		return true
	})
	return slices.DeleteFunc(slices.Clone(after), func(h received) bool { return h.Event == barrierEvent })
}

// firstBodies maps each event id to the body of its first delivery.
func firstBodies(hooks []received) map[string][]byte {
	out := map[string][]byte{}
	for _, h := range hooks {
		if _, ok := out[h.ID]; !ok {
			out[h.ID] = h.Body
		}
	}
	return out
}

// checkResent checks that got is exactly want, each room's events in stream order, each with
// the id and the very bytes of its first delivery.
func checkResent(t testing.TB, got []received, want []sent, original map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("resend delivered %d webhooks %v, want %d %v", len(got), hookIDs(got), len(want), sentIDs(want))
	}
	rooms := map[string]bool{}
	for _, s := range want {
		rooms[s.Room] = true
	}
	for _, h := range got {
		rooms[h.Room] = true
	}
	for room := range rooms {
		var g, w []string
		for _, h := range got {
			if h.Room == room {
				g = append(g, h.ID)
			}
		}
		for _, s := range want {
			if s.Room == room {
				w = append(w, s.ID)
			}
		}
		if !slices.Equal(g, w) {
			t.Errorf("room %s: resent %v, want %v in this order", room, g, w)
		}
	}
	for _, h := range got {
		if orig, ok := original[h.ID]; !ok || !bytes.Equal(h.Body, orig) {
			t.Errorf("resent %s: body %s differs from its first delivery %s", h.ID, h.Body, orig)
		}
	}
}

func hookIDs(hs []received) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

func sentIDs(ss []sent) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// resendFixture is three rooms of events, delivered once to every endpoint, published in
// three batches; then each room's barrier event.
type resendFixture struct {
	ns          *server.Server
	js          jetstream.JetStream
	c           *Client
	main, other *receiver
	filtered    *receiver // global, participant_joined (and barriers) only
	perRoom     *receiver // registered by room-a's room_created only
	rooms       []string
	batches     [3][]sent // published in three batches; none is a barrier
	// mid is between batches 1 and 2, end between 2 and 3, last before the barriers.
	mid, end, last time.Time
	first          time.Time // the events stream's first message
	base           map[*receiver]int
	original       map[string][]byte // first delivery's body by event id (the main endpoint's)
}

func (f *resendFixture) all() []sent { return slices.Concat(f.batches[0], f.batches[1], f.batches[2]) }

func newResendFixture(t *testing.T) *resendFixture {
	t.Helper()
	f := &resendFixture{ns: natstest.NewServer(t), rooms: []string{"room-a", "room.b", "room c"}}
	f.main, f.other, f.filtered, f.perRoom = newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	cfg := testConfig("r1", f.main.URL(), f.other.URL(), f.filtered.URL())
	cfg.Endpoints[2].Filter = endpoint.EventFilter{Include: []string{"participant_joined", barrierEvent}}
	startResendReplica(t, f.ns, cfg)
	f.c = newClient(t, f.ns)
	_, f.js = natstest.Connect(t, f.ns.ClientURL())

	// room-a's first event comes before the room_created that registers the per-room
	// endpoint: that endpoint never got it.
	f.batches[0] = append(f.batches[0], publishFull(t, f.js, "room-a", "room_started", "room-a-early"))
	urls := map[string][]string{"room-a": {f.perRoom.URL()}}
	for _, room := range f.rooms {
		f.batches[0] = append(f.batches[0], publishFull(t, f.js, room, "room_created", room+"-created", urls[room]...))
	}
	for i := 1; i <= 2; i++ {
		for _, room := range f.rooms {
			f.batches[0] = append(f.batches[0], publishFull(t, f.js, room, "participant_joined", fmt.Sprintf("%s-joined-%d", room, i)))
		}
	}
	f.mid = time.Now()
	for i := 1; i <= 3; i++ {
		for _, room := range f.rooms {
			ev := "participant_joined"
			if i == 2 {
				ev = "track_published"
			}
			f.batches[1] = append(f.batches[1], publishFull(t, f.js, room, ev, fmt.Sprintf("%s-%s-%d", room, ev, i)))
		}
	}
	f.end = time.Now()
	for _, room := range f.rooms {
		f.batches[2] = append(f.batches[2], publishFull(t, f.js, room, "participant_left", room+"-left"))
		f.batches[2] = append(f.batches[2], publishFull(t, f.js, room, "room_finished", room+"-finished"))
	}
	f.last = time.Now()
	for _, room := range f.rooms {
		publishFull(t, f.js, room, barrierEvent, room+"-barrier")
	}
	all := f.all()
	f.main.waitCount(t, len(all)+len(f.rooms))
	f.other.waitCount(t, len(all)+len(f.rooms))
	f.filtered.waitCount(t, len(filterSent(all, func(s sent) bool { return s.Event == "participant_joined" }))+len(f.rooms))
	f.perRoom.waitCount(t, len(f.perRoomSent())+1)
	f.original = firstBodies(f.main.deliveries())
	f.first = streamFirst(t, f.js)
	f.base = map[*receiver]int{}
	for _, rc := range []*receiver{f.main, f.other, f.filtered, f.perRoom} {
		f.base[rc] = rc.count()
	}
	return f
}

// perRoomSent is what the per-room endpoint gets: room-a's events from its room_created on.
func (f *resendFixture) perRoomSent() []sent {
	return filterSent(f.all(), func(s sent) bool { return s.Room == "room-a" && s.ID != "room-a-early" })
}

func filterSent(ss []sent, keep func(sent) bool) []sent {
	var out []sent
	for _, s := range ss {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// TestResendWindow: a resend of a time window to one endpoint delivers exactly the window's
// events again, each room in stream order, with their ids and byte-identical bodies; the
// other endpoints get nothing.
func TestResendWindow(t *testing.T) {
	f := newResendFixture(t)
	ctx := context.Background()
	want := f.batches[1]
	res, err := f.c.Resend(ctx, ResendRequest{Endpoint: f.main.URL(), Since: f.mid, Until: f.end})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != len(want) || res.Queued != len(want) || res.Rooms != len(f.rooms) || res.DryRun ||
		res.EndpointID != endpoint.ID(f.main.URL()) || !res.Global || res.NotRouted != 0 || res.Invalid != 0 ||
		res.FirstSeq != want[0].Seq || res.LastSeq != want[len(want)-1].Seq || !res.StreamFirst.Equal(f.first) || res.Nonce == "" {
		t.Errorf("resend answered %+v; want %d matched and queued from %d rooms, seq %d..%d", res, len(want), len(f.rooms),
			want[0].Seq, want[len(want)-1].Seq)
	}
	got := barrier(t, f.c, f.main, f.first, f.base[f.main], f.rooms...)
	checkResent(t, got, want, f.original)

	// The other endpoints got nothing: their own barriers come with nothing before them.
	for _, rc := range []*receiver{f.other, f.filtered} {
		if extra := barrier(t, f.c, rc, f.first, f.base[rc], f.rooms...); len(extra) > 0 {
			t.Errorf("endpoint %s got %v, which was resent to another endpoint", rc.URL(), hookIDs(extra))
		}
	}
	if extra := barrier(t, f.c, f.perRoom, f.first, f.base[f.perRoom], "room-a"); len(extra) > 0 {
		t.Errorf("the per-room endpoint got %v, which was resent to another endpoint", hookIDs(extra))
	}
}

// TestResendSkipsEventsOverMaxEventBytes: an event larger than ROOMHOOK_MAX_EVENT_BYTES is
// dead-lettered as invalid by the replicas, so a resend counts it Invalid and does not queue
// it, while it queues the events around it.
func TestResendSkipsEventsOverMaxEventBytes(t *testing.T) {
	ns := natstest.NewServer(t)
	rc := newReceiver(t)
	cfg := testConfig("r1", rc.URL())
	cfg.MaxEventBytes = 1 << 10
	startResendReplica(t, ns, cfg)
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())
	ctx := context.Background()

	publishFull(t, js, "room-a", "participant_joined", "before")
	big := &roomhookv1.Event{
		Id: proto.String("too-big"), Event: proto.String("participant_joined"), CreatedAt: proto.Int64(1761815000),
		Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("room-a"), Metadata: proto.String(strings.Repeat("m", 2<<10))},
	}
	if _, err := schema.Publish(ctx, js, testRegion, big); err != nil {
		t.Fatal(err)
	}
	publishFull(t, js, "room-a", "participant_joined", "after")
	rc.waitCount(t, 2)
	if ids := hookIDs(rc.deliveries()); len(ids) != 2 || ids[0] != "before" || ids[1] != "after" {
		t.Fatalf("delivered %v; want before and after, the oversized event dead-lettered", ids)
	}

	res, err := c.Resend(ctx, ResendRequest{Endpoint: rc.URL(), Since: streamFirst(t, js)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 2 || res.Queued != 2 || res.Invalid != 1 {
		t.Errorf("resend answered %+v; want 2 matched and queued, the oversized event counted invalid", res)
	}
	publishFull(t, js, "room-a", barrierEvent, "barrier")
	rc.waitCount(t, 5)
	for _, id := range hookIDs(rc.deliveries()) {
		if id == "too-big" {
			t.Fatal("the resend delivered the event the replicas refused as over ROOMHOOK_MAX_EVENT_BYTES")
		}
	}
}

// TestResendFilters: --room and --event narrow a resend; an endpoint's event filter applies;
// a per-room endpoint gets only the events of the rooms that registered it, from their
// room_created on.
func TestResendFilters(t *testing.T) {
	f := newResendFixture(t)
	ctx := context.Background()
	all := f.all()
	n := f.base[f.main]
	steps := []struct {
		name string
		req  ResendRequest
		want []sent
	}{
		{"one room", ResendRequest{Room: "room.b", Since: f.first, Until: f.last},
			filterSent(all, func(s sent) bool { return s.Room == "room.b" })},
		{"one event", ResendRequest{Event: "TRACK_PUBLISHED", Since: f.first},
			filterSent(all, func(s sent) bool { return s.Event == "track_published" })},
		{"one room's event in a window", ResendRequest{Room: "room c", Event: "participant_joined", Since: f.mid, Until: f.end},
			filterSent(f.batches[1], func(s sent) bool { return s.Room == "room c" && s.Event == "participant_joined" })},
	}
	for _, step := range steps {
		step.req.Endpoint = f.main.URL()
		res, err := f.c.Resend(ctx, step.req)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if res.Matched != len(step.want) || res.Queued != len(step.want) {
			t.Errorf("%s: answered %+v, want %d matched and queued", step.name, res, len(step.want))
		}
		got := barrier(t, f.c, f.main, f.first, n, f.rooms...)
		checkResent(t, got, step.want, f.original)
		n = f.main.count()
	}

	// The filtered endpoint takes participant_joined only.
	res, err := f.c.Resend(ctx, ResendRequest{Endpoint: f.filtered.URL(), Since: f.mid, Until: f.end})
	if err != nil {
		t.Fatal(err)
	}
	want := filterSent(f.batches[1], func(s sent) bool { return s.Event == "participant_joined" })
	if res.Matched != len(want) || res.Queued != len(want) || res.NotRouted != len(f.batches[1])-len(want) {
		t.Errorf("filtered endpoint: answered %+v, want %d queued and %d not routed", res, len(want), len(f.batches[1])-len(want))
	}
	checkResent(t, barrier(t, f.c, f.filtered, f.first, f.base[f.filtered], f.rooms...), want, f.original)

	// The per-room endpoint: room-a's events from its room_created on, though the request
	// names no room.
	res, err = f.c.Resend(ctx, ResendRequest{Endpoint: f.perRoom.URL(), Since: f.first, Until: f.last})
	if err != nil {
		t.Fatal(err)
	}
	want = f.perRoomSent()
	if res.Global || res.Matched != len(want) || res.Queued != len(want) || res.Rooms != 1 || res.NotRouted != len(all)-len(want) {
		t.Errorf("per-room endpoint: answered %+v, want %d of room-a queued and %d not routed", res, len(want), len(all)-len(want))
	}
	checkResent(t, barrier(t, f.c, f.perRoom, f.first, f.base[f.perRoom], "room-a"), want, f.original)
	// Naming another room sends nothing either.
	res, err = f.c.Resend(ctx, ResendRequest{Endpoint: f.perRoom.URL(), Since: f.first, Room: "room.b", Until: f.last})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 0 || res.Queued != 0 || res.NotRouted != len(filterSent(all, func(s sent) bool { return s.Room == "room.b" })) {
		t.Errorf("per-room endpoint, another room: answered %+v, want nothing queued", res)
	}
}

// TestResendDryRun: a dry run counts and queues nothing: after it, a real resend of one event
// is all that arrives.
func TestResendDryRun(t *testing.T) {
	f := newResendFixture(t)
	ctx := context.Background()
	res, err := f.c.Resend(ctx, ResendRequest{Endpoint: f.main.URL(), Since: f.first, Until: f.last, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Matched != len(f.all()) || res.Queued != 0 || res.Rooms != len(f.rooms) {
		t.Errorf("dry run answered %+v, want %d matched, nothing queued", res, len(f.all()))
	}
	one := f.batches[1][4]
	res, err = f.c.Resend(ctx, ResendRequest{Endpoint: f.main.URL(), Since: f.mid, Until: f.end, Room: one.Room, Event: one.Event})
	if err != nil {
		t.Fatal(err)
	}
	if res.Queued != 1 {
		t.Fatalf("resend of %s answered %+v, want 1 queued", one.ID, res)
	}
	checkResent(t, barrier(t, f.c, f.main, f.first, f.base[f.main], f.rooms...), []sent{one}, f.original)
}

// TestResendNonce: the same request sent again (the same nonce) within the duplicate window
// queues nothing twice; a new request resends again.
func TestResendNonce(t *testing.T) {
	f := newResendFixture(t)
	ctx := context.Background()
	want := f.batches[1]
	req := ResendRequest{Endpoint: f.main.URL(), Since: f.mid, Until: f.end, Nonce: "retry-me"}
	first, err := f.c.Resend(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.c.Resend(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Queued != len(want) || again.Queued != 0 || again.Duplicates != len(want) || again.Nonce != "retry-me" {
		t.Errorf("same nonce twice answered %+v then %+v, want %d queued once", first, again, len(want))
	}
	checkResent(t, barrier(t, f.c, f.main, f.first, f.base[f.main], f.rooms...), want, f.original)

	n := f.main.count()
	req.Nonce = ""
	res, err := f.c.Resend(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Queued != len(want) || res.Nonce == "" || res.Nonce == "retry-me" {
		t.Errorf("a new request answered %+v, want %d queued again with a new nonce", res, len(want))
	}
	checkResent(t, barrier(t, f.c, f.main, f.first, n, f.rooms...), want, f.original)
}

// TestResendRefusals: no time bound, a since before the stream's first event, an unknown or a
// disabled endpoint, and malformed requests are refused with what to do.
func TestResendRefusals(t *testing.T) {
	ctx := context.Background()
	ns := natstest.NewServer(t)
	good, gone := newReceiver(t), newReceiver(t)
	gone.setStatus(http.StatusGone)
	startResendReplica(t, ns, testConfig("r1", good.URL(), gone.URL()))
	c := newClient(t, ns)
	_, js := natstest.Connect(t, ns.ClientURL())

	// An empty stream: since is still required; any since finds nothing.
	if _, err := c.Resend(ctx, ResendRequest{Endpoint: good.URL()}); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "holds no events") {
		t.Errorf("no since on an empty stream: %v, want a bad request saying the stream holds no events", err)
	}
	if res, err := c.Resend(ctx, ResendRequest{Endpoint: good.URL(), Since: time.Now().Add(-time.Hour)}); err != nil || res.Matched != 0 {
		t.Errorf("resend on an empty stream: %+v, %v; want nothing matched", res, err)
	}

	publishFull(t, js, "room-a", "room_started", "a-1")
	publishFull(t, js, "room-a", "room_finished", "a-2")
	good.waitCount(t, 2)
	first := streamFirst(t, js)
	firstText := first.UTC().Format(time.RFC3339Nano)

	_, err := c.Resend(ctx, ResendRequest{Endpoint: good.URL()})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "since is required") || !strings.Contains(err.Error(), firstText) {
		t.Errorf("no since: %v, want a bad request saying since is required and that the stream reaches back to %s", err, firstText)
	}
	_, err = c.Resend(ctx, ResendRequest{Endpoint: good.URL(), Since: first.Add(-time.Second)})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "before the oldest event") || !strings.Contains(err.Error(), firstText) {
		t.Errorf("since before the stream: %v, want a bad request naming %s", err, firstText)
	}
	res, err := c.Resend(ctx, ResendRequest{Endpoint: good.URL(), Since: first, DryRun: true})
	if err != nil || res.Matched != 2 || !res.StreamFirst.Equal(first) {
		t.Errorf("since at the stream's first event: %+v, %v; want 2 matched and the first time %s", res, err, firstText)
	}

	if _, err := c.Resend(ctx, ResendRequest{Endpoint: "https://nobody.example/hook", Since: first}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown endpoint: %v, want ErrNotFound", err)
	}
	if _, err := c.Resend(ctx, ResendRequest{Endpoint: deadletter.ReasonInvalid, Since: first}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("the invalid pseudo-endpoint: %v, want ErrBadRequest", err)
	}
	for name, r := range map[string]ResendRequest{
		"until before since": {Endpoint: good.URL(), Since: first, Until: first.Add(-time.Minute)},
		"bad event":          {Endpoint: good.URL(), Since: first, Event: "room.started"},
		"bad nonce":          {Endpoint: good.URL(), Since: first, Nonce: "a b"},
		"no endpoint":        {Since: first},
	} {
		if _, err := c.Resend(ctx, r); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}

	// 410 Gone disabled the global endpoint: resume it first.
	waitFor(t, 10*time.Second, "the 410 endpoint disabled", func() bool {
		eps, err := c.ListEndpoints(ctx)
		if err != nil {
			return false
		}
		for _, ep := range eps {
			if ep.ID == endpoint.ID(gone.URL()) && ep.Disabled {
				return true
			}
		}
		return false
	})
	_, err = c.Resend(ctx, ResendRequest{Endpoint: gone.URL(), Since: first})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "disabled") || !strings.Contains(err.Error(), "resume it first") {
		t.Errorf("disabled endpoint: %v, want a bad request telling to resume it first", err)
	}
}

// TestResendIsWrite: resend is a write operation: the read-only operator's NATS user may not
// call it, the full operator may.
func TestResendIsWrite(t *testing.T) {
	if !IsWrite(OpEventsResend) || !slices.Contains(WriteOps(), OpEventsResend) || slices.Contains(ReadOps(), OpEventsResend) {
		t.Fatalf("%s is not listed as a write operation", OpEventsResend)
	}
	if got, want := Subject(testRegion, OpEventsResend), "roomhook.admin."+testRegion+".write."+OpEventsResend; got != want {
		t.Fatalf("subject %s, want %s", got, want)
	}
	// Every user gets its role's permissions: the replica (and the admin service in it)
	// runs as the dispatcher, so resend works with exactly what that role grants. Only the
	// test's own publisher and stream reads run as a user without limits.
	users := []subscriber.User{
		{Name: "dispatcher", Password: "dispatcher-pw", Role: subscriber.RoleDispatcher},
		{Name: "viewer", Password: "viewer-pw", Role: subscriber.RoleReadOnlyOperator},
		{Name: "ops", Password: "ops-pw", Role: subscriber.RoleOperator},
	}
	conf, err := subscriber.Names{Region: testRegion}.AuthorizationConfig(users)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Users = append(parsed.Users, &server.User{Username: "roomhook", Password: "roomhook-pw"})
	ns := natstest.NewServer(t, func(o *server.Options) { o.Users = parsed.Users })
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	rc := newReceiver(t)
	_, js := natstest.Connect(t, ns.ClientURL(), nats.UserInfo("roomhook", "roomhook-pw"), quiet)
	nc, djs := natstest.Connect(t, ns.ClientURL(), nats.UserInfo("dispatcher", "dispatcher-pw"), quiet)
	cfg := testConfig("r1", rc.URL())
	d, err := dispatcher.New(djs, cfg, dispatcher.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "replica ready", d.Ready)
	if _, err := Start(ctx, nc, Config{Region: testRegion, Partitions: cfg.Partitions, ReplicaID: "r1", Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	publishFull(t, js, "room-a", "room_started", "a-1")
	rc.waitCount(t, 1)
	since := streamFirst(t, js)

	vnc, _ := natstest.Connect(t, ns.ClientURL(), nats.UserInfo("viewer", "viewer-pw"), quiet)
	viewer := NewClient(vnc, testRegion, WithTimeout(10*time.Second))
	if _, err := viewer.Resend(context.Background(), ResendRequest{Endpoint: rc.URL(), Since: since, DryRun: true}); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("read-only operator: resend answered %v, want ErrNotPermitted", err)
	}
	if _, err := viewer.ListEndpoints(context.Background()); err != nil {
		t.Errorf("read-only operator: list answered %v", err)
	}
	onc, _ := natstest.Connect(t, ns.ClientURL(), nats.UserInfo("ops", "ops-pw"), quiet)
	ops := NewClient(onc, testRegion, WithTimeout(10*time.Second))
	res, err := ops.Resend(context.Background(), ResendRequest{Endpoint: rc.URL(), Since: since})
	if err != nil || res.Queued != 1 {
		t.Fatalf("operator: resend answered %+v, %v; want 1 queued", res, err)
	}
	rc.waitCount(t, 2)
}
