package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/sender"
)

// Metrics are roomhook's Prometheus series. Label values are bounded: events are labelled by
// known event names (others as "other"), endpoints by id for global endpoints and as
// "per_room" for all per-room endpoints together, status by class (2xx, 4xx, 5xx, error).
type Metrics struct {
	EventsConsumed  *prometheus.CounterVec
	InvalidEvents   prometheus.Counter
	Deliveries      *prometheus.CounterVec
	AttemptDuration *prometheus.HistogramVec
	EndToEnd        *prometheus.HistogramVec
	Retries         *prometheus.CounterVec
	DeadLetters     *prometheus.CounterVec
	InFlight        *prometheus.GaugeVec
	Held            *prometheus.GaugeVec
	Backlog         *prometheus.GaugeVec
	BreakersOpen    *prometheus.GaugeVec
	UnitsOwned      prometheus.Gauge
	// OldestUndelivered is the age of the oldest delivery not yet settled, per endpoint label,
	// over the partitions this replica owns (take max over replicas).
	OldestUndelivered *prometheus.GaugeVec
	// Spilled counts deliveries waiting in spill queues (slow or failing endpoints).
	Spilled *prometheus.GaugeVec
	// PartitionsOwned is how many partitions this replica delivers.
	PartitionsOwned prometheus.Gauge
	// Consumers is how many JetStream consumers this replica runs (partitions and spill drains).
	Consumers *prometheus.GaugeVec
	// RoomURLsIgnored counts per-room URLs refused at registration, by reason.
	RoomURLsIgnored *prometheus.CounterVec
	// RoomEndpointsRefused counts per-room endpoints refused because ROOMHOOK_MAX_ROOM_ENDPOINTS was reached.
	RoomEndpointsRefused prometheus.Counter
	// EndpointsRetired counts per-room endpoints removed after their last room was forgotten.
	EndpointsRetired prometheus.Counter
	// UnroutedEvents is how many events the events stream holds on subjects without an event
	// token, which are neither delivered nor dead-lettered; every replica counts them (take
	// max over replicas).
	UnroutedEvents prometheus.Gauge
}

