package sender

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomhook/roomhook/egress"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
)

// What the tests read of the limiter's state.

// hostEntries is how many hosts have an entry: an attempt holds or waits for one of its slots.
func (l *connLimiter) hostEntries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}

// attemptsFor is how many attempts hold or wait for a slot of the URL's host.
func (l *connLimiter) attemptsFor(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.hosts[hostKeyOf(u)]; h != nil {
		return h.refs
	}
	return 0
}

// slotsInUse is how many replica-wide slots are held.
func (l *connLimiter) slotsInUse() int { return len(l.total) }

// longTimeout is the attempt timeout of tests in which no attempt is meant to time out: a
// Send that returned through it would make the test fail on the verdict, not hang it.
const longTimeout = time.Minute

// promptly bounds how long a test waits for something that should happen at once.
const promptly = 10 * time.Second

// receiver is a loopback HTTP receiver that counts requests, the most it has had in progress
// at once (shared between receivers through inFlight), and, when hang is set, holds every
// request until released.
type receiver struct {
	URL      string
	requests atomic.Int32
	arrived  chan struct{} // one value per request, as it arrives
	release  func()        // lets held requests, and later ones, answer
}

// gauge counts requests in progress, over one receiver or several, and keeps the peak.
type gauge struct {
	now, peak atomic.Int32
}

func (g *gauge) enter() {
	n := g.now.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

func newReceiver(t *testing.T, hang bool, inFlight *gauge) *receiver {
	t.Helper()
	if inFlight == nil {
		inFlight = new(gauge)
	}
	released := make(chan struct{})
	var once sync.Once
	rc := &receiver{arrived: make(chan struct{}, 1000), release: func() { once.Do(func() { close(released) }) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.enter()
		rc.requests.Add(1)
		rc.arrived <- struct{}{}
		if hang {
			select {
			case <-released:
			case <-r.Context().Done():
			}
		}
		// Out of the gauge before the answer, so the sender's slot is given back (after the
		// answer) only once the gauge counts this request gone.
		inFlight.leave()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	// Registered after srv.Close, so it runs first: Close waits for held handlers.
	t.Cleanup(rc.release)
	rc.URL = srv.URL
	return rc
}

// waitArrivals waits for n requests to have reached rc.
func (rc *receiver) waitArrivals(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(promptly)
	for range n {
		select {
		case <-rc.arrived:
		case <-deadline:
			t.Fatalf("%d requests arrived in %v, want %d", rc.requests.Load(), promptly, n)
		}
	}
}

// waitUntil polls cond, which reads the limiter's state, until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(promptly)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", promptly, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func limitEndpoint(rawURL string) endpoint.Endpoint {
	return endpoint.Endpoint{
		ID:          endpoint.ID(rawURL),
		URL:         rawURL,
		Credentials: signature.Credentials{APIKey: "APIlimittest", APISecret: "limit-test-secret-limit-test-secret"},
	}
}

func limitDelivery() Delivery {
	return Delivery{Body: []byte(`{"event":"room_started","id":"e1","created_at":"1767225600"}`), EventID: "e1"}
}

// sendAll starts n Sends of s to rawURL with ctx and returns the channel their attempts arrive on.
func sendAll(ctx context.Context, s *Sender, rawURL string, n int) <-chan Attempt {
	out := make(chan Attempt, n)
	for range n {
		go func() { out <- s.Send(ctx, limitEndpoint(rawURL), limitDelivery()) }()
	}
	return out
}

// collect waits for n attempts from ch and checks each was delivered.
func collect(t *testing.T, ch <-chan Attempt, n int, what string) {
	t.Helper()
	deadline := time.After(promptly)
	for i := range n {
		select {
		case a := <-ch:
			if a.Verdict != Delivered {
				t.Errorf("%s: attempt %d: %v (status %d, err %v), want delivered", what, i, a.Verdict, a.Status, a.Err)
			}
		case <-deadline:
			t.Fatalf("%s: %d of %d attempts returned within %v", what, i, n, promptly)
		}
	}
}

// checkIdle checks that, with no attempt in flight, the limiter holds nothing: no host entry
// (memory follows live work) and no replica-wide slot.
func checkIdle(t *testing.T, s *Sender) {
	t.Helper()
	if n := s.limit.hostEntries(); n != 0 {
		t.Errorf("%d host entries left with nothing in flight", n)
	}
	if n := s.limit.slotsInUse(); n != 0 {
		t.Errorf("%d replica-wide slots held with nothing in flight", n)
	}
}

// (a) A receiver never has more than the per-host cap of attempts at once, whatever the
// transport allows, and the attempts past it are delivered once slots free.
func TestSendBoundsAttemptsPerHost(t *testing.T) {
	tests := []struct {
		name      string
		transport func(t *testing.T) http.RoundTripper // nil: the Sender's own pool
	}{
		{name: "own pool"},
		{name: "WithTransport without a per-host cap", transport: func(t *testing.T) http.RoundTripper {
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			return tr
		}},
	}
	const perHost, sends = 3, 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inFlight gauge
			rc := newReceiver(t, true, &inFlight)
			opts := []Option{WithMaxConnsPerHost(perHost), WithMaxConns(100), WithTimeout(longTimeout)}
			if tt.transport != nil {
				opts = append(opts, WithTransport(tt.transport(t)))
			}
			s := New(opts...)
			t.Cleanup(s.CloseIdleConnections)

			results := sendAll(context.Background(), s, rc.URL, sends)
			rc.waitArrivals(t, perHost)
			// Every Send has reached the limiter: perHost at the receiver, the rest waiting.
			waitUntil(t, "all Sends at the limiter", func() bool { return s.limit.attemptsFor(rc.URL) == sends })
			if got := rc.requests.Load(); got != perHost {
				t.Errorf("%d requests at the receiver with %d Sends waiting, want %d", got, sends, perHost)
			}
			if got := s.limit.slotsInUse(); got != perHost {
				t.Errorf("%d replica-wide slots held, want %d", got, perHost)
			}
			rc.release()
			collect(t, results, sends, "after release")
			if got := rc.requests.Load(); got != sends {
				t.Errorf("receiver saw %d requests, want %d", got, sends)
			}
			if peak := inFlight.peak.Load(); peak > perHost {
				t.Errorf("receiver had %d requests at once, want at most %d", peak, perHost)
			}
			checkIdle(t, s)
		})
	}
}

