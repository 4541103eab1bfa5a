//go:build unix

package natstest

import (
	"syscall"
	"testing"
	"time"
)

// ProcessCPU is the CPU time this process has used so far, user and system: a benchmark's
// client and the embedded servers it started, which share the process. Benchmarks report the
// difference over their loop per operation.
func ProcessCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
