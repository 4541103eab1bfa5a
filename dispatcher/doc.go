// Package dispatcher is roomhook's delivery pipeline: it turns stored room events into signed
// webhook deliveries.
//
// Each replica owns some of the region's partitions. For each one, a durable consumer reads the
// partition stream (the server's copy of the events stream, partitioned by room) in order;
// every event is validated and rendered once and fans out in memory to a route per endpoint,
// one lane per room, so a room's deliveries to an endpoint go out one after the other while
// rooms and endpoints proceed independently. A route whose endpoint fails, is slow or falls
// behind spills to its own durable queue, several deliveries to a stored message, which a
// drainer delivers with the retry schedule and the breaker until it is empty. Deliveries that cannot succeed become dead letters.
//
// The concepts the pipeline works with, and the formats they are stored in, are packages of
// their own, which the admin service uses without the pipeline: endpoint (the endpoint model
// and directory), sender (the HTTP attempt and the retry schedule), breaker (the shared
// breakers and the health bucket), deadletter, queue (a queued delivery, a batch of them, and a room's
// partition) and rooms (the per-room webhook registry).
package dispatcher
