package natstest

import (
	"testing"
	"time"
)

// waitPoll is how often WaitFor looks again: short against the timeouts tests use, long enough
// not to spin on a shared CPU.
const waitPoll = 20 * time.Millisecond

// WaitFor waits until cond holds, and fails the test naming what it waited for when timeout
// passes first. It waits for something to happen; to show that nothing more happens, send a
// barrier event after the last one and wait for the barrier instead of sleeping.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(waitPoll)
	}
}