// The replica-wide cap bounds the attempts over all hosts together.
func TestSendBoundsAttemptsReplicaWide(t *testing.T) {
	const perHost, total, perReceiver = 3, 4, 3
	var inFlight gauge
	a, b := newReceiver(t, true, &inFlight), newReceiver(t, true, &inFlight)
	s := New(WithMaxConnsPerHost(perHost), WithMaxConns(total), WithTimeout(longTimeout))
	t.Cleanup(s.CloseIdleConnections)

	toA := sendAll(context.Background(), s, a.URL, perReceiver)
	toB := sendAll(context.Background(), s, b.URL, perReceiver)
	waitUntil(t, "all Sends at the limiter", func() bool {
		return s.limit.attemptsFor(a.URL) == perReceiver && s.limit.attemptsFor(b.URL) == perReceiver
	})
	waitUntil(t, "the replica-wide slots taken", func() bool { return s.limit.slotsInUse() == total })
	waitUntil(t, "the slot holders at the receivers", func() bool { return inFlight.now.Load() == total })
	if got := a.requests.Load() + b.requests.Load(); got != total {
		t.Errorf("%d requests at the receivers, want %d", got, total)
	}
	a.release()
	b.release()
	collect(t, toA, perReceiver, "host A")
	collect(t, toB, perReceiver, "host B")
	if peak := inFlight.peak.Load(); peak > total {
		t.Errorf("receivers had %d requests at once, want at most %d", peak, total)
	}
	checkIdle(t, s)
}

