package dispatcher

import (
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	type sample struct {
		after    time.Duration // since the previous sample
		holding  bool
		progress uint64
		want     bool
	}
	for _, tc := range []struct {
		name    string
		samples []sample
	}{
		{"holding with no progress past the limit", []sample{
			{0, true, 1, false}, {5 * time.Second, true, 1, false}, {5 * time.Second, true, 1, true}}},
		{"progress resets the clock", []sample{
			{0, true, 1, false}, {8 * time.Second, true, 2, false}, {8 * time.Second, true, 2, false}, {2 * time.Second, true, 2, true}}},
		{"holding nothing is never a stall", []sample{
			{0, false, 1, false}, {30 * time.Second, false, 1, false}, {time.Second, true, 1, false}}},
		{"work taken after an idle spell gets the whole limit", []sample{
			{0, true, 3, false}, {20 * time.Second, false, 3, false}, {9 * time.Second, true, 3, false}, {time.Second, true, 3, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			w := &stallWatch{limit: 10 * time.Second, since: now, now: func() time.Time { return now }}
			for i, s := range tc.samples {
				now = now.Add(s.after)
				if got := w.stalled(s.holding, s.progress); got != s.want {
					t.Fatalf("sample %d (%+v): stalled = %v, want %v", i, s, got, s.want)
				}
			}
		})
	}
}
