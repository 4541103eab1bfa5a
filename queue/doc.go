// Package queue is the format of a queued delivery and the partition a room maps to.
//
// A Queued delivery is one webhook body for one endpoint. A spill queue stores it in one of
// two formats, both read by ParseAll: one delivery per message in headers and body (Msg,
// Parse), as a dead-letter replay, a resend or the first version's upgrade writes it; or a
// batch of up to BatchMaxDeliveries deliveries of one route in one message (BatchMsg, marked
// by HeaderBatch), as the partition's owner spills them, so that an endpoint falling behind
// under load costs one stored message, one acknowledgement and one deduplication entry per
// batch instead of per delivery. Partition(room, n) is the partition of a room's events, the
// same as the partition stream's subject transform, so whoever queues a delivery puts it
// where the owner of the room's partition looks.
package queue
