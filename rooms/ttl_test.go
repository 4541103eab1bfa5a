package rooms

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/roomhook/roomhook/endpoint"
)

// TestTTL: a room whose record the bucket's TTL removes (it never finished: its media node
// died) is forgotten by its partition's owner at the same moment: an event stored after the
// record expired reaches none of the room's URLs, whether the owner registered the room or
// loaded it; a room_finished then writes nothing back; and the next Sweep drops the room from
// memory, asking nothing of NATS for it. Until the record expires, nothing changes.
func TestTTL(t *testing.T) {
	js, kv := newBucket(t)
	ctx := context.Background()
	const grace, ttl = time.Minute, time.Hour
	url := "https://lms.example/stale"
	owner := New(kv, grace, 0, WithTTL(ttl))
	written := time.Now()
	if err := owner.Register(ctx, "stale", []string{url}, 1); err != nil {
		t.Fatal(err)
	}
	loaded := New(kv, grace, 0, WithTTL(ttl))
	if err := loaded.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for name, reg := range map[string]*Registry{"registering owner": owner, "loading owner": loaded} {
		ids, err := reg.Endpoints(ctx, "stale", written.Add(ttl/2))
		if err != nil || !slices.Equal(ids, []string{endpoint.ID(url)}) {
			t.Errorf("%s, before the TTL: %v (%v), want the room's endpoint", name, ids, err)
		}
		ids, err = reg.Endpoints(ctx, "stale", written.Add(ttl+time.Minute))
		if err != nil || len(ids) != 0 {
			t.Errorf("%s, after the TTL: %v (%v), want none", name, ids, err)
		}
		// Within the TTL a sweep keeps it (and the registering owner's first one reads the
		// partition's share, for rooms a previous owner saw finish).
		if n, err := reg.Sweep(ctx, written.Add(ttl/2)); err != nil || n != 0 {
			t.Errorf("%s: sweep within the TTL deleted %d (%v), want 0", name, n, err)
		}
		if _, held := reg.cache["stale"]; !held {
			t.Errorf("%s dropped the room within its TTL", name)
		}
	}

	before, err := kv.Get(ctx, Key(0, "stale"))
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Finish(ctx, "stale", written.Add(ttl+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if after, err := kv.Get(ctx, Key(0, "stale")); err != nil || after.Revision() != before.Revision() {
		t.Errorf("room_finished after the TTL wrote the record again (revision %d, was %d; %v)", after.Revision(), before.Revision(), err)
	}

	for name, reg := range map[string]*Registry{"registering owner": owner, "loading owner": loaded} {
		if got := apiRequestsOf(t, js, func() {
			if n, err := reg.Sweep(ctx, written.Add(ttl+2*time.Minute)); err != nil || n != 0 {
				t.Errorf("%s: sweep deleted %d (%v), want 0: the TTL removed the record", name, n, err)
			}
		}); got != 0 {
			t.Errorf("%s: the sweep made %d JetStream API requests, want 0", name, got)
		}
		if _, held := reg.cache["stale"]; held {
			t.Errorf("%s still holds the expired room after a sweep", name)
		}
	}
}
