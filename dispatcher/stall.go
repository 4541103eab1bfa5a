package dispatcher

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/subscriber"
)

// A unit that holds work and makes no progress on it for a few ack waits is stuck somewhere that
// no error reports (an acknowledgement the server never confirmed, a wait nobody wakes): it
// says so once, with its consumer's state, and starts over, handing back what it holds. The
// floor keeps a machine starved of CPU for a few seconds from restarting healthy units.
const minStallAfter = 10 * time.Second

// errStalled ends a unit's run that the stall watch stopped; the warning that says so is
// already logged, so the restart loop does not log it again.
var errStalled = errors.New("no progress")

// errRestarting is why a partition's context ends when the partition starts over on this
// replica (stalled, consumer lost): its drainers then wait out their last pull requests, as on
// a handover, before handing back.
var errRestarting = errors.New("partition starting over")

// stallAfter is how long a unit may hold work without settling any before it starts over.
func (d *Dispatcher) stallAfter() time.Duration {
	return max(4*subscriber.AckWait(d.cfg.Takeover), minStallAfter)
}

// stallWatch tells, from samples of "holds work" and a progress counter, whether a unit has
// held work with no progress for longer than its limit.
type stallWatch struct {
	limit time.Duration
	last  uint64
	since time.Time // when progress last moved or the unit last held nothing
	now   func() time.Time
}

func newStallWatch(limit time.Duration) *stallWatch {
	return &stallWatch{limit: limit, since: time.Now(), now: time.Now}
}

// stalled takes one sample; true once the unit has held work without progress for the limit.
func (s *stallWatch) stalled(holding bool, progress uint64) bool {
	now := s.now()
	if !holding || progress != s.last {
		s.last, s.since = progress, now
		return false
	}
	return now.Sub(s.since) >= s.limit
}

// consumerState is a consumer's delivery state as log attributes, for a stall warning.
func consumerState(ctx context.Context, cons jetstream.Consumer) []any {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return []any{"consumer_info_error", err}
	}
	return []any{"consumer", info.Name, "num_pending", info.NumPending, "num_ack_pending", info.NumAckPending,
		"num_redelivered", info.NumRedelivered, "delivered_stream_seq", info.Delivered.Stream,
		"ack_floor_stream_seq", info.AckFloor.Stream, "num_waiting", info.NumWaiting}
}

// consumerPending is how many messages the server has for the consumer and has not yet
// delivered.
func consumerPending(ctx context.Context, cons jetstream.Consumer) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, false
	}
	return info.NumPending, true
}
