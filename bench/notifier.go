package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/logger"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/traffic"
)

// notifier is the peer row: LiveKit's in-memory ResourceURLNotifier (what a media server uses
// today) sends the same events, over the same rooms, to the same verifying receiver. It is
// given every advantage roomhook does not have: no NATS, no durable copy, and a queue deep and
// old enough that it drops nothing, so its figure is what an in-memory queue costs at best.
// Events are keyed by room, so it keeps the per-room order roomhook keeps.
func (b *bench) notifier(ctx context.Context, run int) (map[string]float64, error) {
	e := &env{opts: &b.opts}
	defer e.close()
	rc, route, base, err := e.newReceiver(0)
	if err != nil {
		return nil, err
	}
	name := runName("lkn", run)
	s := b.opts.Sizes
	g, err := traffic.NewGenerator(traffic.Config{Run: name, Seed: 1, Rooms: s.Rooms, Participants: s.Participants, Continuous: true})
	if err != nil {
		return nil, err
	}
	events := make([]*livekit.WebhookEvent, s.ThroughputEvents)
	for i := range events {
		evt, _ := g.Next()
		events[i] = livekitEvent(evt)
	}
	// The notifier counts what it sends in Prometheus metrics, as it does in a media server;
	// it panics without them.
	webhook.InitWebhookStats(nil)
	n := webhook.NewResourceURLNotifier(webhook.ResourceURLNotifierParams{
		URL: base + "/notifier", APIKey: benchCredentials.APIKey, APISecret: benchCredentials.APISecret,
		Logger:   logger.GetDiscardLogger(),
		Config:   webhook.ResourceURLNotifierConfig{MaxAge: time.Hour, MaxDepth: len(events) + 1},
		EventKey: func(ev *livekit.WebhookEvent) string { return ev.GetRoom().GetName() },
	})
	stopped := false
	defer func() {
		if !stopped {
			n.Stop(true)
		}
	}()
	tr := route.follow(newTracker(name, false))
	start := time.Now()
	for _, ev := range events {
		if err := n.QueueNotify(ctx, ev); err != nil {
			return nil, fmt.Errorf("notifier refused an event: %w", err)
		}
	}
	if err := tr.wait(ctx, int64(len(events)), "notifier"); err != nil {
		return nil, err
	}
	elapsed := tr.lastReceipt().Sub(start)
	n.Stop(false)
	stopped = true
	b.checkReceiver("notifier", run, rc)
	return map[string]float64{figNotifier: perSecond(len(events), elapsed)}, nil
}

// livekitEvent is evt as LiveKit's webhook event: the fields both formats share, the room id
// as the room's name.
func livekitEvent(evt *roomhookv1.Event) *livekit.WebhookEvent {
	out := &livekit.WebhookEvent{
		Event: evt.GetEvent(), Id: evt.GetId(), CreatedAt: evt.GetCreatedAt(),
		Participant: evt.GetParticipant(), Track: evt.GetTrack(),
	}
	if r := evt.GetRoom(); r != nil {
		out.Room = &livekit.Room{
			Sid: r.GetSid(), Name: r.GetRoomId(), EmptyTimeout: r.GetEmptyTimeout(),
			MaxParticipants: r.GetMaxParticipants(), CreationTime: int64(r.GetCreationTime()),
			EnabledCodecs: r.GetEnabledCodecs(), Metadata: r.GetMetadata(), NumParticipants: r.GetNumParticipants(),
		}
	}
	return out
}
