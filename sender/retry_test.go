package sender_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/roomhook/roomhook/sender"
)

func TestRetryDefaultSchedule(t *testing.T) {
	def := sender.DefaultRetrySchedule()
	want := []time.Duration{0, time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
		10 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour}
	if !slices.Equal(def.Steps, want) || def.Jitter != 0.2 {
		t.Fatalf("DefaultRetrySchedule() = %v ±%v, want %v ±0.2", def.Steps, def.Jitter, want)
	}
	if def.Attempts() != 10 {
		t.Errorf("Attempts() = %d, want 10", def.Attempts())
	}
	again, err := sender.ParseRetrySchedule(def.String(), def.Jitter)
	if err != nil || !slices.Equal(again.Steps, def.Steps) {
		t.Errorf("String() %q does not parse back: %v %v", def.String(), again.Steps, err)
	}
}

func TestParseRetrySchedule(t *testing.T) {
	tests := []struct {
		in      string
		jitter  float64
		want    []time.Duration
		wantErr bool
	}{
		{in: "0s,1s,5s", jitter: 0.2, want: []time.Duration{0, time.Second, 5 * time.Second}},
		{in: " 0 , 1m30s ,2h ", jitter: 0, want: []time.Duration{0, 90 * time.Second, 2 * time.Hour}},
		{in: "250ms", jitter: 0.99, want: []time.Duration{250 * time.Millisecond}},
		{in: "", jitter: 0.2, wantErr: true},
		{in: "  ", jitter: 0.2, wantErr: true},
		{in: "1s,,2s", jitter: 0.2, wantErr: true},
		{in: "1s,", jitter: 0.2, wantErr: true},
		{in: "1s,-5s", jitter: 0.2, wantErr: true},
		{in: "1s,soon", jitter: 0.2, wantErr: true},
		{in: "5", jitter: 0.2, wantErr: true}, // a unitless number is ambiguous
		{in: "1s", jitter: -0.1, wantErr: true},
		{in: "1s", jitter: 1, wantErr: true},
		{in: "1s", jitter: math.NaN(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q±%v", tt.in, tt.jitter), func(t *testing.T) {
			got, err := sender.ParseRetrySchedule(tt.in, tt.jitter)
			if tt.wantErr {
				if !errors.Is(err, sender.ErrInvalidRetrySchedule) {
					t.Fatalf("ParseRetrySchedule = %v, %v; want an ErrInvalidRetrySchedule", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Steps, tt.want) || got.Jitter != tt.jitter {
				t.Errorf("ParseRetrySchedule = %v ±%v, want %v ±%v", got.Steps, got.Jitter, tt.want, tt.jitter)
			}
		})
	}
}

func TestRetryNextDelayJitterBounds(t *testing.T) {
	sched := sender.DefaultRetrySchedule()
	rnd := rand.New(rand.NewPCG(1, 2)).Float64
	const draws = 5000
	for attempt := 1; attempt < sched.Attempts(); attempt++ {
		step := sched.Steps[attempt]
		lo, hi := time.Duration(float64(step)*0.8), time.Duration(float64(step)*1.2)
		minSeen, maxSeen := time.Duration(math.MaxInt64), time.Duration(0)
		var sum float64
		for range draws {
			d, ok := sched.NextDelay(attempt, 0, rnd)
			if !ok {
				t.Fatalf("NextDelay(%d) exhausted", attempt)
			}
			if d < lo || d > hi {
				t.Fatalf("NextDelay(%d) = %v, outside [%v, %v]", attempt, d, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
			sum += float64(d)
		}
		// The jitter must really spread retries over the whole band, centred on the step.
		if minSeen > time.Duration(float64(step)*0.82) || maxSeen < time.Duration(float64(step)*1.18) {
			t.Errorf("attempt %d: delays only span [%v, %v] of [%v, %v]", attempt, minSeen, maxSeen, lo, hi)
		}
		if mean := sum / draws; math.Abs(mean-float64(step)) > 0.02*float64(step) {
			t.Errorf("attempt %d: mean delay %v, want about %v", attempt, time.Duration(mean), step)
		}
	}
}

func TestRetryNextDelayJitterEdges(t *testing.T) {
	sched := sender.RetrySchedule{Steps: []time.Duration{0, 10 * time.Second}, Jitter: 0.2}
	constant := func(v float64) func() float64 { return func() float64 { return v } }
	tests := []struct {
		name    string
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{"lowest draw", 1, constant(0), 8 * time.Second},
		{"middle draw", 1, constant(0.5), 10 * time.Second},
		{"out-of-range draw is clamped", 1, constant(7), 12 * time.Second},
		{"a zero step stays zero", 0, constant(1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sched.NextDelay(tt.attempt, 0, tt.rnd)
			diff := got - tt.want
			if !ok || diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("NextDelay = %v, %v; want %v, true", got, ok, tt.want)
			}
		})
	}
	noJitter := sender.RetrySchedule{Steps: []time.Duration{0, time.Minute}}
	got, _ := noJitter.NextDelay(1, 0, func() float64 { t.Error("rnd called without jitter"); return 0 })
	if got != time.Minute {
		t.Errorf("without jitter NextDelay(1) = %v, want 1m", got)
	}
	for range 100 { // a nil rnd draws from math/rand/v2
		if got, _ := sched.NextDelay(1, 0, nil); got < 8*time.Second || got > 12*time.Second {
			t.Fatalf("NextDelay with nil rnd = %v, outside [8s, 12s]", got)
		}
	}
}

func TestRetryNextDelayRetryAfter(t *testing.T) {
	sched := sender.RetrySchedule{Steps: []time.Duration{0, time.Second, time.Minute, time.Hour}, Jitter: 0.2}
	mid := func() float64 { return 0.5 } // no jitter effect, so the expectations are exact
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		rnd        func() float64
		want       time.Duration
	}{
		{"shorter than the step is ignored", 2, 10 * time.Second, mid, time.Minute},
		{"longer than the step is honoured", 1, 2 * time.Minute, mid, 2 * time.Minute},
		{"not jittered", 1, 2 * time.Minute, func() float64 { return 0 }, 2 * time.Minute},
		{"capped at the largest step", 1, 24 * time.Hour, mid, time.Hour},
		{"cap never shortens a jittered last step", 3, 24 * time.Hour, func() float64 { return 0.99 }, 71*time.Minute + 45*time.Second + 600*time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sched.NextDelay(tt.attempt, tt.retryAfter, tt.rnd)
			diff := got - tt.want
			if !ok || diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("NextDelay(%d, %v) = %v, %v; want %v, true", tt.attempt, tt.retryAfter, got, ok, tt.want)
			}
		})
	}
}

