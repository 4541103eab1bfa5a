// Package bench measures roomhook end to end on one machine: it starts what it needs (an
// embedded JetStream server unless given a NATS URL, dispatcher replicas in-process each on its
// own NATS connection, verifying receivers on loopback), publishes realistic traffic with the
// traffic package and times what the receivers get.
//
// The scenarios and what they report:
//   - raw: signed POSTs from a bare Go HTTP client straight to a receiver, with the pipeline's
//     concurrency and no NATS: the machine's limit, measured in the same run as the others;
//   - throughput: events delivered per second to one endpoint, and the ratio to raw;
//   - notifier: the peer row, LiveKit's in-memory ResourceURLNotifier (livekit/protocol)
//     sending the same events over the same rooms to the same receiver, keyed by room, with a
//     queue that drops nothing; roomhook's throughput as a ratio to it;
//   - latency: p50, p99 and p99.9 from publish to receipt at a steady rate (1,000 events/s);
//   - fanout: every event to 50 endpoints, deliveries per second;
//   - isolation: a healthy endpoint's p99 beside a dead (connection refused) and a hanging
//     endpoint, as a ratio to its p99 alone;
//   - backlog: events queued while the endpoint is down, the replica's peak memory meanwhile,
//     then the drain rate once it is back;
//   - scaleout: delivery rate with one and with three replicas when the receiver takes 20 ms.
//
// Each figure is the median of Options.Runs runs, with min and max.
package bench
