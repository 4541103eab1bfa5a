package dispatcher

import (
	"runtime"
	"testing"
)

// TestGoOwnedStartsNothingOnceClosed: once a stopping partition waits for its goroutines, a
// late spill (a notification, an attempt's slow-watch timer) starts no writer or drainer that
// nobody would wait for; the goroutines started before are waited for.
func TestGoOwnedStartsNothingOnceClosed(t *testing.T) {
	pt := &partition{}
	release := make(chan struct{})
	finished := false
	if !pt.goOwned(func() { <-release; finished = true }) {
		t.Fatal("goOwned refused a goroutine before the partition stopped")
	}
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		pt.closeAndWait()
	}()
	for closed := false; !closed; runtime.Gosched() {
		pt.goMu.Lock()
		closed = pt.closed
		pt.goMu.Unlock()
	}
	if pt.goOwned(func() { t.Error("a goroutine started after the partition began its wait") }) {
		t.Error("goOwned started a goroutine after the partition began its wait")
	}
	close(release)
	<-waited
	if !finished {
		t.Error("closeAndWait returned before the goroutine it started ended")
	}
}
