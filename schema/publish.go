package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// Publish sends evt to JetStream the way roomhook expects a media node to:
// on roomhook.events.<region>.<room token>.<event>, built from region,
// evt.GetRoom().GetRoomId() and the lower-cased evt.GetEvent(), with the
// payload proto.Marshal(evt) and the header Nats-Msg-Id set to the event id.
//
// When evt has no id, Publish sets evt.Id to a new UUID v4 before marshalling,
// so a caller that retries with the same evt is stored once within the
// stream's duplicate window. evt is otherwise unchanged (its event name keeps
// its case in the payload) and is left untouched when the address is invalid.
// A jetstream.WithMsgID among opts takes precedence over the event id.
//
// Errors wrap ErrInvalidRegion, ErrEmptyRoom or ErrInvalidEvent for a bad
// address, or the JetStream error. See Address.Subject for how long a room id
// a NATS server accepts.
func Publish(ctx context.Context, js jetstream.JetStream, region string, evt *roomhookv1.Event, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	msg, err := eventMsg(region, evt)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("schema: publishing %s event %s: %w", evt.GetEvent(), evt.GetId(), err)
	}
	return ack, nil
}

// PublishAsync is Publish without waiting for the stream's acknowledgement;
// the returned future reports it. Like jetstream.JetStream.PublishMsgAsync, it
// blocks or fails when too many acknowledgements are pending.
func PublishAsync(js jetstream.JetStream, region string, evt *roomhookv1.Event, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	msg, err := eventMsg(region, evt)
	if err != nil {
		return nil, err
	}
	future, err := js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("schema: publishing %s event %s: %w", evt.GetEvent(), evt.GetId(), err)
	}
	return future, nil
}

func eventMsg(region string, evt *roomhookv1.Event) (*nats.Msg, error) {
	if evt == nil {
		return nil, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	subject, err := Address{
		Region: region,
		Room:   evt.GetRoom().GetRoomId(),
		Event:  strings.ToLower(evt.GetEvent()),
	}.Subject()
	if err != nil {
		return nil, err
	}
	if evt.GetId() == "" {
		id, err := uuid.NewRandom()
		if err != nil {
			return nil, fmt.Errorf("schema: event id: %w", err)
		}
		evt.Id = proto.String(id.String())
	}
	data, err := proto.Marshal(evt)
	if err != nil {
		return nil, fmt.Errorf("schema: marshalling event %s: %w", evt.GetId(), err)
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(jetstream.MsgIDHeader, evt.GetId())
	msg.Data = data
	return msg, nil
}
