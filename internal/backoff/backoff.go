// Package backoff is the exponential backoff with jitter that roomhook's restart and retry
// loops wait with, so that replicas retrying the same failure spread out instead of
// hammering the server in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with jitter: each wait doubles up to a limit and is drawn
// within ±25% of its nominal value. It is not safe for concurrent use; each loop has its own.
type Backoff struct {
	first, limit, cur time.Duration
}

// New returns a Backoff whose first wait is about first and whose waits grow to about limit.
func New(first, limit time.Duration) *Backoff {
	return &Backoff{first: first, limit: limit}
}

// Next returns the next wait: doubling up to the limit, each within ±25%.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.first
	} else if b.cur < b.limit {
		b.cur = min(2*b.cur, b.limit)
	}
	return time.Duration(float64(b.cur) * (0.75 + rand.Float64()/2))
}

// Reset starts the waits over from the first: call it after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait waits for the next wait, or until ctx ends, and reports whether the whole wait passed.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