// NewMetrics creates the series and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	// An attempt is bounded by ROOMHOOK_HTTP_TIMEOUT (10s by default); end to end includes
	// retries, and the default schedule waits hours between the last steps.
	attemptBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	endToEndBuckets := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 3 * 3600, 12 * 3600}
	m := &Metrics{
		EventsConsumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomhook_events_consumed_total", Help: "Valid events read from the partition stream (the server's copy of the events stream) and fanned out to their endpoints, by event name (unknown names as \"other\"). Invalid events are counted in roomhook_invalid_events_total instead.",
		}, []string{"event"}),
		InvalidEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomhook_invalid_events_total", Help: "Events dead-lettered with reason invalid: undecodable, without a room, room or event name differing from the subject's, webhook_urls on an event other than room_created, or too big.",
		}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomhook_deliveries_total", Help: "HTTP delivery attempts by endpoint, outcome (delivered, retry, reject, gone, forbidden) and status class (2xx, 3xx, 4xx, 5xx, or error when no response arrived).",
		}, []string{"endpoint", "outcome", "status_class"}),
		AttemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roomhook_attempt_duration_seconds", Help: "Duration of one HTTP delivery attempt, reading the response included.", Buckets: attemptBuckets,
		}, []string{"endpoint"}),
		EndToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roomhook_end_to_end_seconds", Help: "From the event being stored in the events stream to the endpoint's 2xx, retries included.", Buckets: endToEndBuckets,
		}, []string{"endpoint"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomhook_retries_total", Help: "Retries scheduled after a failed attempt (network error, timeout, 408, 425, 429 or 5xx).",
		}, []string{"endpoint"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomhook_dead_letters_total", Help: "Dead letters recorded, by reason (invalid, rejected, gone, exhausted, forbidden).",
		}, []string{"reason"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_in_flight", Help: "HTTP attempts in progress on this replica.",
		}, []string{"endpoint"}),
		Held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_held_deliveries", Help: "Deliveries this replica holds in memory and has not yet settled: those of the partition messages it has read (a partition holds at most max(1024, 8*ROOMHOOK_MAX_IN_FLIGHT) messages) and those its spill drainers have pulled (at most ROOMHOOK_MAX_IN_FLIGHT per spill queue).",
		}, []string{"endpoint"}),
		Backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_backlog", Help: "Deliveries not yet settled for the partitions this replica owns: those held in memory plus those in spill queues (roomhook_spilled_backlog); sum over replicas.",
		}, []string{"endpoint"}),
		BreakersOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_breakers_open", Help: "Endpoints whose circuit breaker is open or half-open, as this replica sees the shared state (take max over replicas, not sum).",
		}, []string{"endpoint"}),
		UnitsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomhook_units_owned", Help: "Partition leases this replica holds (units p0..pN-1); summed over replicas it is ROOMHOOK_PARTITIONS once ownership has settled.",
		}),
		OldestUndelivered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_oldest_undelivered_seconds", Help: "Age of the oldest delivery not yet settled (delivered or dead-lettered), in memory or in a spill queue, per endpoint, over the partitions this replica owns; 0 when nothing waits. Take max over replicas.",
		}, []string{"endpoint"}),
		Spilled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_spilled_backlog", Help: "Deliveries waiting in spill queues (the durable queues of slow, failing or paused endpoints) for the partitions this replica owns, sampled while a queue drains; sum over replicas.",
		}, []string{"endpoint"}),
		PartitionsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomhook_partitions_owned", Help: "Partitions this replica delivers now.",
		}),
		Consumers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomhook_consumers", Help: "JetStream consumers this replica runs, by kind: partition (one per owned partition), spill (one per spill queue being drained, at most ROOMHOOK_MAX_DRAINING).",
		}, []string{"kind"}),
		RoomURLsIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomhook_room_urls_ignored_total", Help: "Per-room webhook URLs ignored at room_created, by reason (invalid, too_long, too_many, forbidden_scheme).",
		}, []string{"reason"}),
		RoomEndpointsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomhook_room_endpoints_refused_total", Help: "Per-room endpoints not created because ROOMHOOK_MAX_ROOM_ENDPOINTS live per-room endpoints exist.",
		}),
		EndpointsRetired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomhook_endpoints_retired_total", Help: "Per-room endpoints removed with their state after their last room was forgotten and their backlog was empty.",
		}),
		UnroutedEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomhook_unrouted_events", Help: "Events the events stream holds on roomhook.events.<region>.<room>, a subject without an event token: neither delivered nor dead-lettered. Every replica counts them every 30 s; take max over replicas.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.EventsConsumed, m.InvalidEvents, m.Deliveries, m.AttemptDuration, m.EndToEnd,
			m.Retries, m.DeadLetters, m.InFlight, m.Held, m.Backlog, m.BreakersOpen, m.UnitsOwned,
			m.OldestUndelivered, m.Spilled, m.PartitionsOwned, m.Consumers, m.RoomURLsIgnored,
			m.RoomEndpointsRefused, m.EndpointsRetired, m.UnroutedEvents)
	}
	return m
}

func endpointLabel(ep endpoint.Endpoint) string {
	if ep.Global {
		return ep.ID
	}
	return "per_room"
}

func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status < 300:
		return "2xx"
	case status < 400:
		return "3xx"
	case status < 500:
		return "4xx"
	default:
		return "5xx"
	}
}

// Preset creates the series of every known label value at zero, so that rate() and absence
// checks work on a replica that has not seen traffic yet. globals are the global endpoints'
// labels; per-room endpoints share the label "per_room".
func (m *Metrics) Preset(globals []string, events []string) {
	endpoints := append(append([]string{}, globals...), "per_room")
	for _, e := range events {
		m.EventsConsumed.WithLabelValues(e)
	}
	m.EventsConsumed.WithLabelValues("other")
	for _, r := range []string{deadletter.ReasonInvalid, deadletter.ReasonRejected, deadletter.ReasonGone, deadletter.ReasonExhausted, deadletter.ReasonForbidden} {
		m.DeadLetters.WithLabelValues(r)
	}
	for _, ep := range endpoints {
		for _, o := range []sender.Verdict{sender.Delivered, sender.Retry, sender.Reject, sender.Gone, sender.Forbidden} {
			for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "error"} {
				m.Deliveries.WithLabelValues(ep, o.String(), c)
			}
		}
		m.AttemptDuration.WithLabelValues(ep)
		m.EndToEnd.WithLabelValues(ep)
		m.Retries.WithLabelValues(ep)
		m.InFlight.WithLabelValues(ep)
		m.Held.WithLabelValues(ep)
		m.Backlog.WithLabelValues(ep)
		m.BreakersOpen.WithLabelValues(ep)
		m.OldestUndelivered.WithLabelValues(ep)
		m.Spilled.WithLabelValues(ep)
	}
	for _, k := range []string{"partition", "spill"} {
		m.Consumers.WithLabelValues(k)
	}
	for _, r := range []string{"invalid", "too_long", "too_many"} {
		m.RoomURLsIgnored.WithLabelValues(r)
	}
}
