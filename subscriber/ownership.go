package subscriber

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
)

// Timings derived from the takeover budget. A dead replica's leases expire after LeaseTTL and
// are taken on the next tick, so its work moves within the takeover budget. Messages it held
// stop being kept alive when it dies and come back after AckWait, which is shorter than
// LeaseTTL minus a tick: by the time a new owner pulls, the server has them queued for
// redelivery, and it redelivers them before anything newer, which keeps each room in order.

// LeaseTTL is how long a lease lives without renewal.
func leaseTTL(takeover time.Duration) time.Duration { return takeover * 4 / 5 }

func tickEvery(takeover time.Duration) time.Duration { return takeover / 5 }

// AckWait is the ack wait of every consumer whose messages a replica holds while it works on them.
func AckWait(takeover time.Duration) time.Duration { return takeover / 4 }

// KeepAliveEvery is how often a held message is marked in progress.
func KeepAliveEvery(takeover time.Duration) time.Duration { return AckWait(takeover) / 3 }

// Work is what a replica does while it owns a unit; it returns once ctx is cancelled and
// everything it held is settled or handed back.
type Work func(ctx context.Context, unit string)

// Ownership spreads units of work (the partitions) over the live replicas with
// rendezvous hashing, and makes sure a unit has at most one owner at a time with a lease per
// unit in a key-value bucket. A joining replica takes its share after the current owner has
// handed the unit back; a dead replica's share is taken when its leases expire.
type Ownership struct {
	members, leases jetstream.KeyValue
	live            KeyLister // the members bucket's keys: the replicas whose heartbeat has not expired
	id              string
	takeover        time.Duration
	units           []string
	work            Work
	log             *slog.Logger
	onChange        func(owned int)

	// Whether the membership heartbeat and the listing of replicas fail now: each logs a
	// warning when it starts failing and an info line when it works again, not every tick
	// (a region that lost its JetStream meta quorum fails every tick for as long as it lasts).
	// Touched only by Run's goroutine.
	heartbeat, listing failState

	mu    sync.Mutex
	owned map[string]*heldUnit
}

// failState is whether a repeated request fails now, since when and how often.
type failState struct {
	failing bool
	since   time.Time
	fails   int
}

// observe records one outcome of the request and logs only when its state changes: a warning
// with the error when it starts failing, an info line with how long and how often it failed
// when it works again. Failures in between are logged at debug level.
func (f *failState) observe(log *slog.Logger, err error, failMsg, okMsg string) {
	switch {
	case err != nil && !f.failing:
		f.failing, f.since, f.fails = true, time.Now(), 1
		log.Warn(failMsg, "error", err)
	case err != nil:
		f.fails++
		log.Debug(failMsg, "error", err, "failing_for", time.Since(f.since).Round(time.Millisecond).String(), "failures", f.fails)
	case f.failing:
		f.failing = false
		log.Info(okMsg, "failed_for", time.Since(f.since).Round(time.Millisecond).String(), "failures", f.fails)
	}
}

type heldUnit struct {
	rev       uint64
	lastRenew time.Time
	cancel    context.CancelCauseFunc
	done      chan struct{}
	releasing bool
	// fence stops the work when no renewal has been confirmed for two thirds of the lease's life,
	// whatever the renewal loop is waiting on, so the work has stopped before another
	// replica can take the lease; fenced tells the loop to start it again only after a
	// renewal succeeds.
	fence  *time.Timer
	fenced atomic.Bool
	// Work that stops on its own soon after it started is started again after a jittered wait
	// that grows while it keeps doing so (restarts; a fresh one for each time the unit is
	// taken). started is when the work last started, ended when it returned (written by the
	// work's goroutine before done is closed), and restartAt when stopped work is due to start
	// again (zero until the stop is noticed).
	restarts       *backoff.Backoff
	started, ended time.Time
	restartAt      time.Time
}

