package subscriber

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

func testBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "KVLOOP"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// ReadKV delivers every current value matching the filter, deleted keys left out, and returns
// at the end of them; an ended context is its error.
func TestReadKVDeliversTheCurrentValues(t *testing.T) {
	t.Parallel()
	kv := testBucket(t)
	ctx := context.Background()
	for _, k := range []string{"a.1", "a.2", "a.3", "b.1"} {
		if _, err := kv.PutString(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.PutString(ctx, "a.1", "v-a.1-again"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "a.2"); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if err := ReadKV(ctx, kv, "a.*", func(e jetstream.KeyValueEntry) { got[e.Key()] = string(e.Value()) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a.1"] != "v-a.1-again" || got["a.3"] != "v-a.3" {
		t.Errorf("ReadKV delivered %v, want a.1 (latest) and a.3", got)
	}

	empty := 0
	if err := ReadKV(ctx, kv, "c.*", func(jetstream.KeyValueEntry) { empty++ }); err != nil || empty != 0 {
		t.Errorf("ReadKV of no keys: %d entries, %v; want none, nil", empty, err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := ReadKV(cancelled, kv, jetstream.AllKeys, func(jetstream.KeyValueEntry) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadKV with an ended context: %v, want context.Canceled", err)
	}
}

// FollowKV reports the current values, then loaded, then every later put and delete, and
// returns nil when its context ends.
func TestFollowKVFollowsUntilTheContextEnds(t *testing.T) {
	t.Parallel()
	kv := testBucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := kv.PutString(ctx, "k.1", "one"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	loaded := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- FollowKV(ctx, kv, "k.*", func() { close(loaded) }, func(e jetstream.KeyValueEntry) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, e.Operation().String()+" "+e.Key())
		})
	}()
	select {
	case <-loaded:
	case <-time.After(10 * time.Second):
		t.Fatal("FollowKV never reported the current values loaded")
	}
	if _, err := kv.PutString(ctx, "k.2", "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "other", "ignored"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "k.1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"KeyValuePutOp k.1", "KeyValuePutOp k.2", "KeyValueDeleteOp k.1"}
	natstest.WaitFor(t, 10*time.Second, "FollowKV to see the put and the delete", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= len(want)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("FollowKV returned %v when its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("FollowKV did not return when its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("FollowKV saw %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("FollowKV saw %v, want %v", seen, want)
			break
		}
	}
}

type counter struct {
	N    int    `json:"n"`
	Note string `json:"note,omitempty"`
}

// UpdateJSON applies the change again to a record another writer changed under it, so no
// write is lost, and tells a missing or unreadable record apart.
func TestUpdateJSONRetriesOnConflict(t *testing.T) {
	t.Parallel()
	kv := testBucket(t)
	ctx := context.Background()
	if _, err := kv.PutString(ctx, "c", `{"n":0}`); err != nil {
		t.Fatal(err)
	}
	raced := false
	rec, rev, err := UpdateJSON(ctx, kv, "c", func(c *counter) {
		if !raced {
			raced = true
			// Another writer gets in between this read and its write.
			if _, err := kv.PutString(ctx, "c", `{"n":10,"note":"other"}`); err != nil {
				t.Error(err)
			}
		}
		c.N++
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.N != 11 || rec.Note != "other" {
		t.Errorf("UpdateJSON wrote %+v, want the change applied to the other writer's record (n 11, note other)", rec)
	}
	e, err := kv.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision() != rev || string(e.Value()) != `{"n":11,"note":"other"}` {
		t.Errorf("bucket holds %s at revision %d; UpdateJSON said revision %d", e.Value(), e.Revision(), rev)
	}

	called := false
	if _, _, err := UpdateJSON(ctx, kv, "missing", func(*counter) { called = true }); !errors.Is(err, jetstream.ErrKeyNotFound) || called {
		t.Errorf("UpdateJSON of a missing key: %v (change called: %v), want ErrKeyNotFound", err, called)
	}
	if _, err := kv.PutString(ctx, "bad", "not json"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := UpdateJSON(ctx, kv, "bad", func(*counter) { called = true }); err == nil || called {
		t.Errorf("UpdateJSON of an unreadable record: %v (change called: %v), want an error", err, called)
	}

	always := 0
	_, _, err = UpdateJSON(ctx, kv, "c", func(c *counter) {
		always++
		if _, err := kv.PutString(ctx, "c", `{"n":0}`); err != nil {
			t.Error(err)
		}
	})
	if !errors.Is(err, ErrTooManyUpdates) || always != updateTries {
		t.Errorf("UpdateJSON under constant change: %v after %d tries, want ErrTooManyUpdates after %d", err, always, updateTries)
	}
}
