package subscriber

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lossCheckTimeout bounds the check WatchLoss makes when heartbeats stop.
const lossCheckTimeout = 2 * time.Second

// WatchLoss returns a Consume option and a channel that is closed when the consumer is gone:
// deleted, or lost by a NATS server that restarted (consumers with memory-storage state do
// not survive a restart). The caller then stops, hands back what it holds and creates the
// consumer again; a work-queue stream still holds every unsettled message.
//
// When heartbeats stop, the option asks the server about the consumer in a goroutine of its
// own, bounded by lossCheckTimeout (2s). The caller calls stop once the consume is closed
// (after <-cc.Closed()): it cancels a check in progress and returns when none runs, and the
// option starts none after it.
func WatchLoss(cons jetstream.Consumer) (opt jetstream.PullConsumeOpt, lost <-chan struct{}, stop func()) {
	w := newLossWatch(cons)
	return jetstream.ConsumeErrHandler(w.handle), w.lost, w.stop
}

func newLossWatch(cons jetstream.Consumer) *lossWatch {
	w := &lossWatch{cons: cons, lost: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

type lossWatch struct {
	cons   jetstream.Consumer
	lost   chan struct{}
	once   sync.Once
	ctx    context.Context // ends with stop
	cancel context.CancelFunc

	mu       sync.Mutex // guards checking and stopped; checks.Add only under it, before stop
	checking bool
	stopped  bool
	checks   sync.WaitGroup
}

func (w *lossWatch) signal() { w.once.Do(func() { close(w.lost) }) }

func (w *lossWatch) handle(_ jetstream.ConsumeContext, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		w.signal()
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		// Heartbeats stop both when the server is away and when it forgot the consumer.
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.checking || w.stopped {
			return
		}
		w.checking = true
		w.checks.Add(1)
		go w.check() // joined by stop
	}
}

func (w *lossWatch) check() {
	defer w.checks.Done()
	defer func() {
		w.mu.Lock()
		w.checking = false
		w.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(w.ctx, lossCheckTimeout)
	defer cancel()
	if _, err := w.cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
		w.signal()
	}
}

func (w *lossWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	w.checks.Wait()
}
