// Package ingest takes plugNmeet's own webhook requests and stores them as room
// events, for plugNmeet servers that cannot publish to NATS themselves.
//
// A plugNmeet server pointed at POST /ingest/plugnmeet sends the request it
// sends any webhook receiver: a JSON body signed with an HS256 JWT in
// Authorization (or Hash-Token). The Handler verifies the token and its sha256
// claim, parses the body into a roomhook.v1.Event and publishes it on its
// subject, roomhook.events.<region>.<room>.<event>, with Nats-Msg-Id set to the
// event id. It answers 200 only once JetStream has stored the event, so every
// failure is one plugNmeet's own retry covers, and a retry of a stored event
// is stored once (the events stream's duplicate window).
//
// Because the subject is built from the body's room and event name, the two
// match by construction; the contract's other rule, that only room_created may
// carry routing fields, is checked here as the dispatcher checks it.
package ingest
