// Package endpoint is roomhook's model of a webhook receiver and the formats it is stored in.
//
// An Endpoint is one receiver URL, identified by ID (a hash of its canonical URL) wherever it
// was registered: configured globally (ROOMHOOK_WEBHOOK_URLS or the endpoints file that
// LoadFile reads) or per room (a room_created's webhook_urls, checked by ValidateRoomURL).
// RedactURL is what may be shown or stored of a URL outside the endpoints bucket. The
// Directory is the set of endpoints every replica knows, with the state they share through the
// endpoints bucket (a Record per endpoint: paused, disabled by 410 Gone, when last registered);
// Update changes one record, for the pipeline and the admin service alike.
package endpoint
