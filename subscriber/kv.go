package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
)

// The key-value loops of roomhook's buckets, written once: following a bucket (FollowKV),
// reading its current values (ReadKV) and changing one JSON record with a compare-and-set
// (UpdateJSON).

// ErrWatchEnded is returned by ReadKV when the watch stops before it has delivered the
// bucket's current values (the connection closed, the bucket went away).
var ErrWatchEnded = errors.New("watch ended early")

// ErrTooManyUpdates is returned by UpdateJSON when the record kept changing under it.
var ErrTooManyUpdates = errors.New("too many concurrent updates")

// updateTries is how many compare-and-sets UpdateJSON tries before giving up.
const updateTries = 10

// FollowKV watches the keys of kv matching keys (">" for all) and calls apply with every
// entry, puts and, unless opts hold jetstream.IgnoreDeletes, deletes and purges, in order, until
// ctx ends or the watch stops; both return nil, so a caller that must never go on with a stale
// view starts it again when ctx has not ended. loaded, when given, is called each time the
// values current at the start are all delivered (once per watch). An error is returned only
// when the watch cannot start.
func FollowKV(ctx context.Context, kv jetstream.KeyValue, keys string, loaded func(), apply func(jetstream.KeyValueEntry), opts ...jetstream.WatchOpt) error {
	w, err := kv.Watch(ctx, keys, opts...)
	if err != nil {
		return err
	}
	defer w.Stop()
	// Following stops without an error both when ctx ends and when the watch stops.
	_, _ = watchLoop(ctx, w, func() bool {
		if loaded != nil {
			loaded()
		}
		return false
	}, apply)
	return nil
}

// ReadKV calls visit with the current value of every key of kv matching keys (">" for all),
// deleted keys left out, and returns once they are all delivered: ctx's error when it ends
// first, ErrWatchEnded when the watch stops first.
func ReadKV(ctx context.Context, kv jetstream.KeyValue, keys string, visit func(jetstream.KeyValueEntry)) error {
	w, err := kv.Watch(ctx, keys, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	loaded, err := watchLoop(ctx, w, func() bool { return true }, visit)
	if err != nil {
		return err
	}
	if !loaded {
		return ErrWatchEnded
	}
	return nil
}

// watchLoop is the one loop over a watcher's updates: apply for every entry, loaded at the
// marker that the current values are all delivered (it returns true to stop there). It
// reports whether it stopped at that marker; the error is ctx's when ctx ended first, and nil
// when the watch stopped.
func watchLoop(ctx context.Context, w jetstream.KeyWatcher, loaded func() (stop bool), apply func(jetstream.KeyValueEntry)) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return false, nil
			}
			if e == nil {
				if loaded() {
					return true, nil
				}
				continue
			}
			apply(e)
		}
	}
}

// UpdateJSON changes the JSON record T at key with a compare-and-set: it reads the record,
// lets change edit it, and writes it back only if nobody wrote the key meanwhile; when someone
// did, change is applied again to the new value, up to ten times (then ErrTooManyUpdates). It
// returns the record written and its revision. A missing key is jetstream.ErrKeyNotFound, a
// record that does not decode an error naming it unreadable; either way change is not called.
func UpdateJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, change func(*T)) (T, uint64, error) {
	var zero T
	// Writers that collide (every replica's lanes that got the same 410 at once) would
	// collide again at once: a growing, jittered pause between tries spreads them.
	delays := backoff.New(5*time.Millisecond, 100*time.Millisecond)
	for try := 0; try < updateTries; try++ {
		if try > 0 && !delays.Wait(ctx) {
			return zero, 0, ctx.Err()
		}
		e, err := kv.Get(ctx, key)
		if err != nil {
			return zero, 0, err
		}
		var rec T
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return zero, 0, fmt.Errorf("unreadable record: %w", err)
		}
		change(&rec)
		b, err := json.Marshal(rec)
		if err != nil {
			return zero, 0, err
		}
		rev, err := kv.Update(ctx, key, b, e.Revision())
		if err == nil {
			return rec, rev, nil
		}
		if !IsConflict(err) {
			return zero, 0, err
		}
	}
	return zero, 0, ErrTooManyUpdates
}
