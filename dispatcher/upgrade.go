package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
			msg := q.Msg(d.names.SpillSubject(id, queue.Partition(q.Room, d.cfg.Partitions)), spillMsgID(q.EventSeq, id, q.ReplayOf))
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
			if _, err := d.rooms.Put(rctx, rooms.Key(queue.Partition(rec.Room, d.cfg.Partitions), rec.Room), e.Value()); err != nil {
				return fmt.Errorf("upgrade rooms: %w", err)
			}
		}
		if err := d.rooms.Delete(rctx, k); err != nil {
			return fmt.Errorf("upgrade rooms: %w", err)
		}
	}
	return nil
}
