package subscriber

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
)

// StreamSettings are the operator's choices for what Provision creates.
type StreamSettings struct {
	MaxAge     time.Duration // events stream retention
	Replicas   int
	Partitions int // rooms are spread over this many partitions of the partition stream
	DLQMaxAge  time.Duration
	Takeover   time.Duration // how fast a dead replica's leases expire
	RoomTTL    time.Duration // backstop for rooms that never finish
	// Cluster places every stream and bucket in this NATS cluster of a super-cluster
	// (ROOMHOOK_STREAM_CLUSTER); empty leaves placement to the server, which picks the cluster
	// of the server the request came through.
	Cluster string
}

// placement is the stream placement s asks for, nil for none.
func (s StreamSettings) placement() *jetstream.Placement {
	if s.Cluster == "" {
		return nil
	}
	return &jetstream.Placement{Cluster: s.Cluster}
}

// samePlacement reports whether a stream placed as have already is where want asks; no wish
// (want nil) is met by any placement.
func samePlacement(have, want *jetstream.Placement) bool {
	return want == nil || (have != nil && have.Cluster == want.Cluster)
}

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
const DuplicateWindow = 2 * time.Minute

// Resources are the handles Provision returns.
type Resources struct {
	Events    jetstream.Stream
	Part      jetstream.Stream
	Spill     jetstream.Stream
	DLQ       jetstream.Stream
	Members   jetstream.KeyValue
	Leases    jetstream.KeyValue
	Rooms     jetstream.KeyValue
	Endpoints jetstream.KeyValue
	Health    jetstream.KeyValue
}

// Provision creates or updates every stream and bucket roomhook needs. It is idempotent and
// safe to run from several replicas at once: a lost creation race is retried as an update.
func Provision(ctx context.Context, js jetstream.JetStream, n Names, s StreamSettings) (*Resources, error) {
	var r Resources
	var err error
	streams := []struct {
		dst *jetstream.Stream
		cfg jetstream.StreamConfig
	}{
		{&r.Events, jetstream.StreamConfig{
			Name: n.EventsStream(), Subjects: []string{n.EventsSubjects()},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: s.MaxAge, Replicas: s.Replicas, Duplicates: DuplicateWindow, Placement: s.placement(),
			Description: "roomhook room events, one subject space per room",
		}},
		{&r.Spill, jetstream.StreamConfig{
			// Work-queue retention: a spilled delivery disappears once settled, so the stream
			// holds exactly the backlog of every slow or failing endpoint. No MaxAge: an
			// endpoint that is down for days keeps its backlog.
			Name: n.SpillStream(), Subjects: []string{n.SpillSubjects()},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Replicas: s.Replicas, Duplicates: DuplicateWindow, Placement: s.placement(),
			Description: "roomhook deliveries of slow or failing endpoints, per (endpoint, partition)",
		}},
		{&r.DLQ, jetstream.StreamConfig{
			Name: n.DLQStream(), Subjects: []string{n.DLQSubjects()},
			Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
			MaxAge: s.DLQMaxAge, Replicas: s.Replicas, Duplicates: DuplicateWindow, Placement: s.placement(),
			Description: "roomhook dead letters",
		}},
	}
	for _, st := range streams {
		if *st.dst, err = createOrUpdateStream(ctx, js, st.cfg); err != nil {
			return nil, err
		}
	}
	if r.Part, err = provisionPartStream(ctx, js, n, s); err != nil {
		return nil, err
	}
	buckets := []struct {
		dst *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		// File storage even for these short-lived keys: a NATS server restart must not lose
		// the buckets themselves (memory-storage streams are gone after a restart).
		{&r.Members, jetstream.KeyValueConfig{Bucket: n.MembersBucket(), TTL: s.Takeover, Storage: jetstream.FileStorage, Replicas: s.Replicas, Placement: s.placement()}},
		{&r.Leases, jetstream.KeyValueConfig{Bucket: n.LeasesBucket(), TTL: leaseTTL(s.Takeover), Storage: jetstream.FileStorage, Replicas: s.Replicas, Placement: s.placement()}},
		{&r.Rooms, jetstream.KeyValueConfig{Bucket: n.RoomsBucket(), TTL: s.RoomTTL, Storage: jetstream.FileStorage, Replicas: s.Replicas, Placement: s.placement()}},
		{&r.Endpoints, jetstream.KeyValueConfig{Bucket: n.EndpointsBucket(), Storage: jetstream.FileStorage, Replicas: s.Replicas, Placement: s.placement()}},
		{&r.Health, jetstream.KeyValueConfig{Bucket: n.HealthBucket(), Storage: jetstream.FileStorage, Replicas: s.Replicas, Placement: s.placement()}},
	}
	for _, b := range buckets {
		if *b.dst, err = createOrUpdateBucket(ctx, js, b.cfg); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// Missing reports whether any stream or bucket Provision creates is gone, for example because
// NATS came back without its storage; the caller then provisions again.
func Missing(ctx context.Context, js jetstream.JetStream, n Names) (bool, error) {
	names := []string{n.EventsStream(), n.PartStream(), n.SpillStream(), n.DLQStream()}
	for _, b := range []string{n.MembersBucket(), n.LeasesBucket(), n.RoomsBucket(), n.EndpointsBucket(), n.HealthBucket()} {
		names = append(names, "KV_"+b)
	}
	for _, name := range names {
		if _, err := js.Stream(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return true, nil
			}
			return false, err
		}
	}
	return false, nil
}

// unchanged reports whether an existing stream already has what roomhook asks for. Updating
// a stream that needs no change is skipped: every replica provisions at start, and a stream
// update racing with consumer creation is needless churn on the server.
func unchanged(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.MaxAge == want.MaxAge &&
		max(have.Replicas, 1) == max(want.Replicas, 1) && have.Duplicates == want.Duplicates &&
		samePlacement(have.Placement, want.Placement)
}

// Tries of a stream or bucket creation that lost a race with another replica (or failed
// otherwise, for buckets), and the jittered waits between them.
const (
	provisionTries      = 5
	provisionRetryFirst = 50 * time.Millisecond
	provisionRetryLimit = 400 * time.Millisecond
)

func createOrUpdateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if st, err := js.Stream(ctx, cfg.Name); err == nil && unchanged(st.CachedInfo().Config, cfg) {
		return st, nil
	}
	var lastErr error
	b := backoff.New(provisionRetryFirst, provisionRetryLimit)
	for try := 0; try < provisionTries; try++ {
		if try > 0 && !b.Wait(ctx) {
			return nil, fmt.Errorf("provision stream %s: %w", cfg.Name, ctx.Err())
		}
		st, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			return st, nil
		}
		lastErr = err
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			break
		}
	}
	return nil, fmt.Errorf("provision stream %s: %w", cfg.Name, lastErr)
}

func createOrUpdateBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if st, err := js.Stream(ctx, "KV_"+cfg.Bucket); err == nil {
		have := st.CachedInfo().Config
		if have.MaxAge == cfg.TTL && have.Storage == cfg.Storage && max(have.Replicas, 1) == max(cfg.Replicas, 1) &&
			samePlacement(have.Placement, cfg.Placement) {
			if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
				return kv, nil
			}
		}
	}
	var lastErr error
	b := backoff.New(provisionRetryFirst, provisionRetryLimit)
	for try := 0; try < provisionTries; try++ {
		if try > 0 && !b.Wait(ctx) {
			return nil, fmt.Errorf("provision bucket %s: %w", cfg.Bucket, ctx.Err())
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err == nil {
			return kv, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("provision bucket %s: %w", cfg.Bucket, lastErr)
}
