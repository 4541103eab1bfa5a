package dispatcher

import (
	"context"
	"time"

	"github.com/roomhook/roomhook/subscriber"
)

// unroutedEvery is how often a replica counts the events on subjects without an event token
// (subscriber.UnroutedEvents): one request, so that an alert can tell that a publisher sends
// them, which the publisher itself cannot see (its publishes are acknowledged).
const unroutedEvery = 30 * time.Second

// watchUnrouted keeps Metrics.UnroutedEvents. Every replica counts, not only one owner, so
// that the maximum over replicas is the region's count across takeovers and restarts.
func (d *Dispatcher) watchUnrouted(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		n, err := subscriber.UnroutedEvents(rctx, d.js, d.names)
		cancel()
		if err != nil {
			d.log.Debug("counting the events on subjects without an event token failed", "error", err)
			continue
		}
		d.metrics.UnroutedEvents.Set(float64(n))
	}
}
