package natstest

import (
	"os"
	"strings"
	"testing"
)

// ClearRoomhookEnv unsets every ROOMHOOK_* variable until the test ends, so that only what the
// test sets counts for code that reads the environment (server.LoadConfig). A test that calls it
// cannot run in parallel; tests that only need a configuration build one without the
// environment (servertest.Config).
func ClearRoomhookEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ROOMHOOK_") {
			t.Setenv(k, "") // restores the value when the test ends
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
	}
}
