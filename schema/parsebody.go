package schema

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// ErrParseBody: the bytes are not a webhook body in plugNmeet's JSON shape
// (not JSON, or a field of the wrong type). Returned wrapped with the
// decoder's detail.
var ErrParseBody = errors.New("unparseable webhook body")

// ParseBody is the inverse of MarshalBody: it reads a webhook body as
// plugNmeet's server writes it (protojson, proto field names) into an Event,
// keeping id and created_at as they are. It accepts what protojson accepts:
// JSON names as well as proto names, enums as names or numbers, 64-bit
// integers as strings or numbers, any whitespace. Fields it does not know are
// skipped rather than refused, because platforms add fields and an event
// must not be lost for one; they are the only thing a round trip drops. So
// for every body MarshalBody writes, MarshalBody(ParseBody(body)) gives the
// same bytes back.
//
// ParseBody checks only the shape; whether the event has a room and a name,
// and whether it may carry routing fields, is for the caller to decide. Any
// error wraps ErrParseBody.
func ParseBody(data []byte) (*roomhookv1.Event, error) {
	evt := new(roomhookv1.Event)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, evt); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParseBody, err)
	}
	return evt, nil
}
