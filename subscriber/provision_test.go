package subscriber

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestCreateOrUpdateRetriesBoundedAndStopsWithContext(t *testing.T) {
	ctx := context.Background()
	js := &racingJS{}
	start := time.Now()
	if _, err := createOrUpdateStream(ctx, js, jetstream.StreamConfig{Name: "S"}); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		t.Fatalf("stream: %v", err)
	}
	if _, err := createOrUpdateBucket(ctx, js, jetstream.KeyValueConfig{Bucket: "B"}); err == nil {
		t.Fatal("bucket: no error")
	}
	if js.creates.Load() != provisionTries || js.buckets.Load() != provisionTries {
		t.Fatalf("%d stream and %d bucket tries, want %d of each", js.creates.Load(), js.buckets.Load(), provisionTries)
	}
	// Waits between tries only: about 50+100+200+400 ms each, jittered by at most a quarter.
	if took := time.Since(start); took < 2*750*3/4*time.Millisecond || took > 2*750*5/4*time.Millisecond+time.Second {
		t.Errorf("both took %s", took)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	js = &racingJS{}
	if _, err := createOrUpdateStream(cctx, js, jetstream.StreamConfig{Name: "S"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("stream, cancelled: %v", err)
	}
	if _, err := createOrUpdateBucket(cctx, js, jetstream.KeyValueConfig{Bucket: "B"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("bucket, cancelled: %v", err)
	}
	if js.creates.Load() != 1 || js.buckets.Load() != 1 {
		t.Fatalf("cancelled: %d stream and %d bucket tries, want 1 of each", js.creates.Load(), js.buckets.Load())
	}
}
