package sender

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultMaxConnsPerHost is how many attempts, and so connections, a Sender has in flight to
// one receiver host at most unless WithMaxConnsPerHost says otherwise.
const DefaultMaxConnsPerHost = 256

// DefaultMaxConns is how many attempts, and so connections, a Sender has in flight to all
// receivers together at most unless WithMaxConns says otherwise.
const DefaultMaxConns = 4096

// connLimiter bounds the attempts in flight: per receiver host (scheme, host and port), then
// replica-wide. An attempt takes its host's slot first and only then a replica-wide one, so
// attempts queued behind a saturated or hanging host hold no replica-wide slot and cannot take
// the other hosts' share. A host's entry lives while an attempt holds or waits for one of its
// slots and is deleted with the last one, so its memory follows the live work however many
// per-room endpoints come and go.
type connLimiter struct {
	perHost int
	total   chan struct{} // replica-wide semaphore: a value in it is a slot held

	mu    sync.Mutex
	hosts map[hostKey]*hostSlots

	// spare holds entries of hosts that went idle, their semaphores empty, so that a host's
	// first attempt after a quiet spell reuses one instead of allocating; the garbage
	// collector may empty it.
	spare sync.Pool
}

// hostKey names a receiver host the way the transport pools its connections: scheme, lower-case
// host name and port (the scheme's default when the URL has none). Substrings of the URL, so
// making one allocates nothing.
type hostKey struct {
	scheme, host, port string
}

func hostKeyOf(u *url.URL) hostKey {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	// url.Parse has lower-cased the scheme already; ToLower returns an already lower-case
	// host unchanged without allocating.
	return hostKey{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: port}
}

// hostSlots is one host's semaphore and the number of attempts that hold or wait for one of
// its slots (refs, guarded by connLimiter.mu).
type hostSlots struct {
	sem  chan struct{}
	refs int
}

func newConnLimiter(perHost, total int) *connLimiter {
	l := &connLimiter{
		perHost: perHost,
		total:   make(chan struct{}, total),
		hosts:   make(map[hostKey]*hostSlots),
	}
	l.spare.New = func() any { return &hostSlots{sem: make(chan struct{}, l.perHost)} }
	return l
}

// acquire takes a slot of key's host and then a replica-wide one, waiting until both are free,
// ctx ends or wait has passed (both waits together); it returns ctx's error, or
// context.DeadlineExceeded when wait passed, holding nothing. On success the caller must call
// release with the returned entry once the attempt is done. A timer for wait is made only when
// a slot is not free at once, so the path of an attempt that does not wait allocates nothing.
func (l *connLimiter) acquire(ctx context.Context, key hostKey, wait time.Duration) (*hostSlots, error) {
	l.mu.Lock()
	h := l.hosts[key]
	if h == nil {
		h = l.spare.Get().(*hostSlots)
		l.hosts[key] = h
	}
	h.refs++
	l.mu.Unlock()

	w := slotWait{ctx: ctx, wait: wait}
	defer w.stop()
	if err := w.take(h.sem); err != nil {
		l.unref(key, h)
		return nil, err
	}
	if err := w.take(l.total); err != nil {
		<-h.sem
		l.unref(key, h)
		return nil, err
	}
	return h, nil
}

// slotWait is one acquire's waiting: until ctx ends or wait has passed since the first slot
// that was not free at once.
type slotWait struct {
	ctx   context.Context
	wait  time.Duration
	timer *time.Timer // made when a wait starts
}

// take takes a slot of sem, waiting until one is free, ctx ends or the wait is over. A free
// slot is taken even when ctx has ended meanwhile, as the select alone might not.
func (w *slotWait) take(sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	if w.timer == nil {
		w.timer = time.NewTimer(w.wait)
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	case <-w.timer.C:
		return context.DeadlineExceeded
	}
}

func (w *slotWait) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// release gives back the slots acquire took for key.
func (l *connLimiter) release(key hostKey, h *hostSlots) {
	<-l.total
	<-h.sem
	l.unref(key, h)
}

// unref drops one attempt from h and deletes the entry with the last one. Its semaphore is
// empty then: every slot taken was given back before its holder's unref.
func (l *connLimiter) unref(key hostKey, h *hostSlots) {
	l.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last {
		delete(l.hosts, key)
	}
	l.mu.Unlock()
	if last {
		l.spare.Put(h)
	}
}