// (b) Attempts waiting for a saturated, hanging host hold no replica-wide slot: with more of
// them than there are replica-wide slots, another host is still served at once.
func TestSendWaitersForAHangingHostHoldNoReplicaSlot(t *testing.T) {
	tests := []struct {
		name                  string
		perHost, total, toA   int
		wantHeldWhileAHanging int
	}{
		{name: "more waiters than replica slots", perHost: 2, total: 3, toA: 5, wantHeldWhileAHanging: 2},
		{name: "per-host cap one below the total", perHost: 3, total: 4, toA: 20, wantHeldWhileAHanging: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hanging, healthy := newReceiver(t, true, nil), newReceiver(t, false, nil)
			s := New(WithMaxConnsPerHost(tt.perHost), WithMaxConns(tt.total), WithTimeout(longTimeout))
			t.Cleanup(s.CloseIdleConnections)

			toA := sendAll(context.Background(), s, hanging.URL, tt.toA)
			hanging.waitArrivals(t, tt.perHost)
			waitUntil(t, "all Sends to the hanging host at the limiter", func() bool {
				return s.limit.attemptsFor(hanging.URL) == tt.toA
			})
			if got := s.limit.slotsInUse(); got != tt.wantHeldWhileAHanging {
				t.Errorf("%d replica-wide slots held while host A hangs, want %d (its waiters must hold none)", got, tt.wantHeldWhileAHanging)
			}
			// Bounded by promptly, far under the attempt timeout: a Send stuck behind host A's
			// waiters returns the ctx error instead of hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), promptly)
			defer cancel()
			if a := s.Send(ctx, limitEndpoint(healthy.URL), limitDelivery()); a.Verdict != Delivered {
				t.Fatalf("Send to host B while host A hangs: %v (status %d, err %v), want delivered", a.Verdict, a.Status, a.Err)
			}
			if s.limit.attemptsFor(healthy.URL) != 0 {
				t.Error("host B's entry outlived its attempt")
			}
			hanging.release()
			collect(t, toA, tt.toA, "host A after release")
			checkIdle(t, s)
		})
	}
}

// blockedSend describes a Send that finds no free slot: where it waits, and what holds the slot.
type blockedSend struct {
	name           string
	perHost, total int
	otherHost      bool // the blocked Send goes to another host, so it waits for a replica-wide slot
}

var blockedSends = []blockedSend{
	{name: "host slot", perHost: 1, total: 2},
	{name: "replica-wide slot", perHost: 1, total: 1, otherHost: true},
}

// (c) The wait for a slot is bounded by the attempt's timeout: Retry, ErrTimeout, and no
// request made.
func TestSendWaitForASlotIsBoundedByTheTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tt := range blockedSends {
		t.Run(tt.name, func(t *testing.T) {
			hanging, other := newReceiver(t, true, nil), newReceiver(t, false, nil)
			// The slot holder's attempt must outlast the waiter's timeout, which one Sender's
			// attempts never do (the holder started first, so its timeout ends first): two
			// Senders share one limiter, the holder's with a long timeout.
			holder := New(WithMaxConnsPerHost(tt.perHost), WithMaxConns(tt.total), WithTimeout(longTimeout))
			s := New(WithMaxConnsPerHost(tt.perHost), WithMaxConns(tt.total), WithTimeout(timeout))
			s.limit = holder.limit
			t.Cleanup(holder.CloseIdleConnections)
			t.Cleanup(s.CloseIdleConnections)

			held := sendAll(context.Background(), holder, hanging.URL, 1)
			hanging.waitArrivals(t, 1)
			target := hanging
			if tt.otherHost {
				target = other
			}
			start := time.Now()
			a := s.Send(context.Background(), limitEndpoint(target.URL), limitDelivery())
			elapsed := time.Since(start)
			if a.Verdict != Retry || !errors.Is(a.Err, ErrTimeout) || !errors.Is(a.Err, context.DeadlineExceeded) {
				t.Fatalf("%v (status %d, err %v), want retry with ErrTimeout", a.Verdict, a.Status, a.Err)
			}
			if !strings.Contains(a.Err.Error(), "no connection") {
				t.Errorf("Err %q does not say no connection was free", a.Err)
			}
			if !a.NotSent {
				t.Error("NotSent is false for an attempt that got no connection: the breaker would count it against the receiver")
			}
			if a.Reason() != "timeout" {
				t.Errorf("Reason() = %q, want timeout", a.Reason())
			}
			if elapsed > timeout+2*time.Second {
				t.Errorf("Send took %v with a %v timeout", elapsed, timeout)
			}
			if got := hanging.requests.Load() + other.requests.Load(); got != 1 {
				t.Errorf("receivers saw %d requests, want only the holder's", got)
			}
			hanging.release()
			collect(t, held, 1, "holder")
			checkIdle(t, s)
		})
	}
}

