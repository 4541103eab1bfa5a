package breaker

import "time"

// Endpoint health is shared by all replicas through the health bucket
// (subscriber.Names.HealthBucket). Two kinds of keys:
//
//	breaker.<endpoint id>            Record, changed only with compare-and-set
//	activity.<endpoint id>.<replica> ActivityRecord, written by one replica, throttled
//
// `roomhook status` reads both; the replica that changes a breaker logs the change once.

// State is an endpoint's circuit-breaker state.
type State string

// Breaker states.
const (
	Closed   State = "closed"    // deliveries flow
	Open     State = "open"      // no attempts until ProbeAt
	HalfOpen State = "half_open" // one replica sends one probe
)

// Record is an endpoint's shared breaker.
type Record struct {
	State    State     `json:"state"`
	OpenedAt time.Time `json:"opened_at,omitzero"`
	ProbeAt  time.Time `json:"probe_at,omitzero"` // when the next probe may go
	Probes   int       `json:"probes,omitempty"`  // failed probes since it opened
	Reason   string    `json:"reason,omitempty"`  // the failure that opened it
	Replica  string    `json:"replica,omitempty"` // who changed it last
	Updated  time.Time `json:"updated"`
}

// ActivityRecord is what one replica last saw of an endpoint.
type ActivityRecord struct {
	LastSuccess  time.Time `json:"last_success,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	LastStatus   int       `json:"last_status,omitempty"`
	Delivered    uint64    `json:"delivered"` // since the replica started
	Failed       uint64    `json:"failed"`    // failed attempts since the replica started
	DeadLettered uint64    `json:"dead_lettered"`
	InFlight     int       `json:"in_flight"`
	Updated      time.Time `json:"updated"`
}

// Key and ActivityKey are the health bucket's keys.
func Key(endpointID string) string { return "breaker." + endpointID }

// ActivityKey is the key of one replica's activity record for an endpoint.
func ActivityKey(endpointID, replica string) string {
	return "activity." + endpointID + "." + replica
}
