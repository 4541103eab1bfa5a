package dispatcher

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/sender"
)

// deliveredIDs counts the 2xx deliveries a receiver got per event id.
func deliveredIDs(rc *receiver) map[string]int {
	n := map[string]int{}
	for _, r := range rc.deliveries() {
		n[r.ID]++
	}
	return n
}

// lastDelivery is when a receiver accepted its latest delivery.
func lastDelivery(rc *receiver) time.Time {
	var last time.Time
	for _, r := range rc.deliveries() {
		if r.At.After(last) {
			last = r.At
		}
	}
	return last
}

// scaled is d times f.
func scaled(d time.Duration, f float64) time.Duration { return time.Duration(float64(d) * f) }

// schedulingSlack is how late an attempt may come beyond its jittered delay: timers, goroutine
// scheduling under -race and a loopback round trip.
const schedulingSlack = 75 * time.Millisecond

func TestOrderUnderRetries(t *testing.T) {
	const rooms, perRoom = 4, 20
	const timeout = 150 * time.Millisecond
	// Every fifth event of a room fails its first three attempts, once each way (500, no
	// answer within the sender's timeout, connection reset), in an order that differs between
	// rooms; its fourth attempt is accepted. The other events are accepted at once, so a lane
	// that did not wait for a failing event would deliver its successors first.
	failures := []outcome{{Status: http.StatusInternalServerError}, {Hang: true}, {Reset: true}}
	faulted := func(i int) bool { return i%5 == 2 }
	a := newFaultReceiver(t, func(id string, n int) outcome {
		var r, i int
		if _, err := fmt.Sscanf(id, "ev-%d-%d", &r, &i); err != nil || !faulted(i) || n > len(failures) {
			return outcome{}
		}
		return failures[(r+n)%len(failures)]
	})
	b := newReceiver(t)

	ns := startServer(t, t.TempDir())
	cfg := testConfig("r1", a.URL(), b.URL())
	cfg.Retry = sender.RetrySchedule{Steps: []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond}, Jitter: 0.2}
	startReplica(t, ns, cfg, WithSender(sender.New(sender.WithTimeout(timeout))))
	_, js := connect(t, ns)
	p := publisher{t, js}
	for i := 0; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(fmt.Sprintf("order room %d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
		}
	}

	for name, rc := range map[string]*receiver{"failing endpoint": a.receiver, "healthy endpoint": b} {
		waitFor(t, 20*time.Second, name+" got every event", func() bool { return len(deliveredIDs(rc)) >= rooms*perRoom })
	}
	for name, rc := range map[string]*receiver{"failing endpoint": a.receiver, "healthy endpoint": b} {
		checkOrder(t, name, rc.deliveries(), eventIndex)
		got := deliveredIDs(rc)
		for r := 0; r < rooms; r++ {
			for i := 0; i < perRoom; i++ {
				if id := fmt.Sprintf("ev-%d-%d", r, i); got[id] < 1 {
					t.Errorf("%s: %s never delivered", name, id)
				}
			}
		}
		if len(got) != rooms*perRoom {
			t.Errorf("%s: %d distinct events delivered, want %d", name, len(got), rooms*perRoom)
		}
	}
	// The faults really happened: each faulted event took four requests, the others one.
	for r := 0; r < rooms; r++ {
		for i := 0; i < perRoom; i++ {
			id := fmt.Sprintf("ev-%d-%d", r, i)
			want := 1
			if faulted(i) {
				want = len(failures) + 1
			}
			if n := len(a.attemptsFor(id)); n < want {
				t.Errorf("failing endpoint: %s reached it %d times, want at least %d", id, n, want)
			}
		}
	}
	for id, n := range deliveredIDs(b) {
		if n != 1 {
			t.Errorf("healthy endpoint: %s delivered %d times, want once", id, n)
		}
	}
	// Each room's faulted events cost the failing endpoint well over a second in all; the
	// healthy one must not wait for that.
	if lb, la := lastDelivery(b), lastDelivery(a.receiver); !lb.Before(la) {
		t.Errorf("healthy endpoint finished at %v, after the failing one (%v): it was held up",
			lb.Format(time.StampMilli), la.Format(time.StampMilli))
	}
}

