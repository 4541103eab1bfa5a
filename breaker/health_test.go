package breaker

import (
	"testing"
	"time"
)

func TestHealthKeys(t *testing.T) {
	t.Parallel()
	if got := Key("0123456789abcdef"); got != "breaker.0123456789abcdef" {
		t.Errorf("Key = %q", got)
	}
	if got := ActivityKey("0123456789abcdef", "replica-1"); got != "activity.0123456789abcdef.replica-1" {
		t.Errorf("ActivityKey = %q", got)
	}
}

// Workers let go of an endpoint's deliveries only while its breaker is open and the next
// probe is not due soon.
func TestRecordShouldPark(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, c := range []struct {
		rec  Record
		park bool
	}{
		{Record{State: Closed}, false},
		{Record{State: HalfOpen, ProbeAt: now.Add(time.Minute)}, false},
		{Record{State: Open, ProbeAt: now.Add(time.Second)}, false},
		{Record{State: Open, ProbeAt: now.Add(parkAfter)}, true},
		{Record{State: Open, ProbeAt: now.Add(time.Minute)}, true},
	} {
		if got := c.rec.ShouldPark(now); got != c.park {
			t.Errorf("%+v: ShouldPark = %v, want %v", c.rec, got, c.park)
		}
	}
}