// (d) A Send waiting for a slot returns as soon as its ctx ends, with ctx's error.
func TestSendWaitForASlotEndsWithCtx(t *testing.T) {
	for _, tt := range blockedSends {
		t.Run(tt.name, func(t *testing.T) {
			hanging, other := newReceiver(t, true, nil), newReceiver(t, false, nil)
			s := New(WithMaxConnsPerHost(tt.perHost), WithMaxConns(tt.total), WithTimeout(longTimeout))
			t.Cleanup(s.CloseIdleConnections)

			held := sendAll(context.Background(), s, hanging.URL, 1)
			hanging.waitArrivals(t, 1)
			target, waiting := hanging.URL, 2
			if tt.otherHost {
				target, waiting = other.URL, 1
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			blocked := sendAll(ctx, s, target, 1)
			waitUntil(t, "the Send waiting at the limiter", func() bool { return s.limit.attemptsFor(target) == waiting })
			cancel()
			select {
			case a := <-blocked:
				if a.Verdict != Retry || !errors.Is(a.Err, context.Canceled) || errors.Is(a.Err, ErrTimeout) {
					t.Errorf("%v (status %d, err %v), want retry with context.Canceled", a.Verdict, a.Status, a.Err)
				}
				if a.Reason() != "canceled" {
					t.Errorf("Reason() = %q, want canceled", a.Reason())
				}
			case <-time.After(promptly):
				t.Fatalf("Send still waiting %v after its ctx ended", promptly)
			}
			if got := s.limit.attemptsFor(target); got != waiting-1 {
				t.Errorf("%d attempts at the target host after the cancel, want %d", got, waiting-1)
			}
			if got := hanging.requests.Load() + other.requests.Load(); got != 1 {
				t.Errorf("receivers saw %d requests, want only the holder's", got)
			}
			hanging.release()
			collect(t, held, 1, "holder")
			checkIdle(t, s)
		})
	}
}

// (e) A host's entry lives while attempts hold or wait for its slots and goes with the last,
// whatever the attempt's outcome.
func TestSendHostEntriesFollowLiveWork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	hanging := newReceiver(t, true, nil)
	ok := newReceiver(t, false, nil)
	tests := []struct {
		name    string
		url     string
		verdict Verdict
	}{
		{"delivered", ok.URL, Delivered},
		{"status 503", failing.URL, Retry},
		{"connection refused", refused, Retry},
		{"timeout", hanging.URL, Retry},
	}
	s := New(WithTimeout(200 * time.Millisecond))
	t.Cleanup(s.CloseIdleConnections)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := s.Send(context.Background(), limitEndpoint(tt.url), limitDelivery()); a.Verdict != tt.verdict {
				t.Errorf("%v (status %d, err %v), want %v", a.Verdict, a.Status, a.Err, tt.verdict)
			}
			checkIdle(t, s)
		})
	}

	t.Run("many hosts at once", func(t *testing.T) {
		const hosts, sendsPerHost = 20, 3
		s := New(WithMaxConnsPerHost(2), WithTimeout(longTimeout))
		t.Cleanup(s.CloseIdleConnections)
		receivers := make([]*receiver, hosts)
		results := make([]<-chan Attempt, hosts)
		for i := range receivers {
			receivers[i] = newReceiver(t, true, nil)
			results[i] = sendAll(context.Background(), s, receivers[i].URL, sendsPerHost)
		}
		waitUntil(t, "every Send at the limiter", func() bool {
			for _, rc := range receivers {
				if s.limit.attemptsFor(rc.URL) != sendsPerHost {
					return false
				}
			}
			return true
		})
		if got := s.limit.hostEntries(); got != hosts {
			t.Errorf("%d host entries with %d hosts busy, want %d", got, hosts, hosts)
		}
		for i, rc := range receivers {
			rc.release()
			collect(t, results[i], sendsPerHost, rc.URL)
		}
		checkIdle(t, s)
	})
}

