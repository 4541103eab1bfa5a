package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema/signature"
)

func newTestBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Connect(t, natstest.NewServer(t).ClientURL())
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "endpoints"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestEnsurePerRoomAfterLosingTheCreateRace(t *testing.T) {
	ctx := context.Background()
	kv := newTestBucket(t)
	const url = "https://example.com/hook"
	first := NewDirectory(kv, signature.Credentials{}, nil, natstest.Logger())
	second := NewDirectory(kv, signature.Credentials{}, nil, natstest.Logger())
	id, err := first.EnsurePerRoom(ctx, url, 0)
	if err != nil || id != ID(url) {
		t.Fatalf("first registration: %q, %v", id, err)
	}
	// second has not seen it: its create conflicts, it reads the record and is done.
	if id, err := second.EnsurePerRoom(ctx, url, 0); err != nil || id != ID(url) {
		t.Fatalf("second registration: %q, %v", id, err)
	}
	if v, ok := second.Get(ID(url)); !ok || v.URL != url {
		t.Fatalf("second directory's view: %+v, %v", v, ok)
	}
}

// A record that keeps the create conflicting and that the directory does not take in (another
// replica's global endpoint) used to recurse without pause until the context ended; the tries
// are bounded now, with waits between them.
func TestEnsurePerRoomGivesUpAfterBoundedConflicts(t *testing.T) {
	ctx := context.Background()
	kv := newTestBucket(t)
	const url = "https://example.com/global"
	b, _ := json.Marshal(Record{URL: url, Global: true, Updated: time.Now().UTC()})
	if _, err := kv.Create(ctx, ID(url), b); err != nil {
		t.Fatal(err)
	}
	d := NewDirectory(kv, signature.Credentials{}, nil, natstest.Logger())
	start := time.Now()
	_, err := d.EnsurePerRoom(ctx, url, 0)
	if !errors.Is(err, errEnsureConflicts) {
		t.Fatalf("error %v, want %v", err, errEnsureConflicts)
	}
	// The nominal waits of the tries add up to about 1.1 s.
	if took := time.Since(start); took < 500*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %s", took)
	}

	// A context that ends during the waits ends EnsurePerRoom with its error.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := d.EnsurePerRoom(cctx, url, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with a 100 ms context: %v, want the deadline", err)
	}
}
