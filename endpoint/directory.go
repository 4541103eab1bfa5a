package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/subscriber"

	"github.com/roomhook/roomhook/schema/signature"
)

// Record is an endpoint's shared state in the endpoints bucket. Credentials and
// filters of global endpoints stay in each replica's configuration, never in NATS.
type Record struct {
	URL      string `json:"url"`
	Global   bool   `json:"global,omitempty"`
	Paused   bool   `json:"paused,omitempty"`   // by an operator
	Disabled bool   `json:"disabled,omitempty"` // by a 410 Gone answer
	Reason   string `json:"reason,omitempty"`
	// Registered is when a room last registered a per-room endpoint (refreshed at most once
	// a minute): retirement leaves recently registered endpoints alone.
	Registered time.Time `json:"registered,omitzero"`
	Updated    time.Time `json:"updated"`
}

// View is an endpoint with its shared state, as partitions and spill drainers see it.
type View struct {
	Endpoint
	Disabled   bool
	Reason     string
	Registered time.Time
	rev        uint64 // revision of the record in the bucket (0: not seen yet)
}

// ErrTooMany is returned by EnsurePerRoom when ROOMHOOK_MAX_ROOM_ENDPOINTS live
// per-room endpoints exist.
var ErrTooMany = errors.New("too many live per-room endpoints")

// ErrNotFound is returned for an endpoint the bucket does not hold.
var ErrNotFound = errors.New("endpoint not found")

// RegisteredRefresh is how stale an endpoint's Registered time may get before a registering
// room writes it again.
const RegisteredRefresh = time.Minute

// Directory is the set of endpoints every replica knows: the global ones of the configuration
// and the per-room ones registered by the partitions' owners, with the state they share
// through a key-value bucket. Replicas learn new endpoints and state changes by watching the
// bucket.
type Directory struct {
	kv         jetstream.KeyValue
	defaults   signature.Credentials
	configured map[string]Endpoint
	log        *slog.Logger

	mu      sync.RWMutex
	views   map[string]*View
	perRoom int    // per-room endpoints in views
	globals []View // the global views, sorted by id; replaced, never changed in place
	changed chan struct{}
	ready   chan struct{}
}

// NewDirectory prepares a directory; global are the configured endpoints.
func NewDirectory(kv jetstream.KeyValue, defaults signature.Credentials, global []Endpoint, log *slog.Logger) *Directory {
	d := &Directory{
		kv: kv, defaults: defaults, configured: map[string]Endpoint{}, log: log,
		views: map[string]*View{}, changed: make(chan struct{}), ready: make(chan struct{}),
	}
	for _, ep := range global {
		ep.Global = true
		d.configured[ep.ID] = ep
		v := &View{Endpoint: ep}
		d.views[ep.ID] = v
	}
	d.rebuildGlobalsLocked()
	return d
}

