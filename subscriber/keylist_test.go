package subscriber

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

func newKeyList(t testing.TB, nc *nats.Conn, bucket string) *KeyList {
	t.Helper()
	l, err := NewKeyList(nc, bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func liveKeys(t *testing.T, l *KeyList) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := l.LiveKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// LiveKeys lists what Keys would, the keys holding a value, without a consumer: the members
// listing runs every tick on every replica, and on a cluster each consumer is a meta proposal.
func TestKeyListListsTheKeysThatHoldAValue(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	nc, js := natstest.Connect(t, ns.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "LIVE"})
	if err != nil {
		t.Fatal(err)
	}
	l := newKeyList(t, nc, "LIVE")
	if got := liveKeys(t, l); len(got) != 0 {
		t.Fatalf("empty bucket lists %v, want nothing", got)
	}
	for _, k := range []string{"r-a", "r-b", "r-c", "r.d", "r-b"} {
		if _, err := kv.PutString(ctx, k, "beat"); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "r-b"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "r-c"); err != nil {
		t.Fatal(err)
	}
	want, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	before, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const listings = 10
	for range listings {
		if got := liveKeys(t, l); !slices.Equal(got, want) || !slices.Equal(got, []string{"r-a", "r.d"}) {
			t.Fatalf("LiveKeys = %v, want %v as Keys lists", got, want)
		}
	}
	after, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The only JetStream API call between the two is the first AccountInfo itself.
	if calls := after.API.Total - before.API.Total; calls != 1 {
		t.Errorf("%d listings made %d JetStream API calls, want none (direct gets only)", listings, calls-1)
	}

	for _, k := range want {
		if err := kv.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := liveKeys(t, l); len(got) != 0 {
		t.Errorf("after every key was deleted: %v, want nothing", got)
	}
}

// A key whose heartbeat expired (the members bucket's TTL) is not listed: that is how a dead
// replica leaves the member list.
func TestKeyListLeavesOutExpiredKeys(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	nc, js := natstest.Connect(t, ns.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "EXPIRING", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "gone", "beat"); err != nil {
		t.Fatal(err)
	}
	l := newKeyList(t, nc, "EXPIRING")
	if got := liveKeys(t, l); !slices.Equal(got, []string{"gone"}) {
		t.Fatalf("LiveKeys = %v, want [gone]", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := kv.PutString(ctx, "kept", "beat"); err != nil {
			t.Fatal(err)
		}
		got := liveKeys(t, l)
		if slices.Equal(got, []string{"kept"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LiveKeys = %v 10 s after a 1 s TTL, want [kept]", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A listing that ran out of time leaves its answer on the subscription; the next listing must
// not take that older answer for its own.
func TestKeyListIgnoresTheAnswerOfAnEarlierListing(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	nc, js := natstest.Connect(t, ns.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "LATE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "old", "beat"); err != nil {
		t.Fatal(err)
	}
	l := newKeyList(t, nc, "LATE")
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.LiveKeys(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("LiveKeys with an ended context: %v, want context.Canceled", err)
	}
	if _, err := kv.PutString(ctx, "new", "beat"); err != nil {
		t.Fatal(err)
	}
	if got := liveKeys(t, l); !slices.Equal(got, []string{"new", "old"}) {
		t.Errorf("LiveKeys = %v, want [new old] (the earlier listing's answer has no new)", got)
	}
}

// A bucket that is not there is an error, not an empty member list (which would make a
// replica take every unit).
func TestKeyListOfAMissingBucketFails(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	nc, _ := natstest.Connect(t, ns.ClientURL())
	l := newKeyList(t, nc, "NOT_THERE")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := l.LiveKeys(ctx)
	if !errors.Is(err, ErrKeyListFailed) {
		t.Errorf("LiveKeys of a missing bucket = %v, %v; want ErrKeyListFailed", keys, err)
	}
}

// On a 3-node cluster the bucket's followers answer too, and with the current keys.
func TestKeyListOnAClusterFromEveryServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster")
	}
	t.Parallel()
	c := natstest.NewCluster(t)
	c.WaitJetStreamReady(t)
	ctx := context.Background()
	_, js := natstest.Connect(t, c.ClientURLs())
	var kv jetstream.KeyValue
	natstest.WaitFor(t, 30*time.Second, "an R3 bucket", func() bool {
		var err error
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "R3", Replicas: 3})
		return err == nil
	})
	for _, k := range []string{"a", "b"} {
		if _, err := kv.PutString(ctx, k, "beat"); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitStreamReady(t, "", "KV_R3")
	for i := range c.Size() {
		nc, _ := natstest.Connect(t, c.Server(i).ClientURL())
		l := newKeyList(t, nc, "R3")
		// A server learns of the replicas' direct-get subscriptions over its routes, a moment
		// after the stream is current: until then it has no responder for the request.
		natstest.WaitFor(t, 10*time.Second, "both keys listed", func() bool {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			got, err := l.LiveKeys(ctx)
			slices.Sort(got)
			return err == nil && slices.Equal(got, []string{"a", "b"})
		})
	}
}
