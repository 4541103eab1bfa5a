package dispatcher

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/sender"
)

// reservePort returns a loopback address nothing listens on (connections are refused).
func reservePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// listenReceiver starts rc's handler on addr (the endpoint "comes back").
func listenReceiver(t testing.TB, rc *receiver, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// hangingServer accepts requests and never answers until the client gives up.
func hangingServer(t testing.TB) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice when the client hangs up
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL + "/hang"
}

func isolationConfig(id string, urls ...string) Config {
	c := testConfig(id, urls...)
	c.MaxInFlight = 32
	steps := []time.Duration{0, 100 * time.Millisecond}
	for i := 0; i < 200; i++ {
		steps = append(steps, 200*time.Millisecond)
	}
	c.Retry = sender.RetrySchedule{Steps: steps, Jitter: 0.2}
	return c
}

func publishRooms(t testing.TB, p publisher, rooms, perRoom int) {
	for i := 0; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
		}
	}
}

// TestIsolationFromDeadAndHangingEndpoints: beside a down endpoint, one that accepts and never
// answers and one that answers in 2 s, all for the same rooms, the healthy endpoint gets
// everything about as fast as alone; the down one keeps its backlog in JetStream, not in the
// replica, and gets all of it in order once it is back.
func TestIsolationFromDeadAndHangingEndpoints(t *testing.T) {
	const rooms, perRoom = 50, 100 // 5,000 events
	healthyTime := func(t *testing.T, withBad bool) (time.Duration, func()) {
		ns := startServer(t, t.TempDir())
		healthy := newReceiver(t)
		urls := []string{healthy.URL()}
		deadAddr := reservePort(t)
		dead := newReceiver(t)
		deadURL := "http://" + deadAddr + "/webhook"
		slow := newReceiver(t)
		slow.delay = 2 * time.Second
		if withBad {
			urls = append(urls, deadURL, hangingServer(t), slow.URL())
		}
		metrics := NewMetrics(nil)
		// A timeout above the slow endpoint's 2 s, so that it answers rather than times out.
		rep := startReplica(t, ns, isolationConfig("r1", urls...), WithMetrics(metrics),
			WithSender(sender.New(sender.WithTimeout(3*time.Second))))
		_, js := connect(t, ns)
		start := time.Now()
		publishRooms(t, publisher{t, js}, rooms, perRoom)
		waitFor(t, 60*time.Second, "healthy endpoint gets everything", func() bool { return healthy.count() >= rooms*perRoom })
		took := time.Since(start)
		checkOrder(t, "healthy", healthy.deliveries(), eventIndex)
		if !withBad {
			return took, nil
		}
		return took, func() {
			// The dead endpoint's backlog is in JetStream, not in the replica: the replica
			// holds at most a window of events per partition while it spills them.
			held := testutil.ToFloat64(metrics.Held.WithLabelValues(endpoint.ID(deadURL)))
			cfg := isolationConfig("")
			if limit := float64(cfg.Partitions * rep.d.window()); held > limit {
				t.Errorf("replica holds %v deliveries of the dead endpoint; want at most %v", held, limit)
			}
			// Everything not held by a drainer (at most MaxInFlight per partition) is in the
			// spill stream once the writers have caught up.
			pending := 0
			waitFor(t, 30*time.Second, "the dead endpoint's backlog in the spill stream", func() bool {
				n, err := rep.d.spillCount(context.Background(), rep.d.names.SpillEndpointFilter(endpoint.ID(deadURL)))
				pending = int(n)
				return err == nil && pending >= rooms*perRoom-cfg.Partitions*cfg.MaxInFlight
			})
			t.Logf("dead endpoint: %v held in memory, %d waiting in JetStream", held, pending)
			listenReceiver(t, dead, deadAddr)
			waitFor(t, 60*time.Second, "the dead endpoint's backlog once it is back", func() bool { return distinct(dead) == rooms*perRoom })
			checkOrder(t, "returned endpoint", dead.deliveries(), eventIndex)
			// The slow endpoint is answered one room at a time, 2 s each: far from done, but
			// what it got is in order and it got some.
			if slow.count() == 0 {
				t.Error("the endpoint answering in 2 s got nothing")
			}
			checkOrder(t, "slow endpoint", slow.deliveries(), eventIndex)
		}
	}
	var alone, beside time.Duration
	t.Run("alone", func(t *testing.T) { alone, _ = healthyTime(t, false) })
	t.Run("beside dead, hanging and slow", func(t *testing.T) {
		var after func()
		beside, after = healthyTime(t, true)
		t.Logf("healthy endpoint: %s alone, %s beside a dead, a hanging and a slow endpoint", alone.Round(time.Millisecond), beside.Round(time.Millisecond))
		// Generous bound for a shared CI machine; bench measures the ratio precisely.
		if beside > 2*alone+2*time.Second {
			t.Errorf("healthy endpoint slowed down: %s beside bad endpoints, %s alone", beside, alone)
		}
		after()
	})
}
