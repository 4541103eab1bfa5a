package dispatcher

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/roomhook/roomhook/sender"
)

// TestActivityWritesNewsAtOnceAndSuccessesWhenQuiet: an error or a dead letter is written at
// the next flush; an endpoint that only delivered is written once its quiet interval has
// passed since its last write, and a final flush writes everything that changed.
func TestActivityWritesNewsAtOnceAndSuccessesWhenQuiet(t *testing.T) {
	ok := sender.Attempt{Verdict: sender.Delivered, Status: 200}
	failed := sender.Attempt{Verdict: sender.Retry, Status: 503}
	tests := []struct {
		name    string
		record  func(a *activityBook, id string)
		urgent  bool
		wantKey string // a field the written record must have
	}{
		{"success only", func(a *activityBook, id string) { a.attempt(id, ok, time.Now()) }, false, "last_success"},
		{"in flight only", func(a *activityBook, id string) { a.inFlight(id, 1) }, false, "in_flight"},
		{"error", func(a *activityBook, id string) { a.attempt(id, failed, time.Now()) }, true, "last_error"},
		{"dead letter after a success", func(a *activityBook, id string) {
			a.attempt(id, ok, time.Now())
			a.deadLettered(id)
		}, true, "last_success"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newActivityBook()
			a.quiet = time.Hour
			tc.record(a, "ep")
			got := a.due(false)
			if _, written := got["ep"]; written != tc.urgent {
				t.Fatalf("written at the next flush: %v, want %v", written, tc.urgent)
			}
			if !tc.urgent {
				got = a.due(true) // the final flush
			}
			var rec map[string]any
			if err := json.Unmarshal(got["ep"], &rec); err != nil {
				t.Fatal(err)
			}
			if _, has := rec[tc.wantKey]; !has {
				t.Errorf("written record %s has no %s", got["ep"], tc.wantKey)
			}
			if again := a.due(true); len(again) != 0 {
				t.Errorf("written again with nothing new: %v", slices.Collect(maps.Keys(again)))
			}
		})
	}

	t.Run("success written once quiet", func(t *testing.T) {
		a := newActivityBook()
		a.quiet = 50 * time.Millisecond
		a.attempt("ep", ok, time.Now())
		start := time.Now()
		for len(a.due(false)) == 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatal("a success was never written without a final flush")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Since(start) < a.quiet/2 {
			t.Errorf("written after %s, before its quiet interval of %s", time.Since(start), a.quiet)
		}
	})
}
