package server

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// registerReadinessMetrics exports what /readyz and the NATS connection say, computed at each
// scrape, so that an alert sees a replica that is up but cannot deliver (roomhook_ready 0)
// without anyone probing /readyz, and tells a lost NATS connection from the rest. The JetStream
// round trip behind roomhook_ready is the readiness check's, cached for a second: scrapes add at
// most one per second to what probes already cost.
func registerReadinessMetrics(reg prometheus.Registerer, r *readiness) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "roomhook_ready",
			Help: "1 when this replica passes /readyz (connected to NATS, the dispatcher running, its streams and buckets in place), else 0.",
		}, func() float64 { return boolGauge(r.check(context.Background()) == nil) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "roomhook_nats_connected",
			Help: "1 while this replica is connected to NATS, 0 while it reconnects.",
		}, func() float64 { return boolGauge(r.nc.IsConnected()) }),
	)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
