// Package admin is roomhook's operator API: a NATS micro service that every dispatcher replica
// runs (one of them answers each request), and a typed client for it that the CLI uses.
//
// The service answers on roomhook.admin.<region>.<operation> (see the Op constants): it lists
// endpoints, pauses and resumes them, reports backlogs, health and dead-letter counts, and
// lists, shows, replays and purges dead letters. It works only on what JetStream holds (the
// endpoints and health buckets, the deliver and dead-letter streams), so any replica gives the
// same answer and a replica needs no state of its own to answer.
package admin
