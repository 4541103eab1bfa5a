package admin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/subscriber"
)

// queueCounts is what one endpoint's spill queues hold.
type queueCounts struct {
	backlog, inFlight uint64
}

// deliverQueues sums the spill queues by endpoint id: the backlog of every slow or failing
// endpoint (a healthy endpoint's deliveries are only in memory, for moments). In flight is
// what the drainers of those queues hold.
func (s *Service) deliverQueues(ctx context.Context) (map[string]queueCounts, error) {
	st, err := s.js.Stream(ctx, s.names.SpillStream())
	if err != nil {
		return nil, fmt.Errorf("spill stream %s: %w", s.names.SpillStream(), err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.names.SpillSubjects()))
	if err != nil {
		return nil, fmt.Errorf("spill stream %s: %w", s.names.SpillStream(), err)
	}
	out := map[string]queueCounts{}
	for q, n := range subscriber.SpillBacklog(info.State.Subjects) {
		c := out[q.EndpointID]
		c.backlog += n
		out[q.EndpointID] = c
	}
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		id, ok := spillConsumerEndpoint(ci.Name)
		if !ok {
			continue
		}
		c := out[id]
		c.inFlight += uint64(ci.NumAckPending)
		out[id] = c
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("spill consumers: %w", err)
	}
	return out, nil
}

// spillConsumerEndpoint reads the endpoint id out of a subscriber.Names.SpillConsumer name,
// spill_<endpoint id>_<partition>.
func spillConsumerEndpoint(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "spill_")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 0 {
		return "", false
	}
	if _, err := strconv.Atoi(rest[i+1:]); err != nil {
		return "", false
	}
	return rest[:i], true
}

// deadLetterCounts counts the stored dead letters by reason and by endpoint.
func (s *Service) deadLetterCounts(ctx context.Context) (DeadLetterCounts, map[string]uint64, error) {
	counts := DeadLetterCounts{ByReason: map[string]uint64{}}
	byEndpoint := map[string]uint64{}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return counts, nil, err
	}
	err = s.scan(ctx, st, selection{}, false, func(dl deadletter.Letter, _ int) bool {
		counts.Total++
		counts.ByReason[dl.Reason]++
		byEndpoint[dl.EndpointID]++
		return true
	})
	return counts, byEndpoint, err
}

func (s *Service) status(ctx context.Context, _ micro.Request) (any, error) {
	eps, h, err := s.readEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	queues, err := s.deliverQueues(ctx)
	if err != nil {
		return nil, err
	}
	dlq, dlqByEndpoint, err := s.deadLetterCounts(ctx)
	if err != nil {
		return nil, err
	}
	unrouted, err := subscriber.UnroutedEvents(ctx, s.js, s.names)
	if err != nil {
		return nil, err
	}
	out := Status{Region: s.cfg.Region, Replica: s.cfg.ReplicaID, At: time.Now().UTC(), DeadLetters: dlq, Unrouted: unrouted}
	for _, ep := range eps {
		q := queues[ep.ID]
		es := EndpointStatus{Endpoint: ep, Backlog: q.backlog, InFlight: q.inFlight, DeadLetters: dlqByEndpoint[ep.ID]}
		// Each replica records what it saw; the endpoint's story is the latest of them.
		for _, a := range h.activity[ep.ID] {
			if a.LastSuccess.After(es.LastSuccess) {
				es.LastSuccess = a.LastSuccess
			}
			if a.LastErrorAt.After(es.LastErrorAt) {
				es.LastErrorAt, es.LastError = a.LastErrorAt, a.LastError
			}
		}
		out.Endpoints = append(out.Endpoints, es)
		out.Totals.Backlog += es.Backlog
		out.Totals.InFlight += es.InFlight
	}
	out.Totals.Endpoints = len(out.Endpoints)
	if out.Endpoints == nil {
		out.Endpoints = []EndpointStatus{}
	}
	return out, nil
}
