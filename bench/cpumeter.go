package bench

import "time"

// cpuMeter measures the CPU time the whole bench process uses over a stretch of a scenario:
// every part of the benchmark runs in this one process (publisher, nats-server, replicas,
// receivers), so its CPU per delivery is what the machine spends on one, whoever spends it.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

// startCPU starts a meter; on a system where the process's CPU time cannot be read, the
// meter reports nothing.
func startCPU() cpuMeter {
	t, err := processCPU()
	return cpuMeter{start: t, ok: err == nil}
}

// microsPer is the CPU used since startCPU in microseconds per one of n, and whether it
// could be measured.
func (m cpuMeter) microsPer(n int) (float64, bool) {
	if !m.ok || n <= 0 {
		return 0, false
	}
	t, err := processCPU()
	if err != nil {
		return 0, false
	}
	return float64((t - m.start).Microseconds()) / float64(n), true
}
