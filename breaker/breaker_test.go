package breaker

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

// writeCountingKV is a real bucket that counts the breaker writes tried on it.
type writeCountingKV struct {
	jetstream.KeyValue
	writes atomic.Int64
}

func (kv *writeCountingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	kv.writes.Add(1)
	return kv.KeyValue.Create(ctx, key, value, opts...)
}

func (kv *writeCountingKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	kv.writes.Add(1)
	return kv.KeyValue.Update(ctx, key, value, revision)
}

// TestWaitBacksOffWhileTheBucketFails: every lane of a down endpoint waits in Wait for the
// probe, and when it is due each tries to become the prober. With the health bucket failing
// (here: sealed, so every write fails at once), they must wait longer after each failure, not
// retry at the pace meant for losing a race to another replica's write.
func TestWaitBacksOffWhileTheBucketFails(t *testing.T) {
	_, js := natstest.Connect(t, natstest.NewServer(t).ClientURL())
	ctx := context.Background()
	bucket, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "HEALTH"})
	if err != nil {
		t.Fatal(err)
	}
	kv := &writeCountingKV{KeyValue: bucket}
	b := New(kv, "replica-1", 1, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	const id = "0123456789abcdef"
	b.Report(ctx, id, false, false, "connection refused") // opens it: a probe due in firstProbeAfter
	// A sealed stream refuses every write at once, as a bucket out of space does.
	st, err := js.Stream(ctx, "KV_HEALTH")
	if err != nil {
		t.Fatal(err)
	}
	sealed := st.CachedInfo().Config
	sealed.Sealed = true
	if _, err := js.UpdateStream(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	kv.writes.Store(0)

	const lanes, failingFor = 8, 1500 * time.Millisecond
	wctx, cancel := context.WithTimeout(ctx, firstProbeAfter+failingFor)
	defer cancel()
	var wg sync.WaitGroup
	for range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := b.Wait(wctx, id, time.Second); ok {
				t.Error("Wait let an attempt go while no write to the bucket succeeded")
			}
		}()
	}
	wg.Wait()
	// Backing off from 100 ms, a lane tries about 4 times in 1.5 s. Before, a failed write
	// was followed by a read, whose record woke every lane at once: 23,111 writes.
	if got, most := kv.writes.Load(), int64(lanes*8); got == 0 || got > most {
		t.Errorf("%d lanes tried %d breaker writes in %s of failing writes, want 1 to %d", lanes, got, failingFor, most)
	}
}
