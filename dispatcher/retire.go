package dispatcher

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/rooms"
)

// retireEvery retires idle per-room endpoints every interval until ctx ends.
func (d *Dispatcher) retireEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var live liveEndpoints
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := d.retireIdle(ctx, &live)
		if err != nil {
			d.log.Warn("retiring idle per-room endpoints failed", "error", err)
		} else if n > 0 {
			d.log.Info("retired idle per-room endpoints", "endpoints", n)
		}
	}
}

// liveEndpoints are the endpoints that some room registers or whose spill queues hold
// deliveries, as read when the rooms bucket and the spill stream were last in the state
// recorded with them.
type liveEndpoints struct {
	ids   map[string]bool
	rooms streamMark
	spill streamMark
}

// streamMark is what tells whether a stream's messages changed: any write moves the last
// sequence, any removal (an ack, a delete, an expiry) the first sequence or the count.
type streamMark struct{ msgs, first, last uint64 }

func markOf(s jetstream.StreamState) streamMark {
	return streamMark{msgs: s.Msgs, first: s.FirstSeq, last: s.LastSeq}
}

// read returns the live endpoints, reading the rooms bucket and the spill queues only when
// either changed since the last read: with every room still running and nothing spilled, a
// pass costs two stream-info requests, however many rooms and endpoints there are.
func (l *liveEndpoints) read(ctx context.Context, d *Dispatcher) (map[string]bool, error) {
	roomsSt, err := d.js.Stream(ctx, "KV_"+d.names.RoomsBucket())
	if err != nil {
		return nil, err
	}
	spillSt, err := d.js.Stream(ctx, d.names.SpillStream())
	if err != nil {
		return nil, err
	}
	rs, ss := markOf(roomsSt.CachedInfo().State), markOf(spillSt.CachedInfo().State)
	if l.ids != nil && rs == l.rooms && ss == l.spill {
		return l.ids, nil
	}
	ids, err := rooms.LiveEndpoints(ctx, d.rooms)
	if err != nil {
		return nil, err
	}
	spilled, err := d.spilledEndpoints(ctx, d.names.SpillSubjects())
	if err != nil {
		return nil, err
	}
	for _, id := range spilled {
		ids[id] = true
	}
	l.ids, l.rooms, l.spill = ids, rs, ss
	return ids, nil
}

// retireIdle removes every per-room endpoint that no room has registered any more (its rooms
// finished and were forgotten, or expired) and whose spill queues are empty, with its breaker
// and activity; its dead letters stay. An endpoint registered within the last minutes is
// left alone: its room may be about to be written.
func (d *Dispatcher) retireIdle(ctx context.Context, live *liveEndpoints) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	liveIDs, err := live.read(rctx, d)
	if err != nil {
		return 0, err
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
	d.activity.forget(id) // first: a flush under way could otherwise write its key back
	d.breakers.Forget(ctx, id)
}
