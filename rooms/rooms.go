package rooms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/subscriber"
)

// Record is one room's per-room webhook registration in the rooms bucket.
type Record struct {
	Room string `json:"room"`
	// Endpoints are the ids (endpoint.ID) of the room's URLs. The URLs themselves, which may
	// carry tokens in their query, live only in the endpoints bucket.
	Endpoints []string `json:"endpoints,omitempty"`
	// URLs is what earlier versions stored (full URLs); read as their ids, never written.
	URLs       []string  `json:"urls,omitempty"`
	CreatedSeq uint64    `json:"created_seq"`          // events stream sequence of its room_created
	FinishedAt time.Time `json:"finished_at,omitzero"` // stored time of its room_finished
}

// Registry is one partition's share of the per-room webhook registry. The registry lives with
// the room's partition: only the partition's owner writes its rooms, and one replica at a
// time owns a partition, so the owner's cache is authoritative while it owns it; the bucket
// lets the next owner, the retirement of endpoints and the CLI see the same registrations.
type Registry struct {
	kv        jetstream.KeyValue
	grace     time.Duration
	ttl       time.Duration // the bucket's TTL; zero: records do not expire
	partition int
	cache     map[string]*Record // nil value: the room has no registration
	// written is when each cached record was last written, so that the cache forgets a
	// record when the bucket's TTL does: a room that never finished (its media node died)
	// must stop reaching its URLs at the same moment on every owner, and must not stay in
	// memory for as long as the partition runs. A record read from the bucket carries the
	// server's time, one this owner wrote its own clock's, taken before the put: the
	// moments agree to within the clocks' skew, against a TTL of hours.
	written map[string]time.Time
	// finished are the partition's rooms known to have finished, with when: what Sweep looks
	// at, so that sweeping an idle partition asks nothing of NATS however many rooms it has.
	// Load, or else the first Sweep, adds those a previous owner saw finish, read from the
	// bucket.
	finished map[string]time.Time
	scanned  bool // the partition's share of the bucket has been read (Load, or the first Sweep)
	// complete: the cache holds every registration of the partition (Load read them all and
	// nothing has been dropped since), so a room it does not hold has none, and a new room's
	// first event asks nothing of NATS.
	complete bool
	inFlight int // deletes a sweep has in flight at once; zero: sweepInFlight
}

// maxCachedRooms bounds a partition's cache; past it the cache starts over from the bucket.
const maxCachedRooms = 100_000

// requestTimeout bounds each request to the bucket (a get, put or delete), and scanTimeout a
// read of a whole partition's or region's keys, whatever deadline the caller's context has:
// a partition's main loop waits on them, and must not wait forever on a server that does
// not answer.
const (
	requestTimeout = 5 * time.Second
	scanTimeout    = 30 * time.Second
)

// Option configures a Registry.
type Option func(*Registry)

// WithTTL tells the registry the bucket's TTL (ROOMHOOK_ROOM_TTL): a record last written
// longer ago than that is gone from the bucket, and the registry treats it as gone too,
// for events stored after it expired, and drops it from its cache at the next Sweep.
func WithTTL(ttl time.Duration) Option {
	return func(r *Registry) { r.ttl = ttl }
}

