package subscriber

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/schema"
)

// Names derives every JetStream name roomhook uses from the region, so that regions joined in
// a super-cluster never collide.
type Names struct {
	Region string
}

func (n Names) upper() string {
	return strings.ToUpper(strings.ReplaceAll(n.Region, "-", "_"))
}

// EventsStream is the stream media nodes publish into.
func (n Names) EventsStream() string { return schema.EventsStreamName(n.Region) }

// EventsSubjects is the subject filter of the events stream.
func (n Names) EventsSubjects() string { return schema.EventsSubjects(n.Region) }

// EventsPublishSubjects is what a publisher of events may publish on: the contract's five-token
// subjects, roomhook.events.<region>.<room>.<event>. The events stream takes every subject
// under roomhook.events.<region>.>, and one with four tokens would be stored but neither
// delivered nor dead-lettered (docs/architecture.md, "Limits we know of"), so publishers get
// the narrower permission.
func (n Names) EventsPublishSubjects() string { return schema.SubjectPrefix + "." + n.Region + ".*.*" }

// EventsUnroutedSubjects are the subjects the events stream stores but the partition stream
// does not copy: roomhook.events.<region>.<room>, with no event token. What they hold is
// neither delivered nor dead-lettered, so the status reports it.
func (n Names) EventsUnroutedSubjects() string { return schema.SubjectPrefix + "." + n.Region + ".*" }

// PartStream is the server-made copy of the events stream partitioned by room: the events
// stream sources into it with a subject transform that puts {{partition(N, room)}} in the
// subject, so one durable consumer per partition reads a partition's rooms in order. The
// public events stream and its subjects stay untouched.
func (n Names) PartStream() string { return "ROOMHOOK_PART_" + n.upper() }

// PartTransforms are the source transforms of the partition stream for n partitions. The one
// transform copies roomhook.events.<region>.<room>.<event> into
// roomhook.part.<region>.<p>.<room>.<event>. Its filter also takes subjects with more tokens,
// which keep them after the event, so that such an event reaches its room's partition and is
// dead-lettered invalid like any other bad input instead of staying unseen in the events
// stream. One transform with one filter, not one per subject shape: nats-server reads a source
// whose consumer has several filters by intersecting them with every subject of each message
// block, which cost two thirds of the throughput at 100 rooms (4 December 2026).
func (n Names) PartTransforms(partitions int) []jetstream.SubjectTransformConfig {
	return []jetstream.SubjectTransformConfig{{
		Source:      schema.SubjectPrefix + "." + n.Region + ".*.>",
		Destination: fmt.Sprintf("roomhook.part.%s.{{partition(%d,1)}}.{{wildcard(1)}}.>", n.Region, partitions),
	}}
}

// PartFilter is the subject filter of one partition in the partition stream.
func (n Names) PartFilter(partition int) string {
	return fmt.Sprintf("roomhook.part.%s.%d.>", n.Region, partition)
}

// PartConsumer is the durable consumer of one partition.
func (n Names) PartConsumer(partition int) string { return fmt.Sprintf("part_%d", partition) }

// SpillStream holds the deliveries of slow or failing endpoints, one subject per (endpoint,
// partition), until they are drained. Work-queue retention: it holds exactly what is waiting.
func (n Names) SpillStream() string { return "ROOMHOOK_SPILL_" + n.upper() }

// SpillSubjects is the subject filter of the spill stream.
func (n Names) SpillSubjects() string { return "roomhook.spill." + n.Region + ".>" }

// SpillSubject is where a stored message of one endpoint's spill queue on one partition
// goes; the last token is how many deliveries it holds, so that the stream's per-subject
// counts give every queue's backlog in deliveries without reading a message.
func (n Names) SpillSubject(endpointID string, partition, deliveries int) string {
	return fmt.Sprintf("roomhook.spill.%s.%s.%d.%d", n.Region, endpointID, partition, deliveries)
}

// SpillQueueFilter matches one endpoint's spill queue on one partition.
func (n Names) SpillQueueFilter(endpointID string, partition int) string {
	return fmt.Sprintf("roomhook.spill.%s.%s.%d.*", n.Region, endpointID, partition)
}

// SpillPartitionFilter matches every endpoint's spill queue on one partition.
func (n Names) SpillPartitionFilter(partition int) string {
	return fmt.Sprintf("roomhook.spill.%s.*.%d.*", n.Region, partition)
}

// SpillEndpointFilter matches one endpoint's spill queues on every partition.
func (n Names) SpillEndpointFilter(endpointID string) string {
	return fmt.Sprintf("roomhook.spill.%s.%s.*.*", n.Region, endpointID)
}

// SpillQueue is one spill queue and what it holds, read from a spill subject.
type SpillQueue struct {
	EndpointID string
	Partition  int
}

