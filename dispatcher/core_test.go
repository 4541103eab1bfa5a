package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/rooms"
	"github.com/roomhook/roomhook/subscriber"
	"google.golang.org/protobuf/proto"
)

// Tests of delivery core v2 (issue 9): cost follows live work, no event stops anything but
// itself, the subject is the authority, idle per-room endpoints retire, spill and recover.

// testPathHeader carries the request URI a pathReceiver was called on into the recorded
// request, so a test can check which per-room URL got which delivery.
const testPathHeader = "Roomhook-Test-Path"

// newPathReceiver is a receiver that serves every path; each recorded delivery carries the
// request URI (path and query) it came to in testPathHeader.
func newPathReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, tries: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set(testPathHeader, r.URL.RequestURI())
		rc.serve(w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// consumerNames lists the server's consumers that do not drain a spill queue, as
// stream/consumer (description), for diagnosing a count over the bound.
func consumerNames(ns *server.Server) []string {
	jsz, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true})
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			for _, c := range s.Consumer {
				if !strings.HasPrefix(c.Name, "spill_") {
					desc := ""
					if c.Config != nil {
						desc = c.Config.Description + " " + c.Config.FilterSubject
					}
					out = append(out, s.Name+"/"+c.Name+" ("+desc+")")
				}
			}
		}
	}
	return out
}

// consumerCount is how many consumers the server has over every stream, and how many of them
// are spill-queue drainers (spill_<endpoint>_<partition>).
func consumerCount(t testing.TB, ns *server.Server) (total, spill int) {
	t.Helper()
	jsz, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true})
	if err != nil {
		t.Errorf("jsz: %v", err)
		return 0, 0
	}
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			total += len(s.Consumer)
			for _, c := range s.Consumer {
				if strings.HasPrefix(c.Name, "spill_") {
					spill++
				}
			}
		}
	}
	// Consumers being deleted are counted by the server's total but have no details: they
	// were draining spill queues a moment ago (the others are long-lived), so the difference
	// counts as draining.
	if jsz.Consumers > total {
		spill += jsz.Consumers - total
		total = jsz.Consumers
	}
	return total, spill
}

