// Package dispatcher turns stored room events into signed webhook deliveries.
//
// The Router reads the events stream in order, validates and renders each event once, resolves
// the endpoints it goes to (global ones and the room's own), and queues one delivery per
// endpoint in the deliver stream, on the endpoint's partition for the room. A Worker per
// (endpoint, partition) pulls that queue and runs one Lane per room, so a room's deliveries to
// an endpoint go out one after the other while rooms and endpoints proceed independently.
// Deliveries that cannot succeed become dead letters.
package dispatcher