// Register writes the configured global endpoints into the bucket. Their shared state is kept
// (an operator's pause or resume survives restarts), except that an endpoint configured as
// paused is paused at every start.
func (d *Directory) Register(ctx context.Context) error {
	for id, ep := range d.configured {
		rec := Record{URL: ep.URL, Global: true, Paused: ep.Paused, Updated: time.Now().UTC()}
		if err := d.create(ctx, id, rec); err != nil {
			return err
		}
		if ep.Paused {
			if err := d.Update(ctx, id, func(r *Record) { r.Paused = true }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Directory) create(ctx context.Context, id string, rec Record) error {
	b, _ := json.Marshal(rec)
	_, err := d.kv.Create(ctx, id, b)
	if err != nil && !subscriber.IsConflict(err) {
		return fmt.Errorf("register endpoint %s: %w", id, err)
	}
	return nil
}

// EnsurePerRoom makes url a known endpoint and returns its id, refusing a new one when limit
// (> 0) live per-room endpoints exist. A per-room endpoint removed by 410 Gone comes back when
// a room registers it again. Registering refreshes the endpoint's Registered time with a
// compare-and-set, so it cannot race with its retirement: a retirement that read the old
// record fails, and one that already happened makes the endpoint anew.
//
// A compare-and-set that loses to another writer reads the record again and starts over, up
// to ensureTries times with a short jittered wait between tries.
func (d *Directory) EnsurePerRoom(ctx context.Context, url string, limit int) (string, error) {
	b := backoff.New(ensureRetryFirst, ensureRetryLimit)
	for try := 1; ; try++ {
		id, again, err := d.ensurePerRoomOnce(ctx, url, limit)
		if !again {
			return id, err
		}
		if try >= ensureTries {
			return "", fmt.Errorf("register endpoint %s: %w", id, errEnsureConflicts)
		}
		if !b.Wait(ctx) {
			return "", fmt.Errorf("register endpoint %s: %w", id, ctx.Err())
		}
	}
}

// Tries of EnsurePerRoom, and the jittered waits between them.
const (
	ensureTries      = 10
	ensureRetryFirst = 10 * time.Millisecond
	ensureRetryLimit = 200 * time.Millisecond
)

// errEnsureConflicts is why EnsurePerRoom gave up: every try lost a compare-and-set.
var errEnsureConflicts = fmt.Errorf("record changed by another writer on each of %d tries", ensureTries)

// ensurePerRoomOnce is one try of EnsurePerRoom; again reports a lost compare-and-set, after
// which the record has been read again and the caller tries again.
func (d *Directory) ensurePerRoomOnce(ctx context.Context, url string, limit int) (_ string, again bool, _ error) {
	id := ID(url)
	d.mu.RLock()
	v, ok := d.views[id]
	full := limit > 0 && d.perRoom >= limit
	d.mu.RUnlock()
	if ok && v.Global {
		return id, false, nil
	}
	if ok && !v.Disabled && time.Since(v.Registered) < RegisteredRefresh {
		return id, false, nil
	}
	now := time.Now().UTC()
	if ok && v.rev > 0 {
		rec := Record{URL: v.URL, Paused: v.Paused, Registered: now, Updated: now}
		b, _ := json.Marshal(rec)
		rev, err := d.kv.Update(ctx, id, b, v.rev)
		if err == nil {
			d.apply(id, &rec, rev)
			return id, false, nil
		}
		if !subscriber.IsConflict(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return "", false, fmt.Errorf("register endpoint %s: %w", id, err)
		}
		// Changed or retired meanwhile: read it again.
		e, gerr := d.kv.Get(ctx, id)
		if gerr == nil {
			var cur Record
			uerr := json.Unmarshal(e.Value(), &cur)
			if uerr == nil {
				d.apply(id, &cur, e.Revision())
				return id, true, nil
			}
			gerr = fmt.Errorf("its stored record does not decode: %w", uerr)
		}
		if !errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return "", false, fmt.Errorf("register endpoint %s: %w", id, gerr)
		}
		d.remove(id)
	}
	if !ok && full {
		return "", false, ErrTooMany
	}
	rec := Record{URL: url, Registered: now, Updated: now}
	b, _ := json.Marshal(rec)
	rev, err := d.kv.Create(ctx, id, b)
	if subscriber.IsConflict(err) {
		e, gerr := d.kv.Get(ctx, id)
		if gerr != nil {
			return "", false, fmt.Errorf("register endpoint %s: %w", id, gerr)
		}
		var cur Record
		if json.Unmarshal(e.Value(), &cur) == nil {
			d.apply(id, &cur, e.Revision())
		}
		return id, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("register endpoint %s: %w", id, err)
	}
	// Make it visible to this replica at once, before the watch reports it.
	d.apply(id, &rec, rev)
	return id, false, nil
}

// Retire removes an idle per-room endpoint from the bucket, if its record is still the one
// this replica saw (a room registering it meanwhile wins).
func (d *Directory) Retire(ctx context.Context, id string) (bool, error) {
	d.mu.RLock()
	v, ok := d.views[id]
	d.mu.RUnlock()
	if !ok || v.Global || v.rev == 0 {
		return false, nil
	}
	if err := d.kv.Delete(ctx, id, jetstream.LastRevision(v.rev)); err != nil {
		if subscriber.IsConflict(err) || errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return false, nil
		}
		return false, fmt.Errorf("retire endpoint %s: %w", id, err)
	}
	d.remove(id)
	return true, nil
}

// Update changes an endpoint's shared state with a compare-and-set loop.
func (d *Directory) Update(ctx context.Context, id string, change func(*Record)) error {
	rec, rev, err := Update(ctx, d.kv, id, change)
	if err != nil {
		return err
	}
	d.apply(id, &rec, rev)
	return nil
}

// Update changes the record of endpoint id in the endpoints bucket kv with a
// compare-and-set loop (subscriber.UpdateJSON), stamping it Updated now, and returns the
// record written and its revision. A missing endpoint is ErrNotFound; every error
// names the endpoint. The replicas watching the bucket act on the change.
func Update(ctx context.Context, kv jetstream.KeyValue, id string, change func(*Record)) (Record, uint64, error) {
	rec, rev, err := subscriber.UpdateJSON(ctx, kv, id, func(r *Record) {
		change(r)
		r.Updated = time.Now().UTC()
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rec, 0, fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return rec, 0, fmt.Errorf("endpoint %s: %w", id, err)
	}
	return rec, rev, nil
}

// Watch follows the bucket until ctx ends; Ready is closed once the current state is loaded.
func (d *Directory) Watch(ctx context.Context) error {
	err := subscriber.FollowKV(ctx, d.kv, jetstream.AllKeys, func() {
		select {
		case <-d.ready:
		default:
			close(d.ready)
		}
	}, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			d.remove(e.Key())
			return
		}
		var rec Record
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			d.log.Warn("ignoring unreadable endpoint record", "endpoint", e.Key(), "error", err)
			return
		}
		d.apply(e.Key(), &rec, e.Revision())
	})
	if err != nil {
		return fmt.Errorf("watch endpoints: %w", err)
	}
	return nil
}

