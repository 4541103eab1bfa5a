package dispatcher

import (
	"context"
	"time"
)

// sampleGauges sets the backlog, spilled, held and oldest-undelivered gauges from what the
// partitions this replica owns hold, every interval until ctx ends. The values are set, not
// counted up and down, so they cannot drift (or go negative) when a run ends abruptly. Only
// routes with work are looked at; nothing is asked of NATS per endpoint here.
func (d *Dispatcher) sampleGauges(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	seen := map[string]bool{}
	for {
		backlog := map[string]float64{}
		spilled := map[string]float64{}
		held := map[string]float64{}
		oldest := map[string]time.Time{}
		older := func(label string, at time.Time) {
			if at.IsZero() {
				return
			}
			if o, ok := oldest[label]; !ok || at.Before(o) {
				oldest[label] = at
			}
		}
		for _, pt := range d.ownedPartitions() {
			for _, r := range pt.snapshot() {
				label := "per_room"
				if v, ok := d.dir.Get(r.id); ok && v.Global {
					label = r.id
				}
				at, n := r.oldest()
				held[label] += float64(n)
				backlog[label] += float64(n)
				older(label, at)
				r.mu.Lock()
				dr := r.drainer
				r.mu.Unlock()
				if dr != nil {
					held[label] += float64(dr.heldLen())
					sb, so := dr.gauges()
					spilled[label] += float64(sb)
					backlog[label] += float64(sb)
					older(label, so)
				}
			}
		}
		now := time.Now()
		for label := range seen {
			if _, ok := backlog[label]; !ok {
				d.metrics.Backlog.WithLabelValues(label).Set(0)
				d.metrics.Spilled.WithLabelValues(label).Set(0)
				d.metrics.Held.WithLabelValues(label).Set(0)
				d.metrics.OldestUndelivered.WithLabelValues(label).Set(0)
				delete(seen, label)
			}
		}
		for label, n := range backlog {
			seen[label] = true
			d.metrics.Backlog.WithLabelValues(label).Set(n)
			d.metrics.Spilled.WithLabelValues(label).Set(spilled[label])
			d.metrics.Held.WithLabelValues(label).Set(held[label])
			age := 0.0
			if o, ok := oldest[label]; ok {
				age = now.Sub(o).Seconds()
			}
			d.metrics.OldestUndelivered.WithLabelValues(label).Set(age)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
