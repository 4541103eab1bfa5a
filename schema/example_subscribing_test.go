package schema_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// readerPermissions is what docs/subscribing.md tells an operator to grant a
// service that reads region "default" with a core subscription and a durable
// consumer of its own named "billing". The example connects with exactly
// these, so the list is proven, not guessed.
func readerPermissions() *server.Permissions {
	const stream, consumer = "ROOMHOOK_EVENTS_DEFAULT", "billing"
	return &server.Permissions{
		Subscribe: &server.SubjectPermission{Allow: []string{
			"roomhook.events.default.>", // core subscriptions
			"_INBOX.>",                  // replies to the requests below, pulled messages
		}},
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.CONSUMER.CREATE." + stream + "." + consumer,        // several filter subjects
			"$JS.API.CONSUMER.CREATE." + stream + "." + consumer + ".>", // one filter subject
			"$JS.API.CONSUMER.INFO." + stream + "." + consumer,
			"$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer,
			"$JS.ACK." + stream + "." + consumer + ".>",
		}},
	}
}

// A service of its own reads room events straight from NATS: a core
// subscription for one event across rooms, and a durable consumer of its own
// on the events stream for one room, decoded with schema.
func Example_subscribing() {
	dir, err := os.MkdirTemp("", "roomhook-subscribing")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "roomhook", Password: "roomhook-pass"}, // the media nodes and the dispatcher
			{Username: "billing", Password: "billing-pass", Permissions: readerPermissions()},
		},
	})
	if err != nil {
		panic(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("nats-server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// roomhook's side: the stream the dispatcher provisions, and a media node.
	pubConn, err := nats.Connect(ns.ClientURL(), nats.UserInfo("roomhook", "roomhook-pass"))
	if err != nil {
		panic(err)
	}
	defer pubConn.Close()
	pubJS, err := jetstream.New(pubConn)
	if err != nil {
		panic(err)
	}
	if _, err := pubJS.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")},
		Duplicates: 2 * time.Minute,
	}); err != nil {
		panic(err)
	}

	// The reading service, with nothing but readerPermissions.
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("billing", "billing-pass"))
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	// 1. Core subscription: participant_joined in every room of the region,
	// from now on, while connected. Nothing is stored for the reader.
	joins := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe("roomhook.events.default.*."+schema.EventParticipantJoined, joins)
	if err != nil {
		panic(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil { // the server has the subscription before anything is published
		panic(err)
	}

	// 2. A durable consumer of its own: every event of one room, kept for the
	// reader while it is away, acknowledged one by one.
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	room := schema.EncodeRoomToken("weekly.sync")
	cons, err := js.CreateOrUpdateConsumer(ctx, schema.EventsStreamName("default"), jetstream.ConsumerConfig{
		Durable:        "billing",
		FilterSubjects: []string{"roomhook.events.default." + room + ".participant_joined", "roomhook.events.default." + room + ".room_finished"},
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		panic(err)
	}

	for _, evt := range []*roomhookv1.Event{
		{Event: proto.String("participant_joined"), Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("weekly.sync")}, Participant: &livekit.ParticipantInfo{Sid: "PA_1", Identity: "ada"}, Id: proto.String("EV_1"), CreatedAt: proto.Int64(1761815000)},
		{Event: proto.String("participant_joined"), Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("standup")}, Participant: &livekit.ParticipantInfo{Sid: "PA_2", Identity: "grace"}, Id: proto.String("EV_2"), CreatedAt: proto.Int64(1761815001)},
		{Event: proto.String("room_finished"), Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String("weekly.sync")}, Id: proto.String("EV_3"), CreatedAt: proto.Int64(1761815002)},
	} {
		if _, err := schema.Publish(ctx, pubJS, "default", evt); err != nil {
			panic(err)
		}
	}

	for range 2 {
		msg := <-joins
		addr, err := schema.ParseSubject(msg.Subject)
		if err != nil {
			panic(err)
		}
		evt, err := schema.DecodeEvent(msg.Data)
		if err != nil {
			panic(err)
		}
		fmt.Println("core:", addr.Room, addr.Event, evt.GetParticipant().GetIdentity())
	}

	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		panic(err)
	}
	for msg := range batch.Messages() {
		evt, err := schema.DecodeEvent(msg.Data())
		if err != nil {
			panic(err) // a real reader would log it and Term the message
		}
		meta, err := msg.Metadata()
		if err != nil {
			panic(err)
		}
		// The same bytes a webhook receiver gets for this event.
		body, err := schema.MarshalBody(evt, schema.Fallback{
			ID:        schema.StreamEventID(meta.Stream, meta.Sequence.Stream),
			CreatedAt: meta.Timestamp.Unix(),
		})
		if err != nil {
			panic(err)
		}
		fmt.Println("durable:", string(body))
		if err := msg.DoubleAck(ctx); err != nil { // an ack with a deadline, confirmed by the server
			panic(err)
		}
	}
	if err := batch.Error(); err != nil {
		panic(err)
	}
	// Output:
	// core: weekly.sync participant_joined ada
	// core: standup participant_joined grace
	// durable: {"event":"participant_joined","room":{"room_id":"weekly.sync"},"participant":{"sid":"PA_1","identity":"ada"},"id":"EV_1","created_at":"1761815000"}
	// durable: {"event":"room_finished","room":{"room_id":"weekly.sync"},"id":"EV_3","created_at":"1761815002"}
}
