package natstest

import (
	"io"
	"log/slog"
	"os"
)

// TestLogEnv names the environment variable that makes Logger print: ROOMHOOK_TEST_LOG=1 go
// test ... shows the debug logs of what the tests run.
const TestLogEnv = "ROOMHOOK_TEST_LOG"

// Logger is the logger for what a test runs: silent, unless ROOMHOOK_TEST_LOG is set, then
// every record at debug level on stderr. It does not write through t.Log, because components
// may still log after their test has ended, which t.Log does not allow.
func Logger() *slog.Logger {
	if os.Getenv(TestLogEnv) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
