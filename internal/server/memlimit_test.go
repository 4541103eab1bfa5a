package server

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
	"testing/fstest"
)

func TestContainerMemoryLimit(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		want  int64
		ok    bool
	}{
		{"cgroup v2 limit", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("268435456\n")}}, 268435456, true},
		{"cgroup v2 no limit", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("max\n")}}, 0, false},
		{"cgroup v1 limit", fstest.MapFS{"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("536870912\n")}}, 536870912, true},
		{"cgroup v1 no limit", fstest.MapFS{"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")}}, 0, false},
		{"v2 before v1", fstest.MapFS{
			"sys/fs/cgroup/memory.max":                   {Data: []byte("1000000\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("2000000\n")},
		}, 1000000, true},
		{"garbage", fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("lots\n")}}, 0, false},
		{"no cgroup files", fstest.MapFS{}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := containerMemoryLimit(tc.files)
			if got != tc.want || ok != tc.ok {
				t.Errorf("containerMemoryLimit = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestApplyMemoryLimit: the collector's soft limit becomes 90% of the container's, and
// GOMEMLIMIT, when set, wins.
func TestApplyMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	limited := fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("1000000000\n")}}

	if got := applyMemoryLimit(log, limited, "500MiB"); got != 0 || debug.SetMemoryLimit(-1) != before {
		t.Errorf("with GOMEMLIMIT set: applied %d, limit now %d; want it left at %d", got, debug.SetMemoryLimit(-1), before)
	}
	if got := applyMemoryLimit(log, fstest.MapFS{}, ""); got != 0 || debug.SetMemoryLimit(-1) != before {
		t.Errorf("without a container limit: applied %d; want none", got)
	}
	if got := applyMemoryLimit(log, limited, ""); got != 900000000 || debug.SetMemoryLimit(-1) != 900000000 {
		t.Errorf("applied %d, limit now %d; want 900000000", got, debug.SetMemoryLimit(-1))
	}
}
