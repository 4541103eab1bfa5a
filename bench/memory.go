package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// peakSampler samples a memory figure until stopped and keeps the highest value.
type peakSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
	read func() (uint64, error)
}

func startSampler(every time.Duration, read func() (uint64, error)) *peakSampler {
	s := &peakSampler{stop: make(chan struct{}), done: make(chan struct{}), read: read}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *peakSampler) sample() {
	v, err := s.read()
	if err != nil {
		return
	}
	for {
		cur := s.peak.Load()
		if v <= cur || s.peak.CompareAndSwap(cur, v) {
			return
		}
	}
}

// finish stops sampling and returns the peak in bytes.
func (s *peakSampler) finish() uint64 {
	close(s.stop)
	<-s.done
	s.sample()
	return s.peak.Load()
}

// heapInUse is the Go heap in use of this process (spans holding objects).
func heapInUse() (uint64, error) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, nil
}

// processMemory reads a field (VmRSS, VmHWM) of /proc/<pid>/status, in bytes.
func processMemory(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
