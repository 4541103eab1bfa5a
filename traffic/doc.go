// Package traffic generates and publishes realistic meeting traffic for load tests, demos and
// benchmarks of roomhook.
//
// A Generator plays meetings the way plugNmeet and LiveKit report them: a room is created
// (optionally registering per-room webhook URLs) and started, participants join with full
// livekit.ParticipantInfo (permissions, attributes, metadata), publish and unpublish audio,
// camera and screen-share tracks with their codecs and simulcast or SVC layers, sometimes drop
// and reconnect, a recording starts and ends (with the recorder bot joining and leaving), the
// room finishes and its analytics follow. Many rooms run at once, their events interleaved. The
// whole stream is deterministic for a given Config, seed included.
//
// Every event carries an id of the form rh-<run>-<room>-<seq> (see EventID), so a receiver can
// tell runs apart and check, per room, that events arrive in the order they were published.
//
// Publish sends a Source's events to JetStream on the contract's subjects, paced to a rate or as
// fast as possible with a bounded window of unacknowledged publishes.
package traffic