func TestRetryScheduleThenExhausted(t *testing.T) {
	steps := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	const jitter = 0.2
	a := newFaultReceiver(t, func(string, int) outcome { return outcome{Status: http.StatusServiceUnavailable} })

	ns := startServer(t, t.TempDir())
	cfg := testConfig("r1", a.URL())
	cfg.Retry = sender.RetrySchedule{Steps: steps, Jitter: jitter}
	startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	evt := newEvent("retry room", "participant_joined", "ev-retry-1", 1761815000)
	publisher{t, js}.publish(evt)

	id := endpoint.ID(a.URL())
	dls := waitDeadLetters(t, js, dlqSubject(id), 1, 10*time.Second)
	waitSettled(t, js, 10*time.Second) // an attempt after the dead letter would come before this

	tries := a.attemptsFor("ev-retry-1")
	if len(tries) != len(steps) {
		t.Fatalf("attempts = %d, want %d (one per schedule step)", len(tries), len(steps))
	}
	for i := 1; i < len(tries); i++ {
		gap := tries[i].At.Sub(tries[i-1].At)
		lo, hi := scaled(steps[i], 1-jitter), scaled(steps[i], 1+jitter)+schedulingSlack
		if gap < lo || gap > hi {
			t.Errorf("gap before attempt %d = %v, want %v ±%.0f%% (%v..%v)", i+1, gap.Round(time.Millisecond), steps[i], jitter*100, lo, hi)
		}
	}

	if len(dls) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dls))
	}
	dl := dls[0]
	wantBody, err := schema.MarshalBody(evt, schema.Fallback{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"Reason", dl.Reason, deadletter.ReasonExhausted},
		{"Detail", dl.Detail, "status 503"},
		{"EndpointID", dl.EndpointID, id},
		{"EndpointURL", dl.EndpointURL, a.URL()},
		{"Room", dl.Room, "retry room"},
		{"Event", dl.Event, "participant_joined"},
		{"EventID", dl.EventID, "ev-retry-1"},
		{"Attempts", dl.Attempts, len(steps)},
		{"LastStatus", dl.LastStatus, http.StatusServiceUnavailable},
		{"LastError", dl.LastError, ""},
		{"Body", string(dl.Body), string(wantBody)},
		{"Body is what was sent", string(dl.Body), string(tries[0].Body)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("dead letter %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if dl.EventSeq == 0 || dl.Stored.IsZero() {
		t.Errorf("dead letter EventSeq = %d, Stored = %v; want the event's place and time in the events stream", dl.EventSeq, dl.Stored)
	}
	// FirstAttempt is taken just before the first request, LastAttempt just after the last
	// answer.
	first, last := tries[0].At, tries[len(tries)-1].At
	if d := first.Sub(dl.FirstAttempt); d < 0 || d > 250*time.Millisecond {
		t.Errorf("FirstAttempt = %v, first request arrived at %v", dl.FirstAttempt, first)
	}
	if d := dl.LastAttempt.Sub(last); d < 0 || d > 250*time.Millisecond {
		t.Errorf("LastAttempt = %v, last request arrived at %v", dl.LastAttempt, last)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	// Retry-After is honoured up to the schedule's largest step, 1s here; the second step
	// alone would retry after about 100ms.
	steps := []time.Duration{0, 100 * time.Millisecond, time.Second}
	const jitter = 0.2
	rows := []struct {
		name, retryAfter string
		lo, hi           time.Duration
	}{
		{"without Retry-After the schedule applies", "", scaled(steps[1], 1-jitter), scaled(steps[1], 1+jitter) + schedulingSlack},
		{"Retry-After 1 waits a second", "1", time.Second, time.Second + schedulingSlack},
		{"Retry-After is capped at the largest step", "3600", time.Second, time.Second + schedulingSlack},
	}
	first := func(row int) string { return fmt.Sprintf("ra-%d-1", row) }
	a := newFaultReceiver(t, func(id string, n int) outcome {
		for i, row := range rows {
			if id == first(i) && n == 1 {
				return outcome{Status: http.StatusTooManyRequests, RetryAfter: row.retryAfter}
			}
		}
		return outcome{}
	})

	ns := startServer(t, t.TempDir())
	cfg := testConfig("r1", a.URL())
	cfg.Retry = sender.RetrySchedule{Steps: steps, Jitter: jitter}
	startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}
	for i := range rows {
		p.publish(newEvent("retry-after room "+strconv.Itoa(i), "participant_joined", first(i), 1761815000))
	}
	waitFor(t, 10*time.Second, "every event delivered", func() bool { return len(deliveredIDs(a.receiver)) == len(rows) })

	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			tries := a.attemptsFor(first(i))
			if len(tries) != 2 {
				t.Fatalf("attempts = %d, want 2 (429, then 200)", len(tries))
			}
			if gap := tries[1].At.Sub(tries[0].At); gap < row.lo || gap > row.hi {
				t.Errorf("second attempt came %v after the first, want %v..%v", gap.Round(time.Millisecond), row.lo, row.hi)
			}
		})
	}
}

