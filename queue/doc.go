// Package queue is the format of a queued delivery and the partition a room maps to.
//
// A Queued delivery is one webhook body for one endpoint, as the pipeline spills it into an
// endpoint's spill queue and as a dead-letter replay or a resend writes it there (Msg, and
// Parse or ParseMsg to read it back). Partition(room, n) is the partition of a room's events,
// the same as the partition stream's subject transform, so whoever queues a delivery puts it
// where the owner of the room's partition looks.
package queue
