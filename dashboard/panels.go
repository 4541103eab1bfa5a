package dashboard

import "strings"

// Kind is how a panel draws its queries.
type Kind int

const (
	// TimeSeries draws each series over time.
	TimeSeries Kind = iota
	// Stat shows one big number: the latest value.
	Stat
)

// Query is one PromQL query of a panel. Expr may use the dashboard's variables: $region (a
// regular expression over the region target label) and Grafana's $__rate_interval.
type Query struct {
	Expr   string
	Legend string
}

// Panel is one panel of the dashboard: what it shows, and the queries behind it.
type Panel struct {
	Title       string
	Description string
	Unit        string
	Kind        Kind
	Width       uint32 // grid columns of 24
	Queries     []Query
	// Stacked draws the series of a time series on top of each other (parts of a whole).
	Stacked bool
}

// Row is a titled group of panels.
type Row struct {
	Title  string
	Panels []Panel
}

// topK is how many endpoints the per-endpoint panels show: a region with thousands of global
// endpoints must not draw thousands of lines, and the worst ones are the ones to see.
const topK = "10"

// sel is the label matcher every query starts with: the region variable. Series without a
// region label (a single-region install whose Prometheus adds none) match its "All" value .*.
const sel = `region=~"$region"`

// m returns metric{sel,extra...}.
func m(metric string, extra ...string) string {
	return metric + "{" + strings.Join(append([]string{sel}, extra...), ",") + "}"
}

// rate returns rate(metric{...}[$__rate_interval]).
func rate(metric string, extra ...string) string {
	return "rate(" + m(metric, extra...) + "[$__rate_interval])"
}