func TestRejectedStatusesDeadLetterAtOnce(t *testing.T) {
	codes := []int{
		http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusUnprocessableEntity, http.StatusFound, // redirects are not followed
	}
	room := func(code int) string { return "rejected room " + strconv.Itoa(code) }
	eventID := func(code, i int) string { return fmt.Sprintf("rj-%d-%d", code, i) }
	a := newFaultReceiver(t, func(id string, _ int) outcome {
		var code, i int
		if _, err := fmt.Sscanf(id, "rj-%d-%d", &code, &i); err == nil && i == 1 {
			return outcome{Status: code}
		}
		return outcome{}
	})

	ns := startServer(t, t.TempDir())
	startReplica(t, ns, testConfig("r1", a.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	for _, code := range codes {
		p.publish(newEvent(room(code), "participant_joined", eventID(code, 1), 1761815000))
		p.publish(newEvent(room(code), "participant_left", eventID(code, 2), 1761815001))
	}
	waitFor(t, 10*time.Second, "every room's second event delivered", func() bool { return len(deliveredIDs(a.receiver)) >= len(codes) })
	dls := waitDeadLetters(t, js, dlqSubject(endpoint.ID(a.URL())), len(codes), 5*time.Second)
	byRoom := map[string][]deadletter.Letter{}
	for _, dl := range dls {
		byRoom[dl.Room] = append(byRoom[dl.Room], dl)
	}
	delivered := deliveredIDs(a.receiver)

	for _, code := range codes {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			if n := len(a.attemptsFor(eventID(code, 1))); n != 1 {
				t.Errorf("the rejected event reached the endpoint %d times, want exactly 1", n)
			}
			got := byRoom[room(code)]
			if len(got) != 1 {
				t.Fatalf("dead letters for the room = %d, want 1", len(got))
			}
			dl := got[0]
			if dl.Reason != deadletter.ReasonRejected || dl.Attempts != 1 || dl.LastStatus != code || dl.EventID != eventID(code, 1) {
				t.Errorf("dead letter: reason %q, attempts %d, last status %d, event %q; want %q, 1, %d, %q",
					dl.Reason, dl.Attempts, dl.LastStatus, dl.EventID, deadletter.ReasonRejected, code, eventID(code, 1))
			}
			if want := "status " + strconv.Itoa(code); !strings.HasPrefix(dl.Detail, want) {
				t.Errorf("detail = %q, want it to start with %q", dl.Detail, want)
			}
			if delivered[eventID(code, 2)] != 1 {
				t.Errorf("the room's next event was delivered %d times, want once", delivered[eventID(code, 2)])
			}
			rejected, next := a.attemptsFor(eventID(code, 1)), a.attemptsFor(eventID(code, 2))
			if len(rejected) > 0 && len(next) > 0 && next[0].At.Before(rejected[0].At) {
				t.Errorf("the room's next event was sent before the rejected one")
			}
		})
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	const queued = 5
	id := func(i int) string { return "gn-" + strconv.Itoa(i) }
	b := newReceiver(t)
	// The first event is answered 410 only once the healthy endpoint has received all the
	// first batch, so the rest of the batch is certainly queued for this endpoint already.
	a := newFaultReceiver(t, func(ev string, _ int) outcome {
		if ev == id(1) {
			for deadline := time.Now().Add(10 * time.Second); b.count() < queued && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			return outcome{Status: http.StatusGone}
		}
		return outcome{}
	})

	ns := startServer(t, t.TempDir())
	startReplica(t, ns, testConfig("r1", a.URL(), b.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	for i := 1; i <= queued; i++ {
		p.publish(newEvent("gone room", "participant_joined", id(i), 1761815000))
	}
	aID := endpoint.ID(a.URL())
	dls := waitDeadLetters(t, js, dlqSubject(aID), queued, 10*time.Second)
	if len(dls) != queued {
		t.Fatalf("dead letters = %d, want %d", len(dls), queued)
	}
	for i, dl := range dls {
		if dl.Reason != deadletter.ReasonGone || dl.EventID != id(i+1) || dl.EndpointID != aID || dl.Room != "gone room" {
			t.Errorf("dead letter %d: reason %q, event %q, endpoint %q, room %q; want %q, %q, %q, %q",
				i, dl.Reason, dl.EventID, dl.EndpointID, dl.Room, deadletter.ReasonGone, id(i+1), aID, "gone room")
		}
		wantAttempts, wantStatus := 0, 0 // disabled before they were tried
		if i == 0 {
			wantAttempts, wantStatus = 1, http.StatusGone
		}
		if dl.Attempts != wantAttempts || dl.LastStatus != wantStatus {
			t.Errorf("dead letter %d (%s): attempts %d, last status %d; want %d, %d",
				i, dl.EventID, dl.Attempts, dl.LastStatus, wantAttempts, wantStatus)
		}
		if i > 0 && !strings.Contains(dl.Detail, "disabled") {
			t.Errorf("dead letter %d detail = %q, want it to say the endpoint is disabled", i, dl.Detail)
		}
	}
	rec := endpointRecord(t, js, aID)
	if !rec.Disabled || !rec.Global || rec.URL != a.URL() || !strings.Contains(rec.Reason, "410") {
		t.Errorf("endpoint record = %+v; want it disabled, global, for %s, with a reason naming 410", rec, a.URL())
	}

	// Later events go to the healthy endpoint only.
	for i := queued + 1; i <= 2*queued; i++ {
		p.publish(newEvent("gone room", "participant_left", id(i), 1761815001))
	}
	p.publish(newEvent("another room", "room_started", "gn-other-1", 1761815001))
	waitFor(t, 10*time.Second, "healthy endpoint got every event", func() bool { return len(deliveredIDs(b)) == 2*queued+1 })
	checkOrder(t, "healthy endpoint", b.deliveries(), eventIndex)
	waitSettled(t, js, 10*time.Second) // a request to the disabled endpoint would come before this
	if n := a.attemptCount(); n != 1 {
		t.Errorf("the disabled endpoint was called %d times, want only the one that answered 410", n)
	}
	if n := a.count(); n != 0 {
		t.Errorf("the disabled endpoint accepted %d deliveries, want 0", n)
	}
}

func TestGoneEndpointLaterEventsDeadLettered(t *testing.T) {
	b := newReceiver(t)
	a := newFaultReceiver(t, func(string, int) outcome { return outcome{Status: http.StatusGone} })

	ns := startServer(t, t.TempDir())
	startReplica(t, ns, testConfig("r1", a.URL(), b.URL()))
	_, js := connect(t, ns)
	p := publisher{t, js}
	aID := endpoint.ID(a.URL())
	p.publish(newEvent("gone room", "participant_joined", "gl-1", 1761815000))
	waitDeadLetters(t, js, dlqSubject(aID), 1, 10*time.Second)
	waitFor(t, 5*time.Second, "endpoint disabled", func() bool { return endpointRecord(t, js, aID).Disabled })

	// Events published after the endpoint was disabled: nothing reaches it, and each is
	// recorded as a dead letter, so that none is lost without a trace for that endpoint.
	for i := 2; i <= 4; i++ {
		p.publish(newEvent("gone room", "participant_left", "gl-"+strconv.Itoa(i), 1761815001))
	}
	waitFor(t, 10*time.Second, "healthy endpoint got every event", func() bool { return len(deliveredIDs(b)) == 4 })
	var dls []deadletter.Letter
	deadline := time.Now().Add(3 * time.Second)
	for len(dls) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		dls = deadLetters(t, js, dlqSubject(aID))
	}
	if len(dls) != 4 {
		t.Fatalf("dead letters for the disabled endpoint = %d, want 4 (the 410 and the 3 later events)", len(dls))
	}
	for i, dl := range dls[1:] {
		if dl.Reason != deadletter.ReasonGone || dl.EventID != "gl-"+strconv.Itoa(i+2) || dl.Attempts != 0 {
			t.Errorf("dead letter %d: reason %q, event %q, attempts %d; want %q, gl-%d, 0", i+1, dl.Reason, dl.EventID, dl.Attempts, deadletter.ReasonGone, i+2)
		}
	}
	if n := a.attemptCount(); n != 1 {
		t.Errorf("the disabled endpoint was called %d times, want 1", n)
	}
}
