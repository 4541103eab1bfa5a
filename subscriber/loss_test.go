package subscriber

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// blockingConsumer's Info waits for its context, as a request to an absent server does.
type blockingConsumer struct {
	jetstream.Consumer
	asked chan struct{}
}

func (c *blockingConsumer) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c.asked <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestWatchLossStopJoinsCheck(t *testing.T) {
	cons := &blockingConsumer{asked: make(chan struct{}, 2)}
	w := newLossWatch(cons)
	lost, stop := w.lost, w.stop
	w.handle(nil, jetstream.ErrNoHeartbeat)
	w.handle(nil, jetstream.ErrNoHeartbeat) // one check at a time
	<-cons.asked
	start := time.Now()
	stop()
	if d := time.Since(start); d >= lossCheckTimeout {
		t.Errorf("stop took %s: the check was not cancelled", d)
	}
	w.handle(nil, jetstream.ErrNoHeartbeat) // after stop: no check
	if n := len(cons.asked); n != 0 {
		t.Errorf("%d more checks started", n)
	}
	select {
	case <-lost:
		t.Error("lost signalled for a cancelled check")
	default:
	}
	w.handle(nil, jetstream.ErrConsumerDeleted)
	select {
	case <-lost:
	default:
		t.Error("lost not signalled for a deleted consumer")
	}
}
