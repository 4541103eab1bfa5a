package subscriber

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// racingJS is a JetStream whose every stream creation loses to a stream that then cannot be
// found, and whose bucket creation always fails, counting the tries. Only what provisioning
// uses is implemented.
type racingJS struct {
	jetstream.JetStream
	creates, buckets atomic.Int32
}

func (js *racingJS) Stream(context.Context, string) (jetstream.Stream, error) {
	return nil, jetstream.ErrStreamNotFound
}

func (js *racingJS) Consumer(context.Context, string, string) (jetstream.Consumer, error) {
	return nil, jetstream.ErrConsumerNotFound
}

func (js *racingJS) CreateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	js.creates.Add(1)
	return nil, jetstream.ErrStreamNameAlreadyInUse
}

func (js *racingJS) CreateOrUpdateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	js.creates.Add(1)
	return nil, jetstream.ErrStreamNameAlreadyInUse
}

func (js *racingJS) CreateOrUpdateKeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	js.buckets.Add(1)
	return nil, errors.New("nats: no response from JetStream")
}

func TestProvisionPartStreamBoundsLostRaces(t *testing.T) {
	js := &racingJS{}
	n := Names{Region: "test"}
	_, err := provisionPartStream(context.Background(), js, n, StreamSettings{Partitions: 4})
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || !strings.Contains(err.Error(), n.PartStream()) {
		t.Fatalf("error %v, want one naming the stream and wrapping ErrStreamNameAlreadyInUse", err)
	}
	if got := js.creates.Load(); got != partStreamTries {
		t.Fatalf("%d creations, want %d", got, partStreamTries)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	js = &racingJS{}
	if _, err := provisionPartStream(ctx, js, n, StreamSettings{Partitions: 4}); !errors.Is(err, context.Canceled) || js.creates.Load() != 1 {
		t.Fatalf("cancelled: %v after %d creations, want context.Canceled after 1", err, js.creates.Load())
	}
}
