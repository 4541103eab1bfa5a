package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/subscriber"
)

// endpointIDPattern is the form of endpoint.ID.
var endpointIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// endpointRecords reads every endpoint's shared state, by id.
func (s *Service) endpointRecords(ctx context.Context) (map[string]endpoint.Record, error) {
	kv, err := s.endpointsBucket(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]endpoint.Record{}
	err = readBucket(ctx, kv, func(key string, value []byte) {
		var rec endpoint.Record
		if json.Unmarshal(value, &rec) == nil {
			out[key] = rec
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	return out, nil
}

// readBucket calls visit with every key's current value (subscriber.ReadKV).
func readBucket(ctx context.Context, kv jetstream.KeyValue, visit func(key string, value []byte)) error {
	return subscriber.ReadKV(ctx, kv, jetstream.AllKeys, func(e jetstream.KeyValueEntry) {
		visit(e.Key(), e.Value())
	})
}

// health is what the health bucket says about every endpoint.
type health struct {
	breakers map[string]breaker.Record
	activity map[string][]breaker.ActivityRecord // by endpoint id, one per replica
}

// readHealth reads the health bucket; a missing bucket (replicas of an older version) is
// no health recorded.
func (s *Service) readHealth(ctx context.Context) (health, error) {
	h := health{breakers: map[string]breaker.Record{}, activity: map[string][]breaker.ActivityRecord{}}
	kv, err := s.js.KeyValue(ctx, s.names.HealthBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("health bucket %s: %w", s.names.HealthBucket(), err)
	}
	err = readBucket(ctx, kv, func(key string, value []byte) {
		if id, ok := strings.CutPrefix(key, "breaker."); ok {
			var b breaker.Record
			if json.Unmarshal(value, &b) == nil {
				h.breakers[id] = b
			}
			return
		}
		if rest, ok := strings.CutPrefix(key, "activity."); ok {
			// Endpoint ids are hex, so the first dot ends the id; replica ids may hold dots.
			id, _, _ := strings.Cut(rest, ".")
			var a breaker.ActivityRecord
			if json.Unmarshal(value, &a) == nil {
				h.activity[id] = append(h.activity[id], a)
			}
		}
	})
	if err != nil {
		return h, fmt.Errorf("read health: %w", err)
	}
	return h, nil
}

func endpointView(id string, rec endpoint.Record, h health) Endpoint {
	e := Endpoint{
		ID: id, URL: RedactURL(rec.URL), Global: rec.Global, Paused: rec.Paused,
		Disabled: rec.Disabled, DisabledReason: rec.Reason, Breaker: breaker.Closed, Updated: rec.Updated,
	}
	if b, ok := h.breakers[id]; ok && b.State != "" {
		e.Breaker, e.BreakerReason = b.State, b.Reason
	}
	return e
}

// readEndpoints reads every endpoint's record and the health bucket, and lists the endpoints
// by URL, then id.
func (s *Service) readEndpoints(ctx context.Context) ([]Endpoint, health, error) {
	recs, err := s.endpointRecords(ctx)
	if err != nil {
		return nil, health{}, err
	}
	h, err := s.readHealth(ctx)
	if err != nil {
		return nil, h, err
	}
	out := make([]Endpoint, 0, len(recs))
	for id, rec := range recs {
		out = append(out, endpointView(id, rec, h))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].URL != out[j].URL {
			return out[i].URL < out[j].URL
		}
		return out[i].ID < out[j].ID
	})
	return out, h, nil
}

func (s *Service) endpointsList(ctx context.Context, _ micro.Request) (any, error) {
	eps, _, err := s.readEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	return EndpointList{Endpoints: eps}, nil
}

// endpointIDOf turns an operator's reference (an endpoint id or a webhook URL, in any spelling
// ParseWebhookURLs accepts) into an endpoint id.
func endpointIDOf(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", badRequest("name an endpoint by its id or URL")
	}
	if endpointIDPattern.MatchString(ref) || ref == deadletter.ReasonInvalid {
		return ref, nil
	}
	urls, err := endpoint.ParseWebhookURLs([]string{ref})
	if err != nil || len(urls) == 0 {
		// err names the URL too; RedactURL alone keeps a token in its query out of the answer.
		return "", badRequest("%q is neither an endpoint id (16 hex digits) nor a valid webhook URL", RedactURL(ref))
	}
	return endpoint.ID(urls[0]), nil
}

func (s *Service) endpointsPause(ctx context.Context, req micro.Request) (any, error) {
	return s.changeEndpoint(ctx, req, "paused", func(r *endpoint.Record) { r.Paused = true })
}

// endpointsResume also clears a 410 Gone: resuming is how an operator says the receiver is back.
func (s *Service) endpointsResume(ctx context.Context, req micro.Request) (any, error) {
	return s.changeEndpoint(ctx, req, "resumed", func(r *endpoint.Record) {
		r.Paused, r.Disabled, r.Reason = false, false, ""
	})
}

// changeEndpoint updates one endpoint's record with compare-and-set (endpoint.Update,
// applied again to the new state when a 410 Gone or another operator changed it meanwhile); the
// replicas watching the bucket act on the change.
func (s *Service) changeEndpoint(ctx context.Context, req micro.Request, verb string, change func(*endpoint.Record)) (any, error) {
	var r EndpointRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	id, err := endpointIDOf(r.Endpoint)
	if err != nil {
		return nil, err
	}
	kv, err := s.endpointsBucket(ctx)
	if err != nil {
		return nil, err
	}
	rec, _, err := endpoint.Update(ctx, kv, id, change)
	switch {
	case errors.Is(err, endpoint.ErrNotFound):
		return nil, notFound("no endpoint %s (roomhook endpoints list shows every id and URL)", id)
	case errors.Is(err, subscriber.ErrTooManyUpdates):
		// Changed again and again meanwhile (410 Gone answers, other operators).
		return nil, fmt.Errorf("%w; try again", err)
	case err != nil:
		return nil, err
	}
	s.log.Info("endpoint "+verb+" by an operator", "endpoint", id, "url", RedactURL(rec.URL))
	h, err := s.readHealth(ctx)
	if err != nil {
		return nil, err
	}
	return endpointView(id, rec, h), nil
}