// ErrHandingOver is the cause with which a unit's work is cancelled when this replica gives
// the unit up on purpose (a rebalance or a shutdown): it may take a moment to settle what it
// holds, since the lease is still its own until the work returns.
var ErrHandingOver = errors.New("handing the unit over")

// ErrLeaseUnconfirmed is the cause with which a unit's work is cancelled when its lease may
// be lost: it must stop at once.
var ErrLeaseUnconfirmed = errors.New("the unit's lease is not confirmed")

// fenceAfter is how long a unit's work goes on without a confirmed renewal: two thirds of
// the lease's life, so that a renewal slowed by load does not stop healthy work, and the
// work (which stops at once on this cause) is gone before the lease can expire.
func fenceAfter(takeover time.Duration) time.Duration { return leaseTTL(takeover) * 2 / 3 }

// OwnershipOption configures an Ownership.
type OwnershipOption func(*Ownership)

// WithOwnershipLogger sets the logger.
func WithOwnershipLogger(l *slog.Logger) OwnershipOption { return func(o *Ownership) { o.log = l } }

// WithOwnedChange is called with the number of owned units whenever it changes.
func WithOwnedChange(f func(owned int)) OwnershipOption {
	return func(o *Ownership) { o.onChange = f }
}

// NewOwnership prepares ownership of units for the replica memberID. The replica's heartbeat
// is put in members, live lists members' keys (a KeyList of it), and leases holds the leases.
func NewOwnership(members jetstream.KeyValue, live KeyLister, leases jetstream.KeyValue, memberID string, takeover time.Duration, units []string, work Work, opts ...OwnershipOption) *Ownership {
	o := &Ownership{
		members: members, live: live, leases: leases, id: memberID, takeover: takeover,
		units: units, work: work, log: slog.Default(), owned: map[string]*heldUnit{},
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Owned lists the units this replica owns now.
func (o *Ownership) Owned() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.owned))
	for u, h := range o.owned {
		if !h.releasing {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// Run keeps this replica's membership and leases until ctx is cancelled, then stops every
// unit's work, waits for it, and releases the leases so other replicas take over at once.
func (o *Ownership) Run(ctx context.Context) {
	t := time.NewTicker(tickEvery(o.takeover))
	defer t.Stop()
	for {
		o.step(ctx)
		select {
		case <-ctx.Done():
			o.releaseAll()
			return
		case <-t.C:
		}
	}
}

// request bounds one request to the buckets: a lease not renewed for half its TTL is given up
// anyway, so waiting much longer for an answer gains nothing (and a JetStream without a meta
// leader may not answer at all). At least 2 s, so a busy server is not taken for a failing one.
func (o *Ownership) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(leaseTTL(o.takeover)/2, 2*time.Second))
}

func leaseKey(unit string) string { return "unit." + unit }

// owner picks the member with the highest hash for unit: every replica computes the same
// answer from the same member list, and a member joining or leaving moves only its share.
func owner(members []string, unit string) string {
	var best string
	var bestScore uint64
	for _, m := range members {
		h := fnv.New64a()
		h.Write([]byte(m))
		h.Write([]byte{0})
		h.Write([]byte(unit))
		s := mix64(h.Sum64())
		if best == "" || s > bestScore || (s == bestScore && m > best) {
			best, bestScore = m, s
		}
	}
	return best
}

// mix64 is MurmurHash3's finalizer: FNV alone keeps the order of members whose ids differ in
// one character the same for every unit, which would give one replica everything.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb3fe1a85ec53
	x ^= x >> 33
	return x
}

func (o *Ownership) aliveMembers(ctx context.Context) []string {
	alive := []string{o.id}
	rctx, cancel := o.request(ctx)
	keys, err := o.live.LiveKeys(rctx)
	cancel()
	if ctx.Err() != nil {
		return nil // stopping: not a failure
	}
	o.listing.observe(o.log, err, "listing replicas failed; keeping current leases", "listing replicas works again")
	if err != nil {
		return nil
	}
	for _, k := range keys {
		if k != o.id {
			alive = append(alive, k)
		}
	}
	return alive
}

