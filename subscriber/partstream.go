package subscriber

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
)

// ErrPartitionsChanged is returned when ROOMHOOK_PARTITIONS differs from the partition count
// the region's partition stream was made with. Changing it on a running region would move
// rooms between partitions while their deliveries are in flight, so it is refused.
var ErrPartitionsChanged = errors.New("partition count differs from the region's")

// partitionsMetadata is the partition stream's metadata key for its partition count.
const partitionsMetadata = "roomhook_partitions"

// partStreamTries bounds how often provisionPartStream looks again after another replica made
// the partition stream first, with the jittered waits between tries from partStreamRetryFirst
// up to partStreamRetryLimit.
const (
	partStreamTries      = 10
	partStreamRetryFirst = 50 * time.Millisecond
	partStreamRetryLimit = 500 * time.Millisecond
)

// provisionPartStream creates the partition stream, or checks the existing one.
//
// A new partition stream sources the events stream from its start, so events published
// before the first dispatcher started are delivered too. A region that ran the first version
// has a router consumer on the events stream: the partition stream then starts after what
// that router acknowledged, since everything before it is already in the first version's
// deliver stream, which the upgrade moves into the spill stream.
//
// When another replica creates the stream first, it looks again (up to partStreamTries
// times, with a jittered wait between tries).
func provisionPartStream(ctx context.Context, js jetstream.JetStream, n Names, s StreamSettings) (jetstream.Stream, error) {
	b := backoff.New(partStreamRetryFirst, partStreamRetryLimit)
	for try := 1; ; try++ {
		st, raced, err := provisionPartStreamOnce(ctx, js, n, s)
		if !raced {
			return st, err
		}
		// Another replica made it first: look again.
		if try >= partStreamTries {
			return nil, fmt.Errorf("provision stream %s: gave up after %d tries, each lost to a stream of that name that then could not be read: %w",
				n.PartStream(), try, err)
		}
		if !b.Wait(ctx) {
			return nil, fmt.Errorf("provision stream %s: %w", n.PartStream(), ctx.Err())
		}
	}
}

// provisionPartStreamOnce is one try of provisionPartStream; raced reports that the creation
// lost to another replica's (err is then jetstream.ErrStreamNameAlreadyInUse).
func provisionPartStreamOnce(ctx context.Context, js jetstream.JetStream, n Names, s StreamSettings) (_ jetstream.Stream, raced bool, _ error) {
	if st, err := js.Stream(ctx, n.PartStream()); err == nil {
		have := st.CachedInfo().Config
		if got := have.Metadata[partitionsMetadata]; got != strconv.Itoa(s.Partitions) {
			return nil, false, fmt.Errorf("%w: ROOMHOOK_PARTITIONS is %d, but stream %s was made with %s partitions; "+
				"set ROOMHOOK_PARTITIONS=%s, or drain the region and delete the stream to change it",
				ErrPartitionsChanged, s.Partitions, n.PartStream(), got, got)
		}
		if max(have.Replicas, 1) == max(s.Replicas, 1) && samePlacement(have.Placement, s.placement()) {
			return st, false, nil
		}
		have.Replicas = s.Replicas
		if p := s.placement(); p != nil {
			have.Placement = p
		}
		st, err := js.UpdateStream(ctx, have)
		if err != nil {
			return nil, false, fmt.Errorf("provision stream %s: %w", n.PartStream(), err)
		}
		return st, false, nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, false, fmt.Errorf("provision stream %s: %w", n.PartStream(), err)
	}
	var start uint64
	if c, err := js.Consumer(ctx, n.EventsStream(), n.LegacyRouterConsumer()); err == nil {
		start = c.CachedInfo().AckFloor.Stream + 1
	}
	src, dest := n.PartTransform(s.Partitions)
	source := &jetstream.StreamSource{
		Name:              n.EventsStream(),
		SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: src, Destination: dest}},
		OptStartSeq:       start,
	}
	cfg := jetstream.StreamConfig{
		Name:        n.PartStream(),
		Description: "roomhook: the events, partitioned by room for delivery (made by the server; do not publish here)",
		Sources:     []*jetstream.StreamSource{source},
		// Work-queue retention: an event leaves once every endpoint has it settled or spilled,
		// so the stream holds only what is being delivered.
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Replicas: s.Replicas, Placement: s.placement(),
		Metadata: map[string]string{partitionsMetadata: strconv.Itoa(s.Partitions)},
	}
	st, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another replica made it first.
		return nil, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("provision stream %s: %w", n.PartStream(), err)
	}
	return st, false, nil
}

// SourceSequence is the events-stream sequence of a message the partition stream sourced,
// read from its Nats-Stream-Source header ("<stream> <seq> <filter> <transform> ...").
func SourceSequence(header string) (uint64, bool) {
	fields := strings.Fields(header)
	if len(fields) < 2 {
		return 0, false
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	return seq, err == nil && seq > 0
}
