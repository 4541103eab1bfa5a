package subscriber

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchLoss returns a Consume option and a channel that is closed when the consumer is gone:
// deleted, or lost by a NATS server that restarted (consumers with memory-storage state do
// not survive a restart). The caller then stops, hands back what it holds and creates the
// consumer again; a work-queue stream still holds every unsettled message.
func WatchLoss(cons jetstream.Consumer) (jetstream.PullConsumeOpt, <-chan struct{}) {
	lost := make(chan struct{})
	var once sync.Once
	signal := func() { once.Do(func() { close(lost) }) }
	var checking sync.Mutex
	handler := func(_ jetstream.ConsumeContext, err error) {
		switch {
		case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
			signal()
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			// Heartbeats stop both when the server is away and when it forgot the consumer.
			if !checking.TryLock() {
				return
			}
			go func() {
				defer checking.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
					signal()
				}
			}()
		}
	}
	return jetstream.ConsumeErrHandler(handler), lost
}
