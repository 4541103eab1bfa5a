package subscriber

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
)

// HeldSet is the messages of one consumer that this replica holds: pulled, not yet settled.
// It keeps them alive with InProgress so the server does not redeliver them while a delivery
// waits for its turn or its next retry, and hands them all back with Nak when the replica lets
// go of the work, so the next owner gets them first and in stream order.
type HeldSet struct {
	mu   sync.Mutex
	msgs map[uint64]heldMsg
}

// heldMsg is a held message and when the server last heard of it (delivered, or marked in
// progress): a message settled within a keep-alive interval, as most are, is never marked.
type heldMsg struct {
	m       jetstream.Msg
	touched time.Time
}

// NewHeldSet returns an empty set.
func NewHeldSet() *HeldSet { return &HeldSet{msgs: map[uint64]heldMsg{}} }

// Add records a pulled message under its stream sequence. It reports whether the sequence was
// already held: then m is a redelivery of a message being worked on, and only its newer
// handle is kept.
func (h *HeldSet) Add(seq uint64, m jetstream.Msg) (already bool) {
	now := time.Now()
	h.mu.Lock()
	_, already = h.msgs[seq]
	h.msgs[seq] = heldMsg{m: m, touched: now}
	h.mu.Unlock()
	return already
}

// Tries of Ack, the deadline of each, and the jittered waits between them.
const (
	ackTries      = 3
	ackTimeout    = 2 * time.Second
	ackRetryFirst = 50 * time.Millisecond
	ackRetryLimit = 500 * time.Millisecond
)

// Ack settles a message, waits until the server has confirmed it, and forgets it. Waiting is
// what lets a room's next delivery go out only once this one can no longer come back: after a
// crash a receiver may see the delivery that was in flight again, but never an older one.
//
// It tries up to ackTries times, each with a deadline of ackTimeout and a short jittered
// wait between tries. When the server does not confirm, the message stays held and the error
// is returned: the caller must not go on with the room, because the message may come back.
func (h *HeldSet) Ack(ctx context.Context, seq uint64) error {
	h.mu.Lock()
	hm, ok := h.msgs[seq]
	h.mu.Unlock()
	if !ok {
		return nil
	}
	m := hm.m
	var err error
	b := backoff.New(ackRetryFirst, ackRetryLimit)
	for try := 0; try < ackTries; try++ {
		if try > 0 && !b.Wait(ctx) {
			break
		}
		actx, cancel := context.WithTimeout(ctx, ackTimeout)
		err = m.DoubleAck(actx)
		cancel()
		if err == nil {
			h.mu.Lock()
			delete(h.msgs, seq)
			h.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

// Len is how many messages are held.
func (h *HeldSet) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

// KeepAlive marks held messages in progress until ctx ends: every interval, those the server
// has not heard of for half an interval or more, so a message is marked at most one interval
// after it was last heard of (as when every message was marked at every tick) and one settled
// within half an interval is never marked. every must be well under the consumer's ack wait
// (KeepAliveEvery).
func (h *HeldSet) KeepAlive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var batch []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		batch = batch[:0]
		now := time.Now()
		h.mu.Lock()
		for seq, hm := range h.msgs {
			if now.Sub(hm.touched) >= every/2 {
				batch = append(batch, hm.m)
				hm.touched = now
				h.msgs[seq] = hm
			}
		}
		h.mu.Unlock()
		for _, m := range batch {
			_ = m.InProgress()
		}
	}
}

// StartKeepAlive runs KeepAlive in a goroutine of its own until the returned stop is called;
// stop waits for it to end and may be called more than once. Unlike a KeepAlive on the run's
// context, it outlives a cancelled run, so held messages stay alive until they are handed back.
func (h *HeldSet) StartKeepAlive(every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.KeepAlive(ctx, every)
	}()
	return func() { cancel(); <-done }
}

// HandBack naks every held message so it is redelivered at once to whoever pulls next. The
// server queues naked messages for redelivery in the order it receives the naks, so they go
// in stream order.
func (h *HeldSet) HandBack() int {
	h.mu.Lock()
	msgs := h.msgs
	h.msgs = map[uint64]heldMsg{}
	h.mu.Unlock()
	seqs := make([]uint64, 0, len(msgs))
	for seq := range msgs {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		_ = msgs[seq].m.Nak()
	}
	return len(msgs)
}

// Release acknowledges a message without waiting for the server's confirmation, and forgets
// it. For messages whose loss of acknowledgement costs only a repeat: a message whose ack is
// lost comes back after the ack wait and is acknowledged again.
func (h *HeldSet) Release(seq uint64) {
	h.mu.Lock()
	hm, ok := h.msgs[seq]
	delete(h.msgs, seq)
	h.mu.Unlock()
	if ok {
		_ = hm.m.Ack()
	}
}