func TestRetryNextDelayExhausted(t *testing.T) {
	sched := sender.DefaultRetrySchedule()
	mid := func() float64 { return 0.5 }
	if d, ok := sched.NextDelay(0, 0, mid); !ok || d != 0 {
		t.Errorf("before the first attempt: %v, %v; want 0, true", d, ok)
	}
	if d, ok := sched.NextDelay(9, 0, mid); !ok || d != 6*time.Hour {
		t.Errorf("after attempt 9: %v, %v; want 6h, true", d, ok)
	}
	for _, attempt := range []int{10, 11, 1000} {
		if d, ok := sched.NextDelay(attempt, time.Hour, mid); ok {
			t.Errorf("after attempt %d: %v, true; want the schedule exhausted", attempt, d)
		}
	}
	if _, ok := (sender.RetrySchedule{}).NextDelay(0, 0, mid); ok {
		t.Error("an empty schedule allows an attempt")
	}
	// Counting attempts with NextDelay gives exactly Attempts() attempts.
	attempts := 0
	for n := 0; ; n++ {
		if _, ok := sched.NextDelay(n, 0, mid); !ok {
			break
		}
		attempts++
	}
	if attempts != sched.Attempts() {
		t.Errorf("NextDelay allowed %d attempts, Attempts() = %d", attempts, sched.Attempts())
	}
}

func ExampleRetrySchedule_NextDelay() {
	sched, err := sender.ParseRetrySchedule("0s,1s,5s,30s", 0.2)
	if err != nil {
		fmt.Println(err)
		return
	}
	noJitter := func() float64 { return 0.5 } // the middle of the jitter band
	for attempt := 1; ; attempt++ {
		d, ok := sched.NextDelay(attempt, 0, noJitter)
		if !ok {
			fmt.Printf("attempt %d failed: dead letter\n", attempt)
			break
		}
		fmt.Printf("attempt %d failed: retry in %v\n", attempt, d)
	}
	// A 429 with Retry-After: 10 after the second attempt waits 10s instead of 5s.
	d, _ := sched.NextDelay(2, 10*time.Second, noJitter)
	fmt.Println(d)
	// Output:
	// attempt 1 failed: retry in 1s
	// attempt 2 failed: retry in 5s
	// attempt 3 failed: retry in 30s
	// attempt 4 failed: dead letter
	// 10s
}