func TestHostKey(t *testing.T) {
	tests := []struct {
		url  string
		want hostKey
	}{
		{"http://hooks.example/a", hostKey{"http", "hooks.example", "80"}},
		{"http://Hooks.EXAMPLE:80/b?x=1", hostKey{"http", "hooks.example", "80"}},
		{"HTTP://hooks.example", hostKey{"http", "hooks.example", "80"}},
		{"https://hooks.example/", hostKey{"https", "hooks.example", "443"}},
		{"https://hooks.example:8443/", hostKey{"https", "hooks.example", "8443"}},
		{"http://user:pw@127.0.0.1:9000/", hostKey{"http", "127.0.0.1", "9000"}},
		{"http://[::1]:9000/", hostKey{"http", "::1", "9000"}},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostKeyOf(u); got != tt.want {
			t.Errorf("hostKeyOf(%s) = %+v, want %+v", tt.url, got, tt.want)
		}
	}
}

// Taking and giving back a free slot, the path of every attempt while nothing is saturated,
// allocates nothing, not even for a host seen for the first time in a while.
func TestLimiterFreePathDoesNotAllocate(t *testing.T) {
	l := newConnLimiter(4, 8)
	u, _ := url.Parse("http://hooks.example/a")
	key := hostKeyOf(u)
	ctx := context.Background()
	// AllocsPerRun truncates the average: the race detector's sync.Pool drops a quarter of
	// what is put back, which stays below one allocation a run.
	if n := testing.AllocsPerRun(1000, func() {
		h, err := l.acquire(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		l.release(key, h)
	}); n != 0 {
		t.Errorf("%v allocations per acquire and release", n)
	}
	if l.hostEntries() != 0 || l.slotsInUse() != 0 {
		t.Error("limiter not empty")
	}
}

func TestConnOptions(t *testing.T) {
	guard, err := egress.New(egress.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		opts                   []Option
		wantPerHost, wantTotal int
	}{
		{"defaults", nil, DefaultMaxConnsPerHost, DefaultMaxConns},
		{"set", []Option{WithMaxConnsPerHost(5), WithMaxConns(50)}, 5, 50},
		{"non-positive ignored", []Option{WithMaxConnsPerHost(0), WithMaxConns(-1)}, DefaultMaxConnsPerHost, DefaultMaxConns},
		{"per host lowered to the total", []Option{WithMaxConnsPerHost(100), WithMaxConns(10)}, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(append(tt.opts, WithGuard(guard))...)
			if s.limit.perHost != tt.wantPerHost || cap(s.limit.total) != tt.wantTotal {
				t.Errorf("limiter %d per host, %d in all; want %d, %d", s.limit.perHost, cap(s.limit.total), tt.wantPerHost, tt.wantTotal)
			}
			for name, rt := range map[string]http.RoundTripper{"own": s.transport, "guarded": s.guarded} {
				tr, ok := rt.(*http.Transport)
				if !ok {
					t.Fatalf("%s pool is %T", name, rt)
				}
				if tr.MaxConnsPerHost != tt.wantPerHost || tr.MaxIdleConnsPerHost != tt.wantPerHost || tr.MaxIdleConns != tt.wantTotal {
					t.Errorf("%s pool: MaxConnsPerHost %d, MaxIdleConnsPerHost %d, MaxIdleConns %d; want %d, %d, %d", name,
						tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tt.wantPerHost, tt.wantPerHost, tt.wantTotal)
				}
			}
		})
	}
}
