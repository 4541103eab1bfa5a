package dispatcher

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// spillCounts returns how many deliveries each spill-queue subject matching filter holds, as
// the spill stream's leader sees them.
func (d *Dispatcher) spillCounts(ctx context.Context, filter string) (map[string]uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	info, err := d.spillSt.Info(rctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("spill stream info: %w", err)
	}
	return info.State.Subjects, nil
}

// spillCount is how many deliveries one spill queue (or a filter of them) holds.
func (d *Dispatcher) spillCount(ctx context.Context, filter string) (uint64, error) {
	counts, err := d.spillCounts(ctx, filter)
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
	counts, err := d.spillCounts(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(counts))
	for subject, n := range counts {
		// roomhook.spill.<region>.<endpoint>.<partition>
		toks := strings.Split(subject, ".")
		if n > 0 && len(toks) == 5 && endpointIDPattern.MatchString(toks[3]) {
			out = append(out, toks[3])
		}
	}
	return out, nil
}
