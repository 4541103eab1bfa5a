package dispatcher

// A capacity measurement for docs/architecture.md ("On a cluster"), not a test of behaviour:
//
//	ROOMHOOK_CAPACITY=1 go test -run TestCapacity -count=1 -v ./dispatcher
//
// For each layout it starts the replicas, waits until every partition is owned, then publishes
// 30,000 events of 500 rooms as fast as JetStream takes them (asynchronously) and times them
// from the first publish to the last 2xx at a receiver that answers 200 at once: the rate
// roomhook sustains, publishing and copying into the partition stream included, the receiver
// aside. Everything shares the test machine's CPUs, servers included; the figures are
// upper-bounded by them.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/sender"
)

func TestCapacity(t *testing.T) {
	if os.Getenv("ROOMHOOK_CAPACITY") == "" {
		t.Skip("a measurement: set ROOMHOOK_CAPACITY=1")
	}
	const events, rooms = 30000, 500
	for _, tc := range []struct {
		streams              int // stream replicas: 1 on one server, 3 on the 3-node cluster
		partitions, replicas int
	}{
		{1, 1, 1}, {1, 4, 1}, {3, 1, 1}, {3, 4, 1}, {3, 4, 3},
	} {
		t.Run(fmt.Sprintf("R%d/%d-partitions/%d-replicas", tc.streams, tc.partitions, tc.replicas), func(t *testing.T) {
			url := ""
			if tc.streams == 1 {
				url = natstest.NewServer(t).ClientURL()
			} else {
				url = natstest.NewCluster(t).ClientURLs()
			}
			var got atomic.Int64
			all := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got.Add(1) == events {
					close(all)
				}
			}))
			t.Cleanup(srv.Close)
			cfg := testConfig("", srv.URL+"/webhook")
			cfg.Partitions, cfg.StreamReplicas, cfg.MaxInFlight = tc.partitions, tc.streams, 256
			_, js := natstest.Connect(t, url)
			var reps []*Dispatcher
			for i := 0; i < tc.replicas; i++ {
				c := cfg
				c.ReplicaID = fmt.Sprintf("r%d", i)
				reps = append(reps, startCapacityReplica(t, url, c))
			}
			// Time the steady state: every partition owned, each replica with its share.
			natstest.WaitFor(t, 60*time.Second, "every partition owned, every replica owning some", func() bool {
				owned := map[string]bool{}
				for _, d := range reps {
					if !d.Ready() || len(d.Owned()) == 0 {
						return false
					}
					for _, u := range d.Owned() {
						owned[u] = true
					}
				}
				return len(owned) == tc.partitions
			})

			start := time.Now()
			for i := 0; i < events; i++ {
				room := fmt.Sprintf("room-%d", i%rooms)
				evt := newEvent(room, "participant_joined", fmt.Sprintf("ev-%d", i), 1761815000)
				msg := nats.NewMsg("roomhook.events.default." + room + ".participant_joined")
				msg.Data = mustMarshal(t, evt)
				msg.Header.Set(nats.MsgIdHdr, evt.GetId())
				for {
					_, err := js.PublishMsgAsync(msg)
					if err == nil {
						break
					}
					if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond) // the publisher waits for acks to catch up
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Fatal("publishing did not complete within 60s")
			}
			pubRate := float64(events) / time.Since(start).Seconds()
			select {
			case <-all:
			case <-time.After(5 * time.Minute):
				t.Fatalf("%d of %d delivered after 5 minutes", got.Load(), events)
			}
			took := time.Since(start)
			rate := float64(events) / took.Seconds()
			t.Logf("R%d, %d partitions, %d replicas: publish %.0f events/s stored; delivered %.0f events/s (%d in %s from the first publish), %.0f per partition, %.0f per replica",
				tc.streams, tc.partitions, tc.replicas, pubRate, rate, events, took.Round(time.Millisecond),
				rate/float64(tc.partitions), rate/float64(tc.replicas))
		})
	}
}

// startCapacityReplica runs one dispatcher on its own connection until the test ends.
func startCapacityReplica(t *testing.T, url string, cfg Config) *Dispatcher {
	t.Helper()
	_, js := natstest.Connect(t, url)
	d, err := New(js, cfg, WithLogger(testLogger()), WithSender(sender.New(sender.WithTimeout(5*time.Second))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("replica %s exited: %v", cfg.ReplicaID, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return d
}
