package subscriber

import (
	"fmt"
	"strings"

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

// DeliverStream is the work-queue stream of per-endpoint deliveries.
func (n Names) DeliverStream() string { return "ROOMHOOK_DELIVER_" + n.upper() }

// DeliverSubjects is the subject filter of the deliver stream.
func (n Names) DeliverSubjects() string { return "roomhook.deliver." + n.Region + ".>" }

// DeliverSubject is where one endpoint's deliveries of one partition are queued.
func (n Names) DeliverSubject(endpointID string, partition int) string {
	return fmt.Sprintf("roomhook.deliver.%s.%s.%d", n.Region, endpointID, partition)
}

// DeliverConsumer is the durable consumer name of one (endpoint, partition) queue.
func (n Names) DeliverConsumer(endpointID string, partition int) string {
	return fmt.Sprintf("deliver_%s_%d", endpointID, partition)
}

// RouterConsumer is the durable consumer that reads the events stream in order.
func (n Names) RouterConsumer() string { return "roomhook_router" }

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
