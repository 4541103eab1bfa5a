package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

// TestSweep: a room's registration goes once its grace has passed after room_finished, not
// before; a room that did not finish stays; a new owner of the partition sweeps what its
// predecessor saw finish; and a sweep with nothing due asks nothing of NATS, however many
// rooms are registered.
func TestSweep(t *testing.T) {
	js, kv := newBucket(t)
	ctx := context.Background()
	const grace = time.Minute
	finished := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	registered := func(room string) bool {
		t.Helper()
		_, err := kv.Get(ctx, Key(0, room))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	first := New(kv, grace, 0)
	for i, room := range []string{"done-early", "done-late", "live", "other"} {
		if err := first.Register(ctx, room, []string{"https://lms.example/" + room}, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Finish(ctx, "done-early", finished); err != nil {
		t.Fatal(err)
	}
	if err := first.Finish(ctx, "done-late", finished.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := first.Sweep(ctx, finished.Add(grace/2)); err != nil || n != 0 {
		t.Fatalf("sweep within the grace removed %d (%v), want 0", n, err)
	}

	// Nothing due: an idle sweep asks nothing of NATS.
	if got := apiRequestsOf(t, js, func() {
		if n, err := first.Sweep(ctx, finished.Add(grace/2)); err != nil || n != 0 {
			t.Fatalf("idle sweep removed %d (%v), want 0", n, err)
		}
	}); got != 0 {
		t.Errorf("an idle sweep made %d JetStream API requests, want 0", got)
	}

	if n, err := first.Sweep(ctx, finished.Add(grace+time.Second)); err != nil || n != 1 {
		t.Fatalf("sweep after done-early's grace removed %d (%v), want 1", n, err)
	}
	if registered("done-early") || !registered("done-late") || !registered("live") {
		t.Fatalf("after the first grace: done-early %v, done-late %v, live %v; want false, true, true",
			registered("done-early"), registered("done-late"), registered("live"))
	}

	// The partition moves: its new owner has seen no room_finished, yet sweeps done-late.
	next := New(kv, grace, 0)
	if n, err := next.Sweep(ctx, finished.Add(time.Hour+grace+time.Second)); err != nil || n != 1 {
		t.Fatalf("the new owner's sweep removed %d (%v), want 1 (done-late)", n, err)
	}
	if registered("done-late") || !registered("live") || !registered("other") {
		t.Errorf("after the new owner's sweep: done-late %v, live %v, other %v; want false, true, true",
			registered("done-late"), registered("live"), registered("other"))
	}

	// A room created again after it finished is live again.
	if err := next.Finish(ctx, "other", finished); err != nil {
		t.Fatal(err)
	}
	if err := next.Register(ctx, "other", []string{"https://lms.example/other"}, 9); err != nil {
		t.Fatal(err)
	}
	if n, err := next.Sweep(ctx, finished.Add(24*time.Hour)); err != nil || n != 0 || !registered("other") {
		t.Errorf("sweep after a room was created again removed %d (%v), registered %v; want 0, registered", n, err, registered("other"))
	}
}

// TestSweepWave: a wave of rooms that finished together (a school's classes on the hour) is
// forgotten in one sweep, every one of them and nothing else, whatever order the concurrent
// deletes come back in.
func TestSweepWave(t *testing.T) {
	_, kv := newBucket(t)
	ctx := context.Background()
	const grace, wave, live = time.Minute, 3*sweepInFlight + 5, 7
	finished := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	reg := New(kv, grace, 3)
	for i := range wave + live {
		room := fmt.Sprintf("class-%03d", i)
		if err := reg.Register(ctx, room, []string{"https://lms.example/" + room}, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		if i < wave {
			if err := reg.Finish(ctx, room, finished); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := reg.Sweep(ctx, finished.Add(grace+time.Second)); err != nil || n != wave {
		t.Fatalf("sweep after the wave's grace removed %d (%v), want %d", n, err, wave)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for k := range keys.Keys() {
		left = append(left, k)
	}
	want := make([]string, 0, live)
	for i := wave; i < wave+live; i++ {
		want = append(want, Key(3, fmt.Sprintf("class-%03d", i)))
	}
	slices.Sort(left)
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("after the sweep the bucket holds %v, want the live rooms %v", left, want)
	}
	for i := range wave + live {
		room := fmt.Sprintf("class-%03d", i)
		ids, err := reg.Endpoints(ctx, room, finished)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(ids) > 0; got != (i >= wave) {
			t.Errorf("%s: registered %v after the sweep, want %v", room, got, i >= wave)
		}
	}
	if n, err := reg.Sweep(ctx, finished.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("a second sweep removed %d (%v), want 0", n, err)
	}
}

// BenchmarkSweep times the sweep of 1,000 rooms that finished together, one delete at a time
// (as before) and sweepInFlight at a time, on one embedded server and on a 3-node cluster with
// the bucket replicated 3 times: the time the partition's main loop waits, reported per room.
func BenchmarkSweep(b *testing.B) {
	ctx := context.Background()
	for _, where := range []string{"server", "cluster"} {
		var kv jetstream.KeyValue
		if where == "server" {
			_, kv = newBucket(b)
		} else {
			c := natstest.NewCluster(b)
			c.WaitJetStreamReady(b)
			_, js := natstest.Connect(b, c.ClientURLs())
			kv = createBucket(b, js, 3)
		}
		const rooms, grace = 1000, time.Minute
		finished := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		for _, inFlight := range []int{1, sweepInFlight} {
			b.Run(fmt.Sprintf("%s/in_flight=%d", where, inFlight), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					reg := New(kv, grace, 0)
					reg.inFlight = inFlight
					for i := range rooms {
						room := fmt.Sprintf("room-%04d", i)
						if err := reg.Register(ctx, room, nil, uint64(i+1)); err != nil {
							b.Fatal(err)
						}
						if err := reg.Finish(ctx, room, finished); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					if n, err := reg.Sweep(ctx, finished.Add(grace+time.Second)); err != nil || n != rooms {
						b.Fatalf("swept %d (%v), want %d", n, err, rooms)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/rooms, "µs/room")
			})
		}
	}
}

// TestLoad: a partition's new owner reads its share of the bucket once; then the rooms a
// previous owner registered route as before, a room the cache does not hold is not looked up
// in the bucket (a record written there behind the registry's back shows it: it is not seen),
// the rooms the previous owner saw finish are swept without another scan, and once the cache
// is dropped rooms are looked up in the bucket again.
func TestLoad(t *testing.T) {
	js, kv := newBucket(t)
	ctx := context.Background()
	const grace = time.Minute
	finished := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	previous, other := New(kv, grace, 0), New(kv, grace, 1)
	for _, room := range []string{"live", "done"} {
		if err := previous.Register(ctx, room, []string{"https://lms.example/" + room}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := previous.Finish(ctx, "done", finished); err != nil {
		t.Fatal(err)
	}
	if err := other.Register(ctx, "elsewhere", []string{"https://lms.example/elsewhere"}, 2); err != nil {
		t.Fatal(err)
	}

	next := New(kv, grace, 0)
	if err := next.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// Written behind the registry's back, which only a partition's owner may do: a lookup
	// that asked the bucket would find it.
	if err := New(kv, grace, 0).Register(ctx, "behind", []string{"https://lms.example/behind"}, 3); err != nil {
		t.Fatal(err)
	}
	lookup := func(room string) int {
		t.Helper()
		ids, err := next.Endpoints(ctx, room, finished.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	for _, c := range []struct {
		room string
		want int
	}{{"live", 1}, {"done", 1}, {"never-registered", 0}, {"elsewhere", 0}, {"behind", 0}} {
		if got := lookup(c.room); got != c.want {
			t.Errorf("%s after Load: %d endpoints, want %d", c.room, got, c.want)
		}
	}
	// A scan of the bucket would add a consumer's creation.
	if got := apiRequestsOf(t, js, func() {
		if n, err := next.Sweep(ctx, finished.Add(grace+time.Second)); err != nil || n != 1 {
			t.Errorf("sweep after done's grace removed %d (%v), want 1", n, err)
		}
	}); got != 0 {
		t.Errorf("the first sweep after Load made %d JetStream API requests, want 0 (no second scan)", got)
	}

	next.Reset()
	if got := lookup("behind"); got != 1 {
		t.Errorf("behind after Reset: %d endpoints, want 1 (looked up in the bucket)", got)
	}
}
