package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNextDoublesWithinJitterUpToTheLimit(t *testing.T) {
	b := New(100*time.Millisecond, 800*time.Millisecond)
	nominal := []time.Duration{100, 200, 400, 800, 800, 800}
	for i, n := range nominal {
		n *= time.Millisecond
		got := b.Next()
		if lo, hi := n*3/4, n*5/4; got < lo || got > hi {
			t.Fatalf("wait %d = %v, want within [%v, %v]", i, got, lo, hi)
		}
	}
	b.Reset()
	if got := b.Next(); got > 125*time.Millisecond {
		t.Fatalf("after Reset the wait is %v, want about the first (100ms)", got)
	}
}

func TestNextIsJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[New(time.Second, time.Second).Next()] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 first waits were all %v: no jitter", seen)
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if New(time.Hour, time.Hour).Wait(ctx) {
		t.Fatal("Wait reported a full wait on a cancelled context")
	}
	if !New(time.Millisecond, time.Millisecond).Wait(context.Background()) {
		t.Fatal("Wait of 1ms reported it was cut short")
	}
}
