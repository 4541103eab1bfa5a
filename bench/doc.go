// Package bench measures roomhook end to end on one machine: it starts what it needs (an
// embedded JetStream server unless given a NATS URL, dispatcher replicas in-process each on its
// own NATS connection, verifying receivers on loopback), publishes realistic traffic with the
// traffic package and times what the receivers get.
//
// The scenarios and what they report:
//   - raw: signed POSTs from a bare Go HTTP client straight to a receiver, with the pipeline's
//     concurrency and no NATS: the machine's limit, measured in the same run as the others;
//   - throughput: events delivered per second to one endpoint, and the ratio to raw; for both,
//     the whole process's CPU per POST and per event, and what the pipeline adds. Its events
//     are made before the clock starts, as raw's bodies and the notifier's events are: the
//     timed window holds publishing them, not making up meetings;
//   - notifier: the peer row, LiveKit's in-memory ResourceURLNotifier (livekit/protocol)
//     sending the same events over the same rooms to the same receiver, keyed by room, with a
//     queue that drops nothing; roomhook's throughput as a ratio to it;
//   - latency: p50, p99 and p99.9 from publish to receipt at a steady rate (1,000 events/s);
//   - fanout: the same events to 1 endpoint and to 200, side by side: deliveries per second of
//     each and their ratio, and the messages roomhook stores per event (partition and spill
//     streams, from their sequence numbers) in each phase, which healthy endpoints must not
//     multiply;
//   - perroom: 50,000 events over 10,000 meetings to 2 global endpoints, as fast as possible,
//     first without and then with every room_created carrying a URL of its own (a path and a
//     token per room, all on one loopback receiver): every delivery must arrive, at its
//     room's URL only and in order; the global endpoints' rate with per-room URLs as a ratio to
//     without, and the whole process's CPU per event in each phase; the
//     server's peak consumers meanwhile, apart and together with those draining spill
//     queues (the bound is partitions + 16 + endpoints being drained); once everything is
//     delivered, the CPU the whole benchmark process (replica and nats-server in-process)
//     uses over 30 s as % of one core; then new rooms, each with a new URL, registered one
//     at a time at idle: p50 and p99 from publish of the room_created to its receipt there;
//   - isolation: a healthy endpoint's p99 beside a dead (connection refused) and a hanging
//     endpoint, as a ratio to its p99 alone;
//   - backlog: events queued while the endpoint is down, the replica's peak memory meanwhile,
//     then the drain rate once it is back;
//   - scaleout: delivery rate with one and with three replicas when the receiver takes 20 ms.
//
// Every scenario that runs roomhook also reports the repeated deliveries its receivers saw
// (an id again at the same URL), which at-least-once delivery allows, 0 included. Anomalies
// a healthy run never shows (out of order, rejected, misrouted) become notes under the table.
//
// Each figure is the median of Options.Runs runs, with min and max.
package bench