// Rows returns the dashboard's rows and panels, in order. It is the one place the dashboard's
// queries are written; the Prometheus test evaluates every one of them.
func Rows() []Row {
	return []Row{
		{Title: "Overview", Panels: []Panel{
			{Title: "Ready replicas", Kind: Stat, Width: 4,
				Description: "Replicas whose /readyz passes (connected to NATS, streams in place, taking work). 0 means nothing is delivering in this region.",
				Queries:     []Query{{Expr: "sum(" + m("roomhook_ready") + ")", Legend: "ready"}}},
			{Title: "NATS connection per replica", Kind: TimeSeries, Width: 8, Unit: "bool_on_off",
				Description: "1 while a replica is connected to NATS. A replica that is not connected delivers nothing; its partitions move to others after the takeover time.",
				Queries:     []Query{{Expr: "max by (instance) (" + m("roomhook_nats_connected") + ")", Legend: "{{instance}}"}}},
			{Title: "Events in", Kind: TimeSeries, Width: 12, Unit: "ops", Stacked: true,
				Description: "Valid events read from the events stream, by event name.",
				Queries:     []Query{{Expr: "sum by (event) (" + rate("roomhook_events_consumed_total") + ")", Legend: "{{event}}"}}},
		}},
		{Title: "Delivery", Panels: []Panel{
			{Title: "Deliveries by outcome", Kind: TimeSeries, Width: 12, Unit: "reqps",
				Description: "HTTP attempts per second by outcome (delivered, retry, reject, gone) and status class (2xx..5xx, error when no response came).",
				Queries:     []Query{{Expr: "sum by (outcome, status_class) (" + rate("roomhook_deliveries_total") + ")", Legend: "{{outcome}} {{status_class}}"}}},
			{Title: "End-to-end latency", Kind: TimeSeries, Width: 12, Unit: "s",
				Description: "From the event being stored in JetStream to the endpoint's 2xx, retries included: percentiles over all endpoints.",
				Queries: []Query{
					{Expr: "histogram_quantile(0.5, sum by (le) (" + rate("roomhook_end_to_end_seconds_bucket") + "))", Legend: "p50"},
					{Expr: "histogram_quantile(0.9, sum by (le) (" + rate("roomhook_end_to_end_seconds_bucket") + "))", Legend: "p90"},
					{Expr: "histogram_quantile(0.99, sum by (le) (" + rate("roomhook_end_to_end_seconds_bucket") + "))", Legend: "p99"},
				}},
			{Title: "Retries per endpoint (top " + topK + ")", Kind: TimeSeries, Width: 8, Unit: "ops",
				Description: "Retries scheduled after a failed attempt (network error, timeout, 408, 425, 429, 5xx).",
				Queries:     []Query{{Expr: "topk(" + topK + ", sum by (endpoint) (" + rate("roomhook_retries_total") + "))", Legend: "{{endpoint}}"}}},
			{Title: "Dead letters by reason", Kind: TimeSeries, Width: 8, Unit: "ops", Stacked: true,
				Description: "Deliveries given up and recorded in the dead-letter stream: rejected (4xx), gone (410), exhausted (retry schedule used up), forbidden (target address refused), invalid (bad input). `roomhook dlq` lists and replays them.",
				Queries:     []Query{{Expr: "sum by (reason) (" + rate("roomhook_dead_letters_total") + ")", Legend: "{{reason}}"}}},
			{Title: "Invalid events", Kind: TimeSeries, Width: 5, Unit: "ops",
				Description: "Events dead-lettered as invalid: undecodable, room or event differing from the subject, too big. A publisher is sending something wrong.",
				Queries:     []Query{{Expr: "sum(" + rate("roomhook_invalid_events_total") + ")", Legend: "invalid"}}},
			{Title: "Unrouted events", Kind: Stat, Width: 3, Unit: "short",
				Description: "Events the events stream holds on subjects without an event token (roomhook.events.<region>.<room>): never delivered, never dead-lettered, counted every 30 s (max over replicas). Not 0: a publisher uses the wrong subject; see the RoomhookUnroutedEvents runbook.",
				Queries:     []Query{{Expr: "max(" + m("roomhook_unrouted_events") + ")", Legend: "unrouted"}}},
		}},
		{Title: "Endpoints", Panels: []Panel{
			{Title: "Oldest undelivered (top " + topK + ")", Kind: TimeSeries, Width: 12, Unit: "s",
				Description: "Age of the oldest delivery not yet settled, per endpoint (max over replicas). The number to alert on: it grows while an endpoint is down.",
				Queries:     []Query{{Expr: "topk(" + topK + ", max by (endpoint) (" + m("roomhook_oldest_undelivered_seconds") + "))", Legend: "{{endpoint}}"}}},
			{Title: "Backlog (top " + topK + ")", Kind: TimeSeries, Width: 12, Unit: "short",
				Description: "Deliveries not yet settled per endpoint, summed over replicas: waiting is all of them, held in the partitions' memory or in spill queues; spilled is the part in spill queues (slow, failing or paused endpoints).",
				Queries: []Query{
					{Expr: "topk(" + topK + ", sum by (endpoint) (" + m("roomhook_backlog") + "))", Legend: "{{endpoint}} waiting"},
					{Expr: "topk(" + topK + ", sum by (endpoint) (" + m("roomhook_spilled_backlog") + "))", Legend: "{{endpoint}} spilled"},
				}},
			{Title: "Open breakers", Kind: TimeSeries, Width: 12, Unit: "short",
				Description: "Endpoints whose circuit breaker is open or half-open (max over replicas: they share the state). While open, the endpoint gets only probes.",
				Queries:     []Query{{Expr: "max by (endpoint) (" + m("roomhook_breakers_open") + ") > 0", Legend: "{{endpoint}}"}, {Expr: "count(max by (endpoint) (" + m("roomhook_breakers_open") + ") > 0) or vector(0)", Legend: "open breakers"}}},
			{Title: "In flight (top " + topK + ")", Kind: TimeSeries, Width: 12, Unit: "short",
				Description: "HTTP attempts in progress per endpoint, summed over replicas.",
				Queries:     []Query{{Expr: "topk(" + topK + ", sum by (endpoint) (" + m("roomhook_in_flight") + "))", Legend: "{{endpoint}}"}}},
		}},
		{Title: "Replicas", Panels: []Panel{
			{Title: "Units and partitions per replica", Kind: TimeSeries, Width: 12, Unit: "short",
				Description: "What each replica owns. The sum over replicas should equal the partition count; a gap means work no replica delivers.",
				Queries: []Query{
					{Expr: "sum by (instance) (" + m("roomhook_units_owned") + ")", Legend: "{{instance}} units"},
					{Expr: "sum by (instance) (" + m("roomhook_partitions_owned") + ")", Legend: "{{instance}} partitions"},
				}},
			{Title: "JetStream consumers", Kind: TimeSeries, Width: 12, Unit: "short", Stacked: true,
				Description: "Consumers each replica runs, by kind (partition, spill drain). It follows the live work, not the number of endpoints; a default NATS server allows 1,000 per stream.",
				Queries:     []Query{{Expr: "sum by (instance, kind) (" + m("roomhook_consumers") + ")", Legend: "{{instance}} {{kind}}"}}},
			{Title: "Per-room endpoints", Kind: TimeSeries, Width: 24, Unit: "ops",
				Description: "Per-room URLs ignored at room_created (by reason), per-room endpoints refused at the ROOMHOOK_MAX_ROOM_ENDPOINTS cap, and endpoints retired after their last room.",
				Queries: []Query{
					{Expr: "sum by (reason) (" + rate("roomhook_room_urls_ignored_total") + ")", Legend: "ignored {{reason}}"},
					{Expr: "sum(" + rate("roomhook_room_endpoints_refused_total") + ")", Legend: "refused (cap)"},
					{Expr: "sum(" + rate("roomhook_endpoints_retired_total") + ")", Legend: "retired"},
				}},
		}},
	}
}

// Queries returns every query of the dashboard, in panel order.
func Queries() []Query {
	var qs []Query
	for _, r := range Rows() {
		for _, p := range r.Panels {
			qs = append(qs, p.Queries...)
		}
	}
	return qs
}
