// Package rooms is the per-room webhook registry: which endpoints each room registered with
// its room_created, kept in the rooms bucket by partition.
//
// A Registry is one partition's share, written only by the partition's owner, who loads it
// once when it starts the partition (Load) and then answers from memory; a Record is one
// room's registration, stored under Key(partition, room) with endpoint ids, never URLs.
// LiveEndpoints lists the endpoints some room still has registered, which must not be retired.
package rooms
