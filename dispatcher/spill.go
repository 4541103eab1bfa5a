package dispatcher

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/subscriber"
)

// spillBacklog returns how many deliveries each spill queue matching filter holds, as the
// spill stream's leader sees them.
func (d *Dispatcher) spillBacklog(ctx context.Context, filter string) (map[subscriber.SpillQueue]uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	info, err := d.spillSt.Info(rctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("spill stream info: %w", err)
	}
	return subscriber.SpillBacklog(info.State.Subjects), nil
}

// spillCount is how many deliveries one spill queue (or a filter of them) holds.
func (d *Dispatcher) spillCount(ctx context.Context, filter string) (uint64, error) {
	counts, err := d.spillBacklog(ctx, filter)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n, nil
}

// spilledEndpoints lists the endpoints whose spill queues matching filter hold deliveries.
func (d *Dispatcher) spilledEndpoints(ctx context.Context, filter string) ([]string, error) {
	counts, err := d.spillBacklog(ctx, filter)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(counts))
	for q := range counts {
		if !seen[q.EndpointID] && endpointIDPattern.MatchString(q.EndpointID) {
			seen[q.EndpointID] = true
			out = append(out, q.EndpointID)
		}
	}
	return out, nil
}