// Ready is closed once Watch has loaded the bucket's current state.
func (d *Directory) Ready() <-chan struct{} { return d.ready }

// remove forgets a retired per-room endpoint. Configured global endpoints stay.
func (d *Directory) remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.views[id]
	if !ok || v.Global {
		return
	}
	delete(d.views, id)
	d.perRoom--
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Directory) apply(id string, rec *Record, rev uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.views[id]
	if old != nil && rev > 0 && rev < old.rev {
		return // an older revision than the one this replica already has
	}
	var ep Endpoint
	if c, ok := d.configured[id]; ok {
		ep = c
	} else if rec.Global {
		// A global endpoint another replica is configured with but this one is not: this
		// replica does not deliver to it (it has no credentials for it).
		return
	} else {
		ep = Endpoint{ID: id, URL: rec.URL, Credentials: d.defaults}
	}
	ep.Paused = rec.Paused
	v := &View{Endpoint: ep, Disabled: rec.Disabled, Reason: rec.Reason, Registered: rec.Registered, rev: rev}
	if old == nil && !ep.Global {
		d.perRoom++
	}
	if ep.Global {
		defer d.rebuildGlobalsLocked()
	}
	if old != nil && old.Paused == v.Paused && old.Disabled == v.Disabled {
		d.views[id] = v
		return
	}
	if old != nil && old.Disabled != v.Disabled && v.Disabled {
		d.log.Warn("endpoint disabled", "endpoint", id, "reason", v.Reason)
	}
	d.views[id] = v
	close(d.changed)
	d.changed = make(chan struct{})
}

// Get returns the current view of an endpoint.
func (d *Directory) Get(id string) (View, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	v, ok := d.views[id]
	if !ok {
		return View{}, false
	}
	return *v, true
}

// Snapshot lists every known endpoint, sorted by id, and a channel closed at the next change.
func (d *Directory) Snapshot() ([]View, <-chan struct{}) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]View, 0, len(d.views))
	for _, v := range d.views {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, d.changed
}

// Globals lists the configured global endpoints. Every partition asks for them for every event,
// so the list is kept ready rather than built from all endpoints each time; callers must not
// change it.
func (d *Directory) Globals() []View {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.globals
}

func (d *Directory) rebuildGlobalsLocked() {
	globals := make([]View, 0, len(d.configured))
	for id := range d.configured {
		if v, ok := d.views[id]; ok {
			globals = append(globals, *v)
		}
	}
	sort.Slice(globals, func(i, j int) bool { return globals[i].ID < globals[j].ID })
	d.globals = globals
}
