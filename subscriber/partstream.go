package subscriber

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
		want := n.PartTransforms(s.Partitions)
		i := slices.IndexFunc(have.Sources, func(src *jetstream.StreamSource) bool { return src != nil && src.Name == n.EventsStream() })
		stale := i >= 0 && !slices.Equal(have.Sources[i].SubjectTransforms, want)
		if !stale && max(have.Replicas, 1) == max(s.Replicas, 1) && samePlacement(have.Placement, s.placement()) {
			return st, false, nil
		}
		if stale {
			src, err := restartedSource(st.CachedInfo(), have.Sources[i], want)
			if err != nil {
				return nil, false, fmt.Errorf("provision stream %s: %w", n.PartStream(), err)
			}
			have.Sources[i] = src
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
	source := &jetstream.StreamSource{
		Name:              n.EventsStream(),
		SubjectTransforms: n.PartTransforms(s.Partitions),
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

// errSourcePositionUnknown: the partition stream's leader does not report how far its source
// has copied yet (it sets sources up a moment after an election); provisioning tries again.
var errSourcePositionUnknown = errors.New("the partition stream does not report its source's position yet")

// restartedSource is the partition stream's source with new transforms, for a stream made by
// a build with other ones (before 4 December 2026 only well-formed subjects were copied, so
// misshapen ones were neither delivered nor dead-lettered). The server identifies a source by
// its stream and transforms: with new transforms it is a new source, which would copy the
// events stream again from its configured start. So it starts after the last event the old
// one copied. An event the old one copies between this look and the update is copied twice,
// and its endpoints may get it twice (a repeat, which the contract allows). Misshapen events published before the last event the old one copied stay only in
// the events stream.
func restartedSource(info *jetstream.StreamInfo, old *jetstream.StreamSource, transforms []jetstream.SubjectTransformConfig) (*jetstream.StreamSource, error) {
	i := slices.IndexFunc(info.Sources, func(si *jetstream.StreamSourceInfo) bool {
		return si != nil && si.Name == old.Name && slices.Equal(si.SubjectTransforms, old.SubjectTransforms)
	})
	if i < 0 {
		return nil, errSourcePositionUnknown
	}
	src := *old
	src.SubjectTransforms = transforms
	// Not 0: a source without a start that has copied nothing, set up again on a stream that
	// has removed messages, starts from that stream's last message time instead.
	src.OptStartSeq = max(info.Sources[i].Seq+1, old.OptStartSeq, 1)
	return &src, nil
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
