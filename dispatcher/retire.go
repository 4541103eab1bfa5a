package dispatcher

import (
	"context"
	"time"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/rooms"
)

// retireEvery retires idle per-room endpoints every interval until ctx ends.
func (d *Dispatcher) retireEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := d.retireIdle(ctx)
		if err != nil {
			d.log.Warn("retiring idle per-room endpoints failed", "error", err)
		} else if n > 0 {
			d.log.Info("retired idle per-room endpoints", "endpoints", n)
		}
	}
}

// retireIdle removes every per-room endpoint that no room has registered any more (its rooms
// finished and were forgotten, or expired) and whose spill queues are empty, with its breaker
// and activity; its dead letters stay. An endpoint registered within the last minutes is
// left alone: its room may be about to be written.
func (d *Dispatcher) retireIdle(ctx context.Context) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	liveIDs, err := rooms.LiveEndpoints(rctx, d.rooms)
	if err != nil {
		return 0, err
	}
	spilled, err := d.spilledEndpoints(rctx, d.names.SpillSubjects())
	if err != nil {
		return 0, err
	}
	for _, id := range spilled {
		liveIDs[id] = true
	}
	views, _ := d.dir.Snapshot()
	retired := 0
	for _, v := range views {
		if v.Global || liveIDs[v.ID] || time.Since(v.Registered) < 2*endpoint.RegisteredRefresh || d.routed(v.ID) {
			continue
		}
		ok, err := d.dir.Retire(rctx, v.ID)
		if err != nil {
			return retired, err
		}
		if !ok {
			continue
		}
		retired++
		d.metrics.EndpointsRetired.Inc()
		d.forgetHealth(rctx, v.ID)
		d.log.Debug("retired per-room endpoint", "endpoint", v.ID, "host", endpoint.URLHost(v.URL))
	}
	return retired, nil
}

// routed reports whether a partition of this replica still holds work for the endpoint.
func (d *Dispatcher) routed(id string) bool {
	for _, pt := range d.ownedPartitions() {
		pt.mu.Lock()
		_, ok := pt.routes[id]
		pt.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// forgetHealth deletes a retired endpoint's breaker and activity records.
func (d *Dispatcher) forgetHealth(ctx context.Context, id string) {
	d.breakers.Forget(ctx, id)
	d.activity.forget(id)
}
