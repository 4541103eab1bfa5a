package sender

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// ErrInvalidRetrySchedule marks a retry schedule or jitter that cannot be used.
var ErrInvalidRetrySchedule = errors.New("invalid retry schedule")

// RetrySchedule is when attempts happen: Steps[0] is the delay before the first attempt
// (normally 0), Steps[i] before attempt i+1. Jitter is the fraction, in [0,1), by which each
// delay is randomly lengthened or shortened so that many failed deliveries do not all come
// back at the same instant.
type RetrySchedule struct {
	Steps  []time.Duration
	Jitter float64
}

// The contract's retry schedule, in the form of ROOMHOOK_RETRY_SCHEDULE and _JITTER (whose
// defaults in internal/server/config.go spell the same, as its tests check): at once, then 1s,
// 5s, 30s, 2m, 10m, 30m, 1h, 3h and 6h later, each delay ±20%. Ten attempts span about 10h45m.
const (
	DefaultRetrySteps  = "0s,1s,5s,30s,2m,10m,30m,1h,3h,6h"
	DefaultRetryJitter = 0.2
)

// DefaultRetrySchedule is the contract's schedule, DefaultRetrySteps ± DefaultRetryJitter.
func DefaultRetrySchedule() RetrySchedule {
	s, err := ParseRetrySchedule(DefaultRetrySteps, DefaultRetryJitter)
	if err != nil {
		panic("sender: DefaultRetrySteps: " + err.Error()) // a broken constant; TestRetryDefaultSchedule fails
	}
	return s
}

// ParseRetrySchedule reads a comma-separated list of Go durations such as
// "0s,1s,5s,30s,2m,10m,30m,1h,3h,6h" (the form of ROOMHOOK_RETRY_SCHEDULE). Spaces around
// entries are ignored. An empty list or entry, an unparsable or negative duration, or a jitter
// outside [0,1) is an error wrapping ErrInvalidRetrySchedule.
func ParseRetrySchedule(s string, jitter float64) (RetrySchedule, error) {
	if !(jitter >= 0 && jitter < 1) { // also refuses NaN
		return RetrySchedule{}, fmt.Errorf("%w: jitter %v is outside [0,1)", ErrInvalidRetrySchedule, jitter)
	}
	if strings.TrimSpace(s) == "" {
		return RetrySchedule{}, fmt.Errorf("%w: no steps", ErrInvalidRetrySchedule)
	}
	entries := strings.Split(s, ",")
	steps := make([]time.Duration, 0, len(entries))
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			return RetrySchedule{}, fmt.Errorf("%w: step %d is empty", ErrInvalidRetrySchedule, i+1)
		}
		d, err := time.ParseDuration(e)
		if err != nil {
			return RetrySchedule{}, fmt.Errorf("%w: step %d: %w", ErrInvalidRetrySchedule, i+1, err)
		}
		if d < 0 {
			return RetrySchedule{}, fmt.Errorf("%w: step %d (%s) is negative", ErrInvalidRetrySchedule, i+1, e)
		}
		steps = append(steps, d)
	}
	return RetrySchedule{Steps: steps, Jitter: jitter}, nil
}

// Attempts is how many attempts the schedule allows in all, the first one included.
func (r RetrySchedule) Attempts() int { return len(r.Steps) }

// String renders the steps in the form ParseRetrySchedule reads.
func (r RetrySchedule) String() string {
	parts := make([]string, len(r.Steps))
	for i, d := range r.Steps {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// NextDelay says, after attempt number attempt (1-based) failed, how long to wait before the
// next one, and false when the schedule is exhausted. NextDelay(0, ...) is the delay before the
// first attempt.
//
// The step's delay is scaled by a factor drawn uniformly from [1-Jitter, 1+Jitter) using rnd,
// which returns values in [0,1); a nil rnd uses math/rand/v2. retryAfter, the receiver's
// Retry-After, replaces the jittered delay when it is longer, but never beyond the schedule's
// largest step, so a receiver cannot park a delivery for longer than the operator allowed.
// The receiver's wish is not jittered: it asked not to be called before that time.
func (r RetrySchedule) NextDelay(attempt int, retryAfter time.Duration, rnd func() float64) (time.Duration, bool) {
	attempt = max(attempt, 0)
	if attempt >= len(r.Steps) {
		return 0, false
	}
	delay := r.Steps[attempt]
	if r.Jitter > 0 && delay > 0 {
		if rnd == nil {
			rnd = rand.Float64
		}
		u := min(max(rnd(), 0), math.Nextafter(1, 0))
		scaled := float64(delay) * (1 + r.Jitter*(2*u-1))
		if scaled >= math.MaxInt64 { // float64(MaxInt64) is 2^63, which int64 cannot hold
			delay = math.MaxInt64
		} else {
			delay = time.Duration(scaled)
		}
	}
	if wish := min(retryAfter, slices.Max(r.Steps)); wish > delay {
		delay = wish
	}
	return delay, true
}