// spillConsumers lists the consumers of the spill stream.
func spillConsumers(t testing.TB, js jetstream.JetStream) []string {
	t.Helper()
	st, err := js.Stream(context.Background(), "ROOMHOOK_SPILL_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	names := st.ConsumerNames(context.Background())
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// spillMsgs is how many deliveries the spill stream holds on subjects matching filter.
func spillMsgs(t testing.TB, js jetstream.JetStream, filter string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "ROOMHOOK_SPILL_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	return subscriber.SpillTotal(info.State.Subjects)
}

func TestCorePerRoomURLsAtScale(t *testing.T) {
	const rooms, perRoom = 1000, 3
	ns := startServer(t, t.TempDir())
	g1, g2 := newReceiver(t), newReceiver(t)
	hooks := []*receiver{newPathReceiver(t), newPathReceiver(t), newPathReceiver(t)}
	cfg := testConfig("r1", g1.URL(), g2.URL())
	partitions := cfg.Partitions
	startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}

	room := func(r int) string { return fmt.Sprintf("room-%d", r) }
	// Every room has its own URL: a path per room, and on every other room a query string
	// too (as LMS plugins put per-meeting tokens there).
	uri := func(r int) string {
		if r%2 == 1 {
			return fmt.Sprintf("/hook/%s?token=t%d", room(r), r)
		}
		return "/hook/" + room(r)
	}
	hookOf := func(r int) *receiver { return hooks[r%len(hooks)] }

	var maxTotal, maxSpill, maxOther atomic.Int64
	var over atomic.Value // the first sample over the bound, as text
	sample := func() {
		total, spill := consumerCount(t, ns)
		if int64(total) > maxTotal.Load() {
			maxTotal.Store(int64(total))
		}
		if int64(spill) > maxSpill.Load() {
			maxSpill.Store(int64(spill))
		}
		if other := int64(total - spill); other > maxOther.Load() {
			maxOther.Store(other)
		}
		// Spill consumers are the endpoints with a backlog being drained; everything else
		// must stay within partitions + 16.
		if total > partitions+16+spill && over.Load() == nil {
			over.Store(fmt.Sprintf("%d consumers (%d draining spill queues) > partitions %d + 16 + %d; the others: %v", total, spill, partitions, spill, consumerNames(ns)))
		}
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				sample()
			}
		}
	}()
	stopSampling := sync.OnceFunc(func() { close(stop); <-sampled })
	defer stopSampling()

	for r := 0; r < rooms; r++ {
		p.publish(roomCreated(room(r), fmt.Sprintf("ev-%s-0", room(r)), hookOf(r).srv.URL+uri(r)))
	}
	for i := 1; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(room(r), "participant_joined", fmt.Sprintf("ev-%s-%d", room(r), i), 0))
		}
	}
	total := rooms * perRoom
	perRoomGot := func() int {
		n := 0
		for _, h := range hooks {
			n += distinct(h)
		}
		return n
	}
	waitFor(t, 60*time.Second, "every delivery, global and per-room", func() bool {
		return distinct(g1) == total && distinct(g2) == total && perRoomGot() == total
	})
	// Drained spill queues lose their consumer; then the count is at its floor.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, s := consumerCount(t, ns); s == 0 {
			break
		}
		if time.Now().After(deadline) {
			left := spillConsumers(t, js)
			st, _ := js.Stream(context.Background(), "ROOMHOOK_SPILL_DEFAULT")
			for i, name := range left {
				if i == 5 {
					break
				}
				c, err := st.Consumer(context.Background(), name)
				if err != nil {
					t.Logf("spill consumer %s: %v", name, err)
					continue
				}
				t.Logf("spill consumer %s left after delivery: %v", name, consumerState(context.Background(), c))
			}
			t.Fatalf("%d spill consumers left %s after every delivery arrived (spill stream holds %d); drained queues must lose their consumer",
				len(left), 15*time.Second, spillMsgs(t, js, "roomhook.spill.default.>"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopSampling()
	sample()
	if end, _ := consumerCount(t, ns); end > partitions+16 {
		t.Errorf("after delivery: %d consumers on the server, want at most partitions + 16 = %d", end, partitions+16)
	}
	if v := over.Load(); v != nil {
		t.Errorf("during the run: %s", v)
	}
	t.Logf("consumers: max %d (max %d draining spill queues, max %d others); %d per-room endpoints", maxTotal.Load(), maxSpill.Load(), maxOther.Load(), rooms)

	checkOrder(t, "global 1", g1.deliveries(), eventIndex)
	checkOrder(t, "global 2", g2.deliveries(), eventIndex)
	for i, h := range hooks {
		got := h.deliveries()
		checkOrder(t, fmt.Sprintf("per-room receiver %d", i), got, eventIndex)
		for _, g := range got {
			var r int
			if _, err := fmt.Sscanf(g.Room, "room-%d", &r); err != nil {
				t.Fatalf("delivery of unknown room %q", g.Room)
			}
			if h != hookOf(r) || g.Header.Get(testPathHeader) != uri(r) {
				t.Errorf("event %s of %s reached receiver %d at %q, want only its room's URL %q", g.ID, g.Room, i, g.Header.Get(testPathHeader), uri(r))
				break
			}
		}
	}
	// Every room's URL got exactly its room's events.
	per := map[string]map[string]bool{}
	for _, h := range hooks {
		for _, g := range h.deliveries() {
			if per[g.Room] == nil {
				per[g.Room] = map[string]bool{}
			}
			per[g.Room][g.ID] = true
		}
	}
	for r := 0; r < rooms; r++ {
		if n := len(per[room(r)]); n != perRoom {
			t.Errorf("%s's URL got %d distinct events, want %d", room(r), n, perRoom)
			break
		}
	}
}

// dlqInvalid reads the invalid dead letters, oldest first.
func dlqInvalid(t testing.TB, js jetstream.JetStream) []deadletter.Letter {
	return deadLetters(t, js, dlqSubject(deadletter.ReasonInvalid))
}

func TestCoreOversizedEventDoesNotStop(t *testing.T) {
	ns := startServer(t, t.TempDir())
	rc := newReceiver(t)
	cfg := testConfig("r1", rc.URL())
	rep := startReplica(t, ns, cfg)
	nc, js := connect(t, ns)
	p := publisher{t, js}
	maxPayload := int(nc.MaxPayload())

	// A 200 KB event, well under ROOMHOOK_MAX_EVENT_BYTES and the server's max payload, whose
	// room metadata of control characters renders to JSON six times its size.
	blowup := newEvent("big", "participant_joined", "bad-blowup", 1761815000)
	blowup.Room.Metadata = proto.String(strings.Repeat("\x01", 200_000))
	blowupData := mustMarshal(t, blowup)
	if len(blowupData) > cfg.MaxEventBytes || len(blowupData) >= maxPayload {
		t.Fatalf("the blow-up event is %d bytes: it must fit ROOMHOOK_MAX_EVENT_BYTES (%d) and max payload (%d)", len(blowupData), cfg.MaxEventBytes, maxPayload)
	}
	// The largest event the server takes into the events stream: it is valid and within
	// ROOMHOOK_MAX_EVENT_BYTES, and copying it into the partition stream adds headers.
	largestEvt := newEvent("big", "participant_joined", "bad-largest", 1761815000)
	largestEvt.Room.Metadata = proto.String(strings.Repeat("m", maxPayload-300))
	largest := mustMarshal(t, largestEvt)
	if len(largest) > cfg.MaxEventBytes || len(largest)+128 > maxPayload {
		t.Fatalf("the largest event is %d bytes", len(largest))
	}

	p.publish(newEvent("big", "participant_joined", "ev-big-0", 0))
	p.publish(newEvent("other", "participant_joined", "ev-other-0", 0))
	p.publishRaw("big", "participant_joined", "bad-blowup", blowupData)
	p.publish(newEvent("big", "participant_joined", "ev-big-1", 0))
	p.publish(newEvent("other", "participant_joined", "ev-other-1", 0))
	p.publishRaw("big", "participant_joined", "bad-largest", largest)
	p.publish(newEvent("big", "participant_joined", "ev-big-2", 0))
	p.publish(newEvent("other", "participant_joined", "ev-other-2", 0))

	want := []string{"ev-big-0", "ev-big-1", "ev-big-2", "ev-other-0", "ev-other-1", "ev-other-2"}
	waitFor(t, 20*time.Second, "the events after the oversized ones, of their room and another", func() bool {
		ids := deliveredIDs(rc)
		for _, id := range want {
			if ids[id] == 0 {
				return false
			}
		}
		return true
	})
	dls := waitDeadLetters(t, js, dlqSubject(deadletter.ReasonInvalid), 2, 10*time.Second)
	if len(dls) != 2 {
		t.Fatalf("%d invalid dead letters, want 2", len(dls))
	}
	for i, id := range []string{"bad-blowup", "bad-largest"} {
		dl := dls[i]
		if dl.Reason != deadletter.ReasonInvalid || dl.Room != "big" || dl.Event != "participant_joined" || dl.EventSeq == 0 {
			t.Errorf("%s: dead letter reason %q room %q event %q seq %d; want invalid, big, participant_joined, its sequence", id, dl.Reason, dl.Room, dl.Event, dl.EventSeq)
		}
		if !strings.Contains(dl.Detail, "max payload") || !strings.Contains(dl.Detail, fmt.Sprint(maxPayload)) {
			t.Errorf("%s: detail %q does not name the server's max payload (%d)", id, dl.Detail, maxPayload)
		}
	}
	// The raw headers carry the cause too, for readers that do not parse dead letters.
	st, err := js.Stream(context.Background(), testDLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject(dlqSubject(deadletter.ReasonInvalid)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Roomhook-Reason") != deadletter.ReasonInvalid || !strings.Contains(m.Header.Get("Roomhook-Detail"), "max payload") {
		t.Errorf("dead letter headers Roomhook-Reason %q, Roomhook-Detail %q; want invalid and the cause", m.Header.Get("Roomhook-Reason"), m.Header.Get("Roomhook-Detail"))
	}
	for id := range deliveredIDs(rc) {
		if strings.HasPrefix(id, "bad-") {
			t.Errorf("oversized event %s was delivered", id)
		}
	}
	checkOrder(t, "receiver", rc.deliveries(), eventIndex)

	// It stays unstopped across a restart: nothing is left to retry.
	rep.stop()
	startReplica(t, ns, testConfig("r2", rc.URL()))
	p.publish(newEvent("big", "participant_left", "ev-big-3", 0))
	waitFor(t, 20*time.Second, "an event after a restart", func() bool { return deliveredIDs(rc)["ev-big-3"] > 0 })
	if n := len(dlqInvalid(t, js)); n != 2 {
		t.Errorf("%d invalid dead letters after a restart, want still 2", n)
	}
}

func TestCoreSubjectIsTheAuthority(t *testing.T) {
	ns := startServer(t, t.TempDir())
	global := newReceiver(t)
	hook := newPathReceiver(t)
	bad := hook.srv.URL + "/hook/smuggled"
	startReplica(t, ns, testConfig("r1", global.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	const room = "auth"

	// 1. The subject says participant_joined; the payload is a room_created with a URL.
	renamed := roomCreated(room, "bad-renamed", bad)
	p.publishRaw(room, "participant_joined", "bad-renamed", mustMarshal(t, renamed))
	// 2. A participant_joined, on its own subject, carrying webhook_urls.
	carrier := newEvent(room, "participant_joined", "bad-carrier", 0)
	carrier.WebhookUrls = []string{bad}
	p.publish(carrier)
	// 3. The subject's name differs from the payload's, with no URLs.
	left := newEvent(room, "participant_left", "bad-left", 0)
	p.publishRaw(room, "participant_joined", "bad-left", mustMarshal(t, left))
	// A valid event of the room: it would reach the smuggled URL if it had been registered.
	p.publish(newEvent(room, "participant_joined", "ev-auth-1", 0))
	// The barrier: a valid room_created registers the same URL for the room, then one more
	// event. The URL's lane for the room is in order, so once it has the barrier, it would
	// have had anything routed to it before.
	p.publish(roomCreated(room, "ev-auth-2", bad))
	p.publish(newEvent(room, "participant_joined", "ev-auth-3", 0))

	waitFor(t, 20*time.Second, "the barrier at the URL", func() bool { return deliveredIDs(hook)["ev-auth-3"] > 0 })
	var ids []string
	for _, g := range hook.deliveries() {
		ids = append(ids, g.ID)
	}
	if fmt.Sprint(ids) != fmt.Sprint([]string{"ev-auth-2", "ev-auth-3"}) {
		t.Errorf("the URL got %v, want only [ev-auth-2 ev-auth-3]: an invalid event registered it or reached it", ids)
	}
	waitFor(t, 10*time.Second, "the valid events at the global endpoint", func() bool { return distinct(global) == 3 })
	for id := range deliveredIDs(global) {
		if strings.HasPrefix(id, "bad-") {
			t.Errorf("invalid event %s was delivered", id)
		}
	}
	dls := waitDeadLetters(t, js, dlqSubject(deadletter.ReasonInvalid), 3, 10*time.Second)
	wantDetail := map[string]string{
		"bad-renamed": `differs from event "participant_joined" in the subject`,
		"bad-carrier": "only room_created may carry webhook_urls",
		"bad-left":    `differs from event "participant_joined" in the subject`,
	}
	if len(dls) != 3 {
		t.Fatalf("%d invalid dead letters, want 3", len(dls))
	}
	for i, id := range []string{"bad-renamed", "bad-carrier", "bad-left"} {
		if dls[i].Reason != deadletter.ReasonInvalid || !strings.Contains(dls[i].Detail, wantDetail[id]) {
			t.Errorf("dead letter %d (%s): reason %q, detail %q; want invalid with %q", i, id, dls[i].Reason, dls[i].Detail, wantDetail[id])
		}
		if dls[i].Event != "participant_joined" {
			t.Errorf("dead letter %d (%s): event %q, want the subject's participant_joined", i, id, dls[i].Event)
		}
	}
}

func TestCoreSubjectIsTheAuthorityRegistersNothing(t *testing.T) {
	// Without a later valid registration: the smuggled URL never becomes an endpoint.
	ns := startServer(t, t.TempDir())
	global := newReceiver(t)
	hook := newPathReceiver(t)
	bad := hook.srv.URL + "/hook/smuggled"
	startReplica(t, ns, testConfig("r1", global.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	p.publishRaw("auth", "participant_joined", "bad-renamed", mustMarshal(t, roomCreated("auth", "bad-renamed", bad)))
	carrier := newEvent("auth", "participant_joined", "bad-carrier", 0)
	carrier.WebhookUrls = []string{bad}
	p.publish(carrier)
	p.publish(newEvent("auth", "participant_joined", "ev-auth-1", 0))
	// The events of a partition are handled one after the other, registration included, so
	// once the next event of the room is delivered, the registry is final for the bad ones.
	waitFor(t, 20*time.Second, "the barrier", func() bool { return deliveredIDs(global)["ev-auth-1"] > 0 })
	kv, err := js.KeyValue(context.Background(), testEndpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), endpoint.ID(bad)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the smuggled URL is in the endpoints bucket (err %v)", err)
	}
	roomsKV, err := js.KeyValue(context.Background(), "ROOMHOOK_ROOMS_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := roomsKV.Get(context.Background(), rooms.Key(queue.Partition("auth", 4), "auth")); err == nil {
		t.Errorf("room auth was registered: %s", e.Value())
	}
	if n := hook.count(); n != 0 {
		t.Errorf("the smuggled URL got %d deliveries, want none", n)
	}
	waitDeadLetters(t, js, dlqSubject(deadletter.ReasonInvalid), 2, 10*time.Second)
}

func TestCoreRetiresIdlePerRoomEndpoints(t *testing.T) {
	ctx := context.Background()
	ns := startServer(t, t.TempDir())
	global := newReceiver(t)
	hook := newPathReceiver(t)
	hook.status = func(r received, _ int) int {
		if r.ID == "ev-ret-0-1" {
			return http.StatusBadRequest // refused for good: a dead letter that must stay
		}
		return http.StatusOK
	}
	cfg := func(id string) Config {
		c := testConfig(id, global.URL())
		c.RoomGrace = time.Second
		c.RetireEvery = time.Second
		return c
	}
	rep := startReplica(t, ns, cfg("r1"))
	_, js := connect(t, ns)
	p := publisher{t, js}
	const roomCount = 4
	url := func(r int) string { return fmt.Sprintf("%s/hook/ret-%d", hook.srv.URL, r) }
	var ids []string
	for r := 0; r < roomCount; r++ {
		ids = append(ids, endpoint.ID(url(r)))
		room := fmt.Sprintf("ret-%d", r)
		p.publish(roomCreated(room, fmt.Sprintf("ev-%s-0", room), url(r)))
		p.publish(newEvent(room, "participant_joined", fmt.Sprintf("ev-%s-1", room), 0))
		p.publish(newEvent(room, "room_finished", fmt.Sprintf("ev-%s-2", room), 0))
	}
	waitFor(t, 20*time.Second, "per-room deliveries", func() bool { return distinct(hook) == 3*roomCount-1 })
	waitDeadLetters(t, js, dlqSubject(ids[0]), 1, 10*time.Second)
	waitFor(t, 10*time.Second, "global deliveries", func() bool { return distinct(global) == 3*roomCount })

	healthKV, err := js.KeyValue(ctx, "ROOMHOOK_HEALTH_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	healthKeys := func(id string) []string {
		lister, err := healthKV.ListKeys(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for k := range lister.Keys() {
			if k == breaker.Key(id) || strings.HasPrefix(k, "activity."+id+".") {
				out = append(out, k)
			}
		}
		return out
	}
	waitFor(t, 20*time.Second, "activity recorded for the per-room endpoints", func() bool {
		for _, id := range ids {
			if len(healthKeys(id)) == 0 {
				return false
			}
		}
		return true
	})

	// The rooms' grace passes and their registrations are swept, as each partition's owner
	// does every minute.
	roomsKV, err := js.KeyValue(ctx, "ROOMHOOK_ROOMS_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	swept := 0
	for part := 0; part < 4; part++ {
		n, err := rooms.New(roomsKV, time.Second, part).Sweep(ctx, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		swept += n
	}
	if swept != roomCount {
		t.Fatalf("swept %d rooms, want %d", swept, roomCount)
	}

	// endpoint.RegisteredRefresh (1 minute) keeps an endpoint registered within 2 minutes from being
	// retired; age the records as if the rooms had registered them long ago.
	epKV, err := js.KeyValue(ctx, testEndpointsBucket)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).UTC()
	for _, id := range ids {
		e, err := epKV.Get(ctx, id)
		if err != nil {
			t.Fatalf("endpoint %s: %v", id, err)
		}
		var rec endpoint.Record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatal(err)
		}
		rec.Registered = old
		b, _ := json.Marshal(rec)
		if _, err := epKV.Update(ctx, id, b, e.Revision()); err != nil {
			t.Fatalf("age endpoint %s: %v", id, err)
		}
	}

	// The owner of partition 0 retires them within RetireEvery.
	waitFor(t, 15*time.Second, "the per-room endpoints retired", func() bool {
		for _, id := range ids {
			if _, err := epKV.Get(ctx, id); !errors.Is(err, jetstream.ErrKeyNotFound) {
				return false
			}
		}
		return true
	})
	// An endpoint's record goes first, its health keys right after it: for the last one
	// retired, a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		keys := healthKeys(id)
		for len(keys) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			keys = healthKeys(id)
		}
		if len(keys) > 0 {
			t.Errorf("retired endpoint %s still has health keys %v 10 s after its record went", id, keys)
		}
		if _, ok := rep.d.Directory().Get(id); ok {
			t.Errorf("retired endpoint %s is still in the replica's directory", id)
		}
		if rep.d.routed(id) {
			t.Errorf("retired endpoint %s still has a route", id)
		}
		for _, pt := range rep.d.ownedPartitions() {
			pt.mu.Lock()
			_, ok := pt.routes[id]
			pt.mu.Unlock()
			if ok {
				t.Errorf("partition %d still has a route to retired endpoint %s", pt.p, id)
			}
		}
	}
	if dls := deadLetters(t, js, dlqSubject(ids[0])); len(dls) != 1 {
		t.Errorf("retired endpoint's dead letters: %d, want its 1 kept", len(dls))
	}
	if cons := spillConsumers(t, js); len(cons) != 0 {
		t.Errorf("spill consumers left: %v", cons)
	}

	// A restart does not bring them back, and a late event of a finished room goes nowhere
	// but to the global endpoint.
	rep.stop()
	rep2 := startReplica(t, ns, cfg("r2"))
	before := hook.count()
	p.publish(newEvent("ret-1", "participant_left", "ev-ret-1-3", 0))
	p.publish(newEvent("after", "participant_joined", "ev-after-0", 0))
	waitFor(t, 20*time.Second, "events after the restart", func() bool {
		return deliveredIDs(global)["ev-ret-1-3"] > 0 && deliveredIDs(global)["ev-after-0"] > 0
	})
	for _, id := range ids {
		if _, err := epKV.Get(ctx, id); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("retired endpoint %s is back in the bucket after a restart (err %v)", id, err)
		}
		if _, ok := rep2.d.Directory().Get(id); ok {
			t.Errorf("retired endpoint %s is back in the directory after a restart", id)
		}
	}
	if n := hook.count(); n != before {
		t.Errorf("a retired endpoint got %d deliveries after the restart", n-before)
	}
}

func TestCoreSpillAndRecover(t *testing.T) {
	ns := startServer(t, t.TempDir())
	healthy := newReceiver(t)
	var failing atomic.Bool
	failing.Store(true)
	flaky := newFaultReceiver(t, func(string, int) outcome {
		if failing.Load() {
			return outcome{Status: http.StatusInternalServerError}
		}
		return outcome{}
	})
	cfg := isolationConfig("r1", healthy.URL(), flaky.URL())
	startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}
	flakyID := endpoint.ID(flaky.URL())
	const rooms, perRoom = 10, 5

	publishRooms(t, p, rooms, perRoom)
	waitFor(t, 20*time.Second, "the healthy endpoint gets everything while the other fails", func() bool {
		return distinct(healthy) == rooms*perRoom
	})
	names := subscriber.Names{Region: "default"}
	filter := names.SpillEndpointFilter(flakyID)
	waitFor(t, 10*time.Second, "the failing endpoint's deliveries in its spill queues", func() bool {
		return spillMsgs(t, js, filter) > 0
	})
	if !failing.Load() || flaky.count() != 0 {
		t.Fatalf("the failing endpoint got %d deliveries while failing", flaky.count())
	}
	// More events while it fails follow the spilled ones.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, perRoom), 1761815000))
	}
	waitFor(t, 10*time.Second, "the healthy endpoint gets the later events", func() bool {
		return distinct(healthy) == rooms*(perRoom+1)
	})
	if n := spillMsgs(t, js, filter); n == 0 {
		t.Errorf("the spill queues are empty while the endpoint still fails")
	}
	if n := spillMsgs(t, js, names.SpillEndpointFilter(endpoint.ID(healthy.URL()))); n != 0 {
		t.Errorf("the healthy endpoint has %d spilled deliveries", n)
	}

	failing.Store(false)
	waitFor(t, 30*time.Second, "the recovered endpoint gets all", func() bool { return distinct(flaky.receiver) == rooms*(perRoom+1) })
	// Once caught up it is back in memory: later events come too.
	for r := 0; r < rooms; r++ {
		p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_left", fmt.Sprintf("ev-%d-%d", r, perRoom+1), 1761815000))
	}
	waitFor(t, 20*time.Second, "events after recovery", func() bool {
		return distinct(flaky.receiver) == rooms*(perRoom+2) && distinct(healthy) == rooms*(perRoom+2)
	})
	checkOrder(t, "healthy", healthy.deliveries(), eventIndex)
	checkOrder(t, "recovered", flaky.deliveries(), eventIndex)
	if dls := deadLetters(t, js, dlqSubject(flakyID)); len(dls) != 0 {
		t.Errorf("%d dead letters for the recovered endpoint, want none", len(dls))
	}
	waitFor(t, 15*time.Second, "no spill consumer and an empty spill stream", func() bool {
		return len(spillConsumers(t, js)) == 0 && spillMsgs(t, js, "roomhook.spill.default.>") == 0
	})
}
