package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/rooms"
)

// upgrade moves what a region running the first version left behind into this version's
// places, before any partition starts, so no pending delivery is lost:
//   - every delivery in the first version's deliver stream goes, in stream order, to its
//     endpoint's spill queue on the room's partition (where the partition's owner finds it at
//     start and drains it first), then the deliver stream and the first version's router
//     consumer are deleted (the partition stream already starts after what that router
//     acknowledged);
//   - room registrations are re-keyed by partition.
//
// Several replicas may run it at once: spilled copies carry the same message ids, so the
// stream keeps the first of each, in order.
func (d *Dispatcher) upgrade(ctx context.Context) error {
	if err := d.upgradeRooms(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	st, err := d.js.Stream(rctx, d.names.LegacyDeliverStream())
	cancel()
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	moved := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		m, err := st.GetMsg(rctx, 1, jetstream.WithGetMsgSubject("roomhook.deliver."+d.cfg.Region+".>"))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("upgrade: read the first version's deliver stream: %w", err)
		}
		// roomhook.deliver.<region>.<endpoint>.<partition>
		toks := strings.Split(m.Subject, ".")
		if len(toks) == 5 {
			q := queue.Parse(m.Header, m.Data)
			id := toks[3]
			msg := q.Msg(d.names.SpillSubject(id, queue.Partition(q.Room, d.cfg.Partitions), 1), spillMsgID(q.EventSeq, id, q.ReplayOf))
			pctx, cancel := context.WithTimeout(ctx, requestTimeout)
			_, err := d.js.PublishMsg(pctx, msg)
			cancel()
			if err != nil {
				return fmt.Errorf("upgrade: move a delivery to the spill stream: %w", err)
			}
			moved++
		}
		dctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err = st.DeleteMsg(dctx, m.Sequence)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := d.js.DeleteStream(dctx, d.names.LegacyDeliverStream()); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("upgrade: delete the first version's deliver stream: %w", err)
	}
	if err := d.js.DeleteConsumer(dctx, d.names.EventsStream(), d.names.LegacyRouterConsumer()); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("upgrade: delete the first version's router consumer: %w", err)
	}
	d.log.Info("upgraded from the first version: pending deliveries moved to the spill stream", "deliveries", moved)
	return nil
}

// upgradeRooms re-keys the first version's room registrations ("r<room>") by partition.
func (d *Dispatcher) upgradeRooms(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	keys, err := d.rooms.ListKeys(rctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("upgrade rooms: %w", err)
	}
	var old []string
	for k := range keys.Keys() {
		if strings.HasPrefix(k, "r") {
			old = append(old, k)
		}
	}
	for _, k := range old {
		e, err := d.rooms.Get(rctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("upgrade rooms: %w", err)
		}
		var rec rooms.Record
		if err := json.Unmarshal(e.Value(), &rec); err == nil && rec.Room != "" {
			// Written only where the partition's key has never been: replicas of a rolling
			// upgrade leave their wait together and run this at once. The first to move a
			// room starts its partitions, and that room's owner may since have recorded its
			// room_finished, swept it after its grace, or registered it again; a later copy of
			// the old record must not overwrite that (nor bring a swept room back, which a
			// delete's marker, revision > 0, prevents). A region rolled back to the first
			// version and upgraded again within the bucket's TTL would lose a room that was
			// swept and then registered again by the first version; going back is not
			// supported (docs/deploying.md).
			_, err := d.rooms.Update(rctx, rooms.Key(queue.Partition(rec.Room, d.cfg.Partitions), rec.Room), e.Value(), 0)
			if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return fmt.Errorf("upgrade rooms: %w", err)
			}
		}
		if err := d.rooms.Delete(rctx, k); err != nil {
			return fmt.Errorf("upgrade rooms: %w", err)
		}
	}
	return nil
}

// legacyRouterLease is the lease key a first-version replica holds while its router runs (the
// first version's unit "router", in the leases bucket both versions share).
const legacyRouterLease = "unit.router"

// waitForFirstVersion holds this replica back, before it provisions anything, while replicas
// of the first version still run in the region: a rolling update starts a new replica beside
// old ones. Upgrading then would delete the router consumer that a running first-version router
// uses; that router makes it again from the first event in the stream and queues every stored
// event once more, and what it queues after the move is never moved. So while the first
// version's router consumer exists and its router lease is held, nothing happens here but
// waiting: the first version keeps delivering, and this replica reports ready so that the
// rollout can go on and stop the old replicas. Once the lease has been free for a whole
// takeover (a handover between old replicas takes less), the upgrade runs.
func (d *Dispatcher) waitForFirstVersion(ctx context.Context) error {
	defer d.deferring.Store(false)
	var freeSince, loggedAt time.Time
	deadline := time.Now().Add(d.cfg.StartupTimeout)
	delays := backoff.New(250*time.Millisecond, 5*time.Second)
	for {
		alive, err := d.firstVersionRuns(ctx)
		var holder string
		var held bool
		if err == nil && alive {
			holder, held, err = d.legacyRouterHolder(ctx)
		}
		switch {
		case err != nil && !d.deferring.Load() && time.Now().After(deadline):
			return fmt.Errorf("upgrade: look for replicas of the first version: %w", err)
		case err != nil:
			// Unknown is not "gone": going on could delete a running router's consumer.
			wait := delays.Next()
			d.log.Warn("cannot tell whether replicas of the first version still run; asking again", "error", err,
				"retry_in", wait.Round(time.Millisecond).String())
			sleep(ctx, wait)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		case !alive:
			return nil
		}
		delays.Reset()
		now := time.Now()
		if held {
			freeSince = time.Time{}
			if !d.deferring.Load() || now.Sub(loggedAt) >= time.Minute {
				d.log.Warn("a replica of the first version is still routing; waiting for it to stop before upgrading (it delivers until then)",
					"first_version_replica", holder)
				loggedAt = now
			}
			d.deferring.Store(true)
		} else if freeSince.IsZero() {
			freeSince = now
		} else if now.Sub(freeSince) >= d.cfg.Takeover {
			return nil
		}
		// Polling a few keys once a second is all this costs, and only during an upgrade.
		sleep(ctx, time.Duration(float64(time.Second)*(0.75+rand.Float64()/2)))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// firstVersionRuns reports whether the first version's router consumer is still on the events
// stream: a region that never ran the first version, or has upgraded, has none.
func (d *Dispatcher) firstVersionRuns(ctx context.Context) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err := d.js.Consumer(rctx, d.names.EventsStream(), d.names.LegacyRouterConsumer())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	}
	return false, err
}

// legacyRouterHolder reads the first version's router lease: who holds it, and whether anyone
// does (a lease expires with its bucket's TTL, and a replica that stops deletes its own).
func (d *Dispatcher) legacyRouterHolder(ctx context.Context) (string, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	kv, err := d.js.KeyValue(rctx, d.names.LeasesBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	e, err := kv.Get(rctx, legacyRouterLease)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(e.Value()), true, nil
}

// spillMsgID makes moving the same delivery again (a concurrent upgrade from another
// replica) a no-op.
func spillMsgID(eventSeq uint64, endpointID string, replayOf uint64) string {
	if replayOf > 0 {
		return fmt.Sprintf("replay:%d:%s", replayOf, endpointID)
	}
	return fmt.Sprintf("%d:%s", eventSeq, endpointID)
}
