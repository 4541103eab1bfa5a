package server

import (
	"errors"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimitShare is the part of the container's memory limit that Go's garbage collector
// aims to stay under. Without a soft limit the heap grows to twice what is live before a
// collection (GOGC=100): the benchmark's backlog replica peaked at 275 MB of RSS with about
// half of that live. The rest of the limit is for what the collector does not count (stacks
// beyond the heap, the binary, buffers in the kernel's accounting).
const memoryLimitShare = 0.9

// containerMemoryLimit reads the memory limit of the container from root (the host's "/"),
// false when there is none. It looks where cgroup v2, then v1, keep it: both are the
// container's own cgroup when it has a cgroup namespace, as under Kubernetes and Docker.
func containerMemoryLimit(root fs.FS) (int64, bool) {
	for _, name := range [...]string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := fs.ReadFile(root, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 writes "no limit" as the largest page-aligned int64.
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// applyMemoryLimit gives Go a soft memory limit of memoryLimitShare of the container's limit,
// unless GOMEMLIMIT (gomemlimit, which Go has applied already) sets one or there is no limit.
// It returns the limit set, 0 for none.
func applyMemoryLimit(log *slog.Logger, root fs.FS, gomemlimit string) int64 {
	if gomemlimit != "" {
		return 0
	}
	limit, ok := containerMemoryLimit(root)
	if !ok {
		return 0
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	log.Info("memory limit of the container applied to the garbage collector", "container_limit_bytes", limit, "soft_limit_bytes", soft)
	return soft
}