func (o *Ownership) step(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	// Every round trip of the step at once: on a server saturated by deliveries, one renewal
	// after another, or the renewals waiting for the heartbeat and the listing, took longer
	// than the fence allows between two renewals, which stopped every unit and repeated what
	// it held. The step now takes one round trip, not three.
	var renewed map[string]renewal
	var alive []string
	var wg sync.WaitGroup
	wg.Go(func() { renewed = o.renewAll(ctx) })
	wg.Go(func() {
		rctx, cancel := o.request(ctx)
		_, err := o.members.Put(rctx, o.id, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		cancel()
		if ctx.Err() == nil {
			o.heartbeat.observe(o.log, err, "membership heartbeat failed", "membership heartbeat works again")
		}
	})
	wg.Go(func() { alive = o.aliveMembers(ctx) })
	wg.Wait()
	changed := false
	for _, unit := range o.units {
		o.mu.Lock()
		h := o.owned[unit]
		o.mu.Unlock()
		want := alive != nil && owner(alive, unit) == o.id
		switch {
		case h != nil:
			changed = o.keep(unit, h, renewed[unit], want, alive == nil) || changed
		case want:
			changed = o.acquire(ctx, unit) || changed
		}
	}
	if changed && o.onChange != nil {
		o.onChange(len(o.Owned()))
	}
}

// renewal is the outcome of renewing one held lease.
type renewal struct {
	rev  uint64
	err  error
	sent time.Time // when the request left: the server stored it later, so the lease lives at least its TTL from here
}

// renewAll renews every held lease, the requests all on their way at once, and returns the
// outcomes by unit.
func (o *Ownership) renewAll(ctx context.Context) map[string]renewal {
	o.mu.Lock()
	revs := make(map[string]uint64, len(o.owned))
	for unit, h := range o.owned {
		revs[unit] = h.rev
	}
	o.mu.Unlock()
	out := make(map[string]renewal, len(revs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for unit, rev := range revs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := o.request(ctx)
			sent := time.Now()
			next, err := o.leases.Update(rctx, leaseKey(unit), []byte(o.id), rev)
			cancel()
			mu.Lock()
			out[unit] = renewal{rev: next, err: err, sent: sent}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// keep applies a held lease's renewal, restarts work that ended early, and hands the unit
// back when another replica should own it. It reports whether the set of owned units changed.
func (o *Ownership) keep(unit string, h *heldUnit, r renewal, want, unsure bool) bool {
	if r.err == nil {
		h.rev = r.rev // before anything drops the lease: a delete names the latest revision
	}
	select {
	case <-h.done:
		if h.releasing {
			h.fence.Stop()
			o.dropLease(unit, h.rev)
			o.forget(unit)
			return true
		}
		if (want || unsure) && !h.fenced.Load() {
			// The work stopped on its own (an error it could not get past); start it again.
			o.restartStopped(unit, h)
		}
	default:
	}
	err := r.err
	if err == nil {
		h.lastRenew = r.sent
		if !h.fenced.Load() {
			h.fence.Reset(max(fenceAfter(o.takeover)-time.Since(r.sent), 0))
		} else {
			select {
			case <-h.done:
				// Stopped by the fence and still ours: take up the work again.
				o.log.Info("lease confirmed again; resuming unit", "unit", unit)
				o.start(unit, h)
			default: // still stopping; the next tick resumes it
			}
		}
	} else if IsConflict(err) || time.Since(h.lastRenew) > leaseTTL(o.takeover)/2 {
		// Someone else holds it now, or we cannot prove we still do: stop at once so two
		// replicas never deliver the same unit.
		o.log.Warn("lost lease", "unit", unit, "error", err)
		h.fence.Stop()
		h.cancel(ErrLeaseUnconfirmed)
		<-h.done
		o.forget(unit)
		return true
	}
	if !want && !unsure && !h.releasing {
		o.log.Info("handing unit over", "unit", unit)
		o.mu.Lock()
		h.releasing = true
		o.mu.Unlock()
		h.cancel(ErrHandingOver)
		return true
	}
	return false
}

func (o *Ownership) acquire(ctx context.Context, unit string) bool {
	ctx, cancel := o.request(ctx)
	defer cancel()
	sent := time.Now() // the lease lives at least its TTL from here (see renewal.sent)
	rev, err := o.leases.Create(ctx, leaseKey(unit), []byte(o.id))
	if IsConflict(err) {
		// A lease left by an earlier run of this same replica id can be taken back at once.
		e, gerr := o.leases.Get(ctx, leaseKey(unit))
		if gerr != nil || string(e.Value()) != o.id {
			return false
		}
		sent = time.Now()
		if rev, err = o.leases.Update(ctx, leaseKey(unit), []byte(o.id), e.Revision()); err != nil {
			return false
		}
	} else if err != nil {
		return false
	}
	h := &heldUnit{rev: rev, lastRenew: sent}
	o.mu.Lock()
	o.owned[unit] = h
	o.mu.Unlock()
	o.log.Info("took unit", "unit", unit)
	o.start(unit, h)
	return true
}

// restartStopped starts again work that stopped on its own: at once when it had run for more
// than a tick, otherwise on the first tick after a jittered wait from when it stopped, which
// grows while the work keeps stopping early.
func (o *Ownership) restartStopped(unit string, h *heldUnit) {
	now := time.Now()
	if h.restartAt.IsZero() {
		if h.restarts == nil {
			h.restarts = backoff.New(tickEvery(o.takeover), 2*o.takeover)
		}
		if h.ended.Sub(h.started) > tickEvery(o.takeover) {
			h.restarts.Reset()
			h.restartAt = now
		} else {
			wait := h.restarts.Next()
			h.restartAt = h.ended.Add(wait)
			o.log.Debug("unit's work stopped soon after it started; starting it again later", "unit", unit,
				"ran_for", h.ended.Sub(h.started).Round(time.Millisecond).String(), "retry_in", wait.Round(time.Millisecond).String())
		}
	}
	if !now.Before(h.restartAt) {
		o.start(unit, h)
	}
}

func (o *Ownership) start(unit string, h *heldUnit) {
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	h.started, h.restartAt = time.Now(), time.Time{}
	if h.fence != nil {
		h.fence.Stop()
	}
	h.fenced.Store(false)
	// Counted from the last confirmed renewal: the lease expires that long after it at most.
	wait := max(fenceAfter(o.takeover)-time.Since(h.lastRenew), 0)
	h.fence = time.AfterFunc(wait, func() {
		h.fenced.Store(true)
		o.log.Warn("lease renewal not confirmed in time; stopping the unit until it is", "unit", unit)
		cancel(ErrLeaseUnconfirmed)
	})
	done := h.done
	go func() {
		defer close(done)
		defer func() { h.ended = time.Now() }() // before done is closed: read only after it is
		o.work(ctx, unit)
	}()
}

func (o *Ownership) forget(unit string) {
	o.mu.Lock()
	delete(o.owned, unit)
	o.mu.Unlock()
}

func (o *Ownership) dropLease(unit string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.leases.Delete(ctx, leaseKey(unit), jetstream.LastRevision(rev)); err != nil {
		o.log.Debug("releasing lease", "unit", unit, "error", err)
	}
}

func (o *Ownership) releaseAll() {
	o.mu.Lock()
	held := make(map[string]*heldUnit, len(o.owned))
	for u, h := range o.owned {
		held[u] = h
	}
	o.mu.Unlock()
	for _, h := range held {
		h.fence.Stop()
		h.cancel(ErrHandingOver)
	}
	for u, h := range held {
		<-h.done
		o.dropLease(u, h.rev)
		o.forget(u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.members.Delete(ctx, o.id)
	if o.onChange != nil {
		o.onChange(0)
	}
}