// ParseSpillSubject reads a SpillSubject back: its queue and how many deliveries each
// message on it holds. ok is false for any other subject.
func ParseSpillSubject(subject string) (q SpillQueue, deliveries uint64, ok bool) {
	// roomhook.spill.<region>.<endpoint>.<partition>.<deliveries>
	toks := strings.Split(subject, ".")
	if len(toks) != 6 || toks[0] != "roomhook" || toks[1] != "spill" || toks[3] == "" {
		return SpillQueue{}, 0, false
	}
	p, err := strconv.Atoi(toks[4])
	if err != nil || p < 0 {
		return SpillQueue{}, 0, false
	}
	n, err := strconv.ParseUint(toks[5], 10, 64)
	if err != nil || n == 0 {
		return SpillQueue{}, 0, false
	}
	return SpillQueue{EndpointID: toks[3], Partition: p}, n, true
}

// SpillBacklog sums per-subject message counts of the spill stream (its State.Subjects)
// into deliveries per queue.
func SpillBacklog(subjects map[string]uint64) map[SpillQueue]uint64 {
	out := map[SpillQueue]uint64{}
	for subject, msgs := range subjects {
		if q, per, ok := ParseSpillSubject(subject); ok && msgs > 0 {
			out[q] += msgs * per
		}
	}
	return out
}

// SpillTotal is how many deliveries the per-subject counts of the spill stream add up to.
func SpillTotal(subjects map[string]uint64) uint64 {
	var n uint64
	for _, c := range SpillBacklog(subjects) {
		n += c
	}
	return n
}

// SpillConsumer is the consumer that drains one spill queue; it exists only while it drains.
func (n Names) SpillConsumer(endpointID string, partition int) string {
	return fmt.Sprintf("spill_%s_%d", endpointID, partition)
}

// NotifySubject is the core-NATS subject on which whoever adds to a spill queue from outside
// the partition's owner (a dead-letter replay, a resend) tells the owner to drain it. The
// payload is the endpoint id. The owner also rescans its spill queues now and then, so a lost
// notification only delays.
func (n Names) NotifySubject(partition int) string {
	return fmt.Sprintf("roomhook.notify.%s.%d", n.Region, partition)
}

// NotifySubjects matches every notification of the region.
func (n Names) NotifySubjects() string { return "roomhook.notify." + n.Region + ".>" }

// LegacyDeliverStream is the first version's per-endpoint work-queue stream. The current
// version only reads it once, at upgrade, moving what it holds into the spill stream.
func (n Names) LegacyDeliverStream() string { return "ROOMHOOK_DELIVER_" + n.upper() }

// LegacyRouterConsumer is the first version's router consumer on the events stream; its ack
// floor tells an upgrade where the partition stream starts.
func (n Names) LegacyRouterConsumer() string { return "roomhook_router" }

// DLQStream is the dead-letter stream.
func (n Names) DLQStream() string { return schema.DLQStreamName(n.Region) }

// DLQSubjects is the subject filter of the dead-letter stream.
func (n Names) DLQSubjects() string { return "roomhook.dlq." + n.Region + ".>" }

// DLQSubject is where dead letters of one endpoint go; invalid events use "invalid".
func (n Names) DLQSubject(endpointID string) string {
	return "roomhook.dlq." + n.Region + "." + endpointID
}

// MembersBucket holds one heartbeat key per live replica.
func (n Names) MembersBucket() string { return "ROOMHOOK_MEMBERS_" + n.upper() }

// LeasesBucket holds one key per owned unit of work.
func (n Names) LeasesBucket() string { return "ROOMHOOK_LEASES_" + n.upper() }

// RoomsBucket is the per-room webhook registry.
func (n Names) RoomsBucket() string { return "ROOMHOOK_ROOMS_" + n.upper() }

// EndpointsBucket lists every endpoint and its state, shared by all replicas.
func (n Names) EndpointsBucket() string { return "ROOMHOOK_ENDPOINTS_" + n.upper() }

// HealthBucket holds each endpoint's shared breaker and what each replica last saw of it.
func (n Names) HealthBucket() string { return "ROOMHOOK_HEALTH_" + n.upper() }

// DeliverStream is LegacyDeliverStream, for readers not yet moved to the spill stream.
//
// Deprecated: the delivery core no longer writes it.
func (n Names) DeliverStream() string { return n.LegacyDeliverStream() }

// DeliverSubject is where the first version queued one endpoint's deliveries of one partition.
//
// Deprecated: the delivery core no longer writes it; upgrades read it.
func (n Names) DeliverSubject(endpointID string, partition int) string {
	return fmt.Sprintf("roomhook.deliver.%s.%s.%d", n.Region, endpointID, partition)
}

// DeliverConsumer is the first version's durable consumer name of one (endpoint, partition).
//
// Deprecated: the delivery core no longer creates it.
func (n Names) DeliverConsumer(endpointID string, partition int) string {
	return fmt.Sprintf("deliver_%s_%d", endpointID, partition)
}
