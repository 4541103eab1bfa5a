// Package breaker is the circuit breaker of every endpoint, shared by all replicas, and the
// health bucket it lives in.
//
// Breakers opens an endpoint's breaker after consecutive failed attempts and lets exactly one
// replica probe it until it answers again. The health bucket holds a Record per endpoint's
// breaker (key Key) and an ActivityRecord per endpoint and replica (key ActivityKey), which
// `roomhook status` and the admin service read.
package breaker