// New returns partition's registry over kv; grace is how long after room_finished a
// room's URLs still receive its events.
func New(kv jetstream.KeyValue, grace time.Duration, partition int, opts ...Option) *Registry {
	r := &Registry{kv: kv, grace: grace, partition: partition, cache: map[string]*Record{},
		written: map[string]time.Time{}, finished: map[string]time.Time{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Key is a room's key in the bucket: its partition, then the room in base64url, since
// room ids may hold any byte.
func Key(partition int, room string) string {
	return "p" + strconv.Itoa(partition) + "." + LegacyKey(room)
}

// LegacyKey is the first version's key of a room, without the partition ("r", then the room
// in base64url); an upgrade re-keys them.
func LegacyKey(room string) string {
	return "r" + base64.RawURLEncoding.EncodeToString([]byte(room))
}

// Reset drops the cache; the next reads start over from the bucket. A partition's owner makes
// a new Registry each time it starts the partition, and load resets a full cache.
func (r *Registry) Reset() {
	r.cache = map[string]*Record{}
	r.written = map[string]time.Time{}
	r.complete = false
}

// Load reads the partition's share of the bucket into the cache, as its owner starts it.
// Afterwards a room the cache does not hold has no registration: only the partition's owner
// writes its rooms, and it writes through the cache. Without Load, or once a cache grown past
// its bound has been dropped, a room not in the cache is read from the bucket on its first
// event, one request per room, which at a wave of meetings starting together held the
// partition for a round trip each. A partition with more rooms than the cache holds is read
// only in part, and then looked up as without Load.
func (r *Registry) Load(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	cache := map[string]*Record{}
	written := map[string]time.Time{}
	finished := map[string]time.Time{}
	err := subscriber.ReadKV(sctx, r.kv, "p"+strconv.Itoa(r.partition)+".*", func(e jetstream.KeyValueEntry) {
		var rec Record
		if json.Unmarshal(e.Value(), &rec) != nil || rec.Room == "" || len(cache) >= maxCachedRooms {
			return
		}
		cache[rec.Room] = &rec
		written[rec.Room] = e.Created()
		if !rec.FinishedAt.IsZero() {
			finished[rec.Room] = rec.FinishedAt
		}
	})
	if err != nil {
		return fmt.Errorf("room registry load: %w", err)
	}
	for room, rec := range cache {
		if _, known := r.cache[room]; !known {
			r.cache[room] = rec
			r.written[room] = written[room]
		}
	}
	for room, at := range finished {
		if _, known := r.finished[room]; !known {
			r.finished[room] = at
		}
	}
	r.scanned = true
	r.complete = len(cache) < maxCachedRooms
	return nil
}

func (r *Registry) load(ctx context.Context, room string) (*Record, error) {
	if rec, ok := r.cache[room]; ok {
		return rec, nil
	}
	if r.complete {
		return nil, nil
	}
	if len(r.cache) >= maxCachedRooms {
		r.Reset()
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	e, err := r.kv.Get(rctx, Key(r.partition, room))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		r.cache[room] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("room registry: %w", err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("room registry: %w", err)
	}
	r.cache[room] = &rec
	r.written[room] = e.Created()
	return &rec, nil
}

// live returns the room's record for an event stored at the given time, or nil: none, or
// expired by then under the bucket's TTL.
func (r *Registry) live(ctx context.Context, room string, at time.Time) (*Record, error) {
	rec, err := r.load(ctx, room)
	if err != nil || rec == nil {
		return nil, err
	}
	if r.expired(room, at) {
		return nil, nil
	}
	return rec, nil
}

// expired reports whether the room's cached record is past the bucket's TTL at t.
func (r *Registry) expired(room string, t time.Time) bool {
	w, ok := r.written[room]
	return r.ttl > 0 && ok && t.After(w.Add(r.ttl))
}

func (r *Registry) store(ctx context.Context, rec *Record) error {
	if _, ok := r.cache[rec.Room]; !ok && len(r.cache) >= maxCachedRooms {
		r.Reset()
	}
	b, _ := json.Marshal(rec)
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	at := time.Now() // no later than the server's timestamp, from which its TTL counts
	if _, err := r.kv.Put(rctx, Key(r.partition, rec.Room), b); err != nil {
		return fmt.Errorf("room registry: %w", err)
	}
	r.cache[rec.Room] = rec
	r.written[rec.Room] = at
	return nil
}

// EndpointIDs are the ids of the room's endpoints, those of a record an earlier version wrote
// with URLs included.
func (rec *Record) EndpointIDs() []string {
	ids := slices.Clone(rec.Endpoints)
	for _, u := range rec.URLs {
		if id := endpoint.ID(u); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Register records the endpoints of urls for room (their ids: no URL, so no token, is kept in
// the rooms bucket), from its room_created at events sequence seq. A redelivered room_created
// (same seq) rewrites the same record.
func (r *Registry) Register(ctx context.Context, room string, urls []string, seq uint64) error {
	ids := make([]string, 0, len(urls))
	for _, u := range urls {
		ids = append(ids, endpoint.ID(u))
	}
	if err := r.store(ctx, &Record{Room: room, Endpoints: ids, CreatedSeq: seq}); err != nil {
		return err
	}
	delete(r.finished, room) // created again: live, whatever an earlier run of it did
	return nil
}

// Finish records when the room finished; its URLs keep receiving events stored up to grace
// later. A room whose record the bucket's TTL has removed by then stays forgotten.
func (r *Registry) Finish(ctx context.Context, room string, at time.Time) error {
	rec, err := r.live(ctx, room, at)
	if err != nil || rec == nil {
		return err
	}
	if !rec.FinishedAt.IsZero() {
		r.finished[room] = rec.FinishedAt
		return nil
	}
	cp := *rec
	cp.FinishedAt = at.UTC()
	cp.Endpoints, cp.URLs = rec.EndpointIDs(), nil // an earlier version's URLs leave the bucket
	if err := r.store(ctx, &cp); err != nil {
		return err
	}
	r.finished[room] = cp.FinishedAt
	return nil
}

// Endpoints returns the ids of the room's registered endpoints for an event stored at the given
// time. The decision uses the stored time, not the clock, so a redelivered or replayed event
// routes the same way.
func (r *Registry) Endpoints(ctx context.Context, room string, stored time.Time) ([]string, error) {
	rec, err := r.live(ctx, room, stored)
	if err != nil || rec == nil {
		return nil, err
	}
	if !rec.FinishedAt.IsZero() && stored.After(rec.FinishedAt.Add(r.grace)) {
		return nil, nil
	}
	return rec.EndpointIDs(), nil
}

// Sweep deletes the partition's registrations whose grace has passed; the bucket's TTL
// covers rooms that never finish. The first Sweep of a Registry that was not loaded (Load)
// reads the partition's share of the bucket, for the rooms a previous owner saw finish; later
// ones, and every one after Load, look only at the rooms known to have finished, and ask
// nothing of NATS until one's grace has passed. It returns how many it deleted; when some
// deletes fail, the others still count and the failed ones stay due for the next Sweep.
func (r *Registry) Sweep(ctx context.Context, now time.Time) (int, error) {
	if !r.scanned {
		sctx, cancel := context.WithTimeout(ctx, scanTimeout)
		defer cancel()
		err := subscriber.ReadKV(sctx, r.kv, "p"+strconv.Itoa(r.partition)+".*", func(e jetstream.KeyValueEntry) {
			var rec Record
			if json.Unmarshal(e.Value(), &rec) == nil && !rec.FinishedAt.IsZero() {
				if _, known := r.finished[rec.Room]; !known {
					r.finished[rec.Room] = rec.FinishedAt
				}
			}
		})
		if err != nil {
			return 0, fmt.Errorf("room registry sweep: %w", err)
		}
		r.scanned = true
	}
	// The bucket's TTL has removed these already; only the cache still holds them.
	for room := range r.written {
		if r.expired(room, now) {
			r.forget(room)
		}
	}
	var expired []string
	for room, at := range r.finished {
		if now.After(at.Add(r.grace)) {
			expired = append(expired, room)
		}
	}
	errs := r.deleteAll(ctx, expired)
	n := 0
	var first error
	for i, room := range expired {
		if errs[i] != nil {
			if first == nil {
				first = errs[i]
			}
			continue // still finished: the next sweep tries it again
		}
		r.forget(room)
		n++
	}
	if first != nil {
		return n, fmt.Errorf("room registry sweep: %d of %d not deleted: %w", len(expired)-n, len(expired), first)
	}
	return n, nil
}

// forget drops what the registry holds of a room that the bucket no longer has.
func (r *Registry) forget(room string) {
	delete(r.cache, room)
	delete(r.written, room)
	delete(r.finished, room)
}

// sweepInFlight is how many deletes a sweep has in flight at once. The partition's main loop
// waits for its sweep: one at a time, the rooms of a wave of meetings that ended together
// (a school's classes on the hour) held that partition's events for a round trip each,
// seconds on a cluster; 32 at a time it is one round trip per 32 rooms.
const sweepInFlight = 32

// deleteAll deletes the registrations of rooms, up to inFlight of them at once (sweepInFlight
// when zero), and returns each delete's error in the order of rooms.
func (r *Registry) deleteAll(ctx context.Context, rooms []string) []error {
	errs := make([]error, len(rooms))
	inFlight := r.inFlight
	if inFlight <= 0 {
		inFlight = sweepInFlight
	}
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i, room := range rooms {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			errs[i] = r.kv.Delete(rctx, Key(r.partition, room))
		}()
	}
	wg.Wait()
	return errs
}

// LiveEndpoints lists the id of every endpoint some room of any partition still has
// registered: the endpoints that must not be retired.
func LiveEndpoints(ctx context.Context, kv jetstream.KeyValue) (map[string]bool, error) {
	live := map[string]bool{}
	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	err := subscriber.ReadKV(ctx, kv, jetstream.AllKeys, func(e jetstream.KeyValueEntry) {
		var rec Record
		if json.Unmarshal(e.Value(), &rec) == nil {
			for _, id := range rec.EndpointIDs() {
				live[id] = true
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("room registry: %w", err)
	}
	return live, nil
}
