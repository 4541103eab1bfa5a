// Package deadletter is the format of dead letters: what roomhook records, in the dead-letter
// stream, about a delivery or an event it gave up on.
//
// A Letter carries the Reason (invalid, rejected, gone, exhausted, forbidden), the attempts
// made and the body that was to be delivered, as headers and data of one message (Publish
// writes it, Parse reads it back); the endpoint's URL is stored redacted.
package deadletter
