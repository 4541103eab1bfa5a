package traffic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// meeting is one room's script: every event of the meeting, timed and in order, built when the
// meeting starts and handed out one by one.
type meeting struct {
	events []*roomhookv1.Event
	end    time.Time // created_at of the last event; a replacement meeting starts there
}

func (m *meeting) next() *roomhookv1.Event {
	if len(m.events) == 0 {
		return nil
	}
	evt := m.events[0]
	m.events[0] = nil
	m.events = m.events[1:]
	return evt
}

func (m *meeting) done() bool { return len(m.events) == 0 }

// step is one event of a script before ids are given: when it happens and how to build it.
type step struct {
	at    time.Duration // since the meeting started
	order int           // tie-break: the order steps were added
	name  string
	build func(evt *roomhookv1.Event)
	delta int // change of the room's participant count (join +1, leave -1)
}

// script collects a meeting's steps and turns them into events.
type script struct {
	rng   *rand.Rand
	room  roomFacts
	steps []step
}

type roomFacts struct {
	sid, id    string
	created    time.Time
	codecs     []*livekit.Codec
	metadata   string
	maxPeople  uint32
	emptyAfter uint32
}

func (s *script) add(at time.Duration, name string, delta int, build func(*roomhookv1.Event)) {
	s.steps = append(s.steps, step{at: at, order: len(s.steps), name: name, build: build, delta: delta})
}

func newMeeting(rng *rand.Rand, cfg Config, number int, start time.Time) *meeting {
	s := &script{rng: rng}
	s.room = roomFacts{
		sid:        "RM_" + randomString(rng, 12),
		id:         RoomID(cfg.Run, number),
		created:    start,
		codecs:     roomCodecs(),
		metadata:   roomMetadata(rng, number),
		maxPeople:  uint32(max(cfg.Participants+5, 20)),
		emptyAfter: 1800,
	}
	webhooks := cfg.RoomWebhooks
	s.add(0, schema.EventRoomCreated, 0, func(e *roomhookv1.Event) {
		e.Room.EmptyTimeout = proto.Uint32(s.room.emptyAfter)
		e.Room.MaxParticipants = proto.Uint32(s.room.maxPeople)
		e.Room.Metadata = proto.String(s.room.metadata)
		e.WebhookUrls = slices.Clone(webhooks)
	})
	s.add(time.Second+jitter(rng, 2*time.Second), schema.EventRoomStarted, 0, nil)

	length := 30*time.Minute + jitter(rng, 60*time.Minute)
	lastLeave := time.Duration(0)
	for p := 0; p < cfg.Participants; p++ {
		joins := 5*time.Second + jitter(rng, 5*time.Minute)
		if p == 0 {
			joins = 3 * time.Second // the moderator opens the meeting
		}
		leaves := length - jitter(rng, 5*time.Minute)
		person := newPerson(rng, p)
		// About one in ten drops (network change, reload) and comes back ten seconds later.
		if rng.IntN(10) == 0 && leaves-joins > 2*time.Minute {
			drop := joins + time.Minute + jitter(rng, leaves-joins-2*time.Minute)
			s.session(person, joins, drop, livekit.DisconnectReason_SIGNAL_CLOSE)
			joins = drop + 10*time.Second
		}
		s.session(person, joins, leaves, livekit.DisconnectReason_CLIENT_INITIATED)
		lastLeave = max(lastLeave, leaves)
	}
	if cfg.Participants > 0 && rng.IntN(10) < 7 {
		s.recording(30*time.Second+jitter(rng, 3*time.Minute), lastLeave-jitter(rng, 2*time.Minute))
	}
	finished := lastLeave + time.Second + jitter(rng, time.Minute)
	s.add(finished, schema.EventRoomFinished, 0, nil)
	fileID := s.room.sid + "-" + fmt.Sprint(s.room.created.Unix())
	s.add(finished+time.Minute+jitter(rng, 30*time.Second), schema.EventAnalyticsProceeded, 0, func(e *roomhookv1.Event) {
		e.Analytics = &roomhookv1.AnalyticsEvent{FileId: proto.String(fileID)}
	})
	return s.events(cfg.Run, number)
}

// events orders the steps by time and builds the events: ids, created_at, the room as each
// event carries it (with the participant count at that moment for LiveKit's events).
func (s *script) events(run string, number int) *meeting {
	slices.SortStableFunc(s.steps, func(a, b step) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.order - b.order
	})
	m := &meeting{events: make([]*roomhookv1.Event, 0, len(s.steps))}
	people := 0
	for i, st := range s.steps {
		people += st.delta
		at := s.room.created.Add(st.at)
		evt := &roomhookv1.Event{
			Event:     proto.String(st.name),
			Room:      s.roomFor(st.name, people),
			Id:        proto.String(EventID{Run: run, Room: number, Seq: uint64(i + 1)}.String()),
			CreatedAt: proto.Int64(at.Unix()),
		}
		if st.build != nil {
			st.build(evt)
		}
		m.events = append(m.events, evt)
		m.end = at
	}
	return m
}

// roomFor is the room as the event's source writes it: LiveKit's webhooks carry the whole
// room, plugNmeet's recorder and analytics only its sid and id.
func (s *script) roomFor(name string, people int) *roomhookv1.NotifyEventRoom {
	r := &roomhookv1.NotifyEventRoom{Sid: proto.String(s.room.sid), RoomId: proto.String(s.room.id)}
	switch name {
	case schema.EventStartRecording, schema.EventEndRecording, schema.EventRecordingProceeded, schema.EventAnalyticsProceeded:
		return r
	}
	r.EmptyTimeout = proto.Uint32(s.room.emptyAfter)
	r.MaxParticipants = proto.Uint32(s.room.maxPeople)
	r.CreationTime = proto.Uint64(uint64(s.room.created.Unix()))
	r.EnabledCodecs = s.room.codecs
	r.NumParticipants = proto.Uint32(uint32(people))
	return r
}

// session is one participant connection: join, publish, unpublish, leave.
func (s *script) session(p *person, joins, leaves time.Duration, reason livekit.DisconnectReason) {
	rng := s.rng
	sid := "PA_" + randomString(rng, 12)
	joinedAt := s.room.created.Add(joins)
	var tracks []*livekit.TrackInfo
	mic := audioTrack(rng, joinedAt.Add(2*time.Second))
	tracks = append(tracks, mic)
	var camera, screen *livekit.TrackInfo
	if rng.IntN(10) < 8 {
		camera = videoTrack(rng, joinedAt.Add(3*time.Second))
		tracks = append(tracks, camera)
	}
	if p.moderator && rng.IntN(2) == 0 && leaves-joins > 16*time.Minute {
		screen = screenTrack(rng, joinedAt.Add(5*time.Minute))
	}
	info := func(state livekit.ParticipantInfo_State, published []*livekit.TrackInfo) *livekit.ParticipantInfo {
		pi := p.info(sid, joinedAt, state, published)
		if state == livekit.ParticipantInfo_DISCONNECTED {
			pi.DisconnectReason = reason
		}
		return pi
	}
	s.add(joins, schema.EventParticipantJoined, +1, func(e *roomhookv1.Event) {
		e.Participant = info(livekit.ParticipantInfo_JOINED, nil)
	})
	publish := func(at time.Duration, t *livekit.TrackInfo, before []*livekit.TrackInfo) {
		s.add(at, schema.EventTrackPublished, 0, func(e *roomhookv1.Event) {
			e.Participant = info(livekit.ParticipantInfo_ACTIVE, before)
			e.Track = t
		})
	}
	unpublish := func(at time.Duration, t *livekit.TrackInfo, before []*livekit.TrackInfo) {
		s.add(at, schema.EventTrackUnpublished, 0, func(e *roomhookv1.Event) {
			e.Participant = info(livekit.ParticipantInfo_ACTIVE, before)
			e.Track = t
		})
	}
	publish(joins+2*time.Second, mic, nil)
	if camera != nil {
		publish(joins+3*time.Second, camera, []*livekit.TrackInfo{mic})
	}
	if screen != nil {
		shown := 5*time.Minute + jitter(rng, 5*time.Minute)
		publish(joins+5*time.Minute, screen, tracks)
		unpublish(joins+5*time.Minute+shown, screen, append(slices.Clone(tracks), screen))
	}
	for i := len(tracks) - 1; i >= 0; i-- {
		unpublish(leaves-time.Duration(i+1)*time.Second, tracks[i], tracks[:i+1])
	}
	s.add(leaves, schema.EventParticipantLeft, -1, func(e *roomhookv1.Event) {
		e.Participant = info(livekit.ParticipantInfo_DISCONNECTED, nil)
	})
}

// recording adds plugNmeet's recorder: its hidden bot joins, start_recording, end_recording,
// the bot leaves, and the processed file is announced later.
func (s *script) recording(starts, ends time.Duration) {
	if ends <= starts+time.Minute {
		ends = starts + time.Minute
	}
	rng := s.rng
	recordID := s.room.sid + "-" + fmt.Sprint(s.room.created.Add(starts).UnixMilli())
	recorder := fmt.Sprintf("node_%02d", 1+rng.IntN(4))
	bot := &person{identity: "RECORDER_BOT", name: "RECORDER_BOT", recorder: true, region: "eu-central"}
	botSid := "PA_" + randomString(rng, 12)
	joinedAt := s.room.created.Add(starts - 2*time.Second)
	s.add(starts-2*time.Second, schema.EventParticipantJoined, +1, func(e *roomhookv1.Event) {
		e.Participant = bot.info(botSid, joinedAt, livekit.ParticipantInfo_JOINED, nil)
	})
	s.add(starts, schema.EventStartRecording, 0, func(e *roomhookv1.Event) {
		e.RecordingInfo = &roomhookv1.RecordingInfoEvent{RecordId: recordID, RecorderId: recorder, RecorderMsg: "success"}
	})
	s.add(ends, schema.EventEndRecording, 0, func(e *roomhookv1.Event) {
		e.RecordingInfo = &roomhookv1.RecordingInfoEvent{RecordId: recordID, RecorderId: recorder, RecorderMsg: "success"}
	})
	s.add(ends+time.Second, schema.EventParticipantLeft, -1, func(e *roomhookv1.Event) {
		pi := bot.info(botSid, joinedAt, livekit.ParticipantInfo_DISCONNECTED, nil)
		pi.DisconnectReason = livekit.DisconnectReason_CLIENT_INITIATED
		e.Participant = pi
	})
	size := float32(ends-starts) / float32(time.Minute) * (3 + rng.Float32()*4) // MB: 3-7 MB a minute
	path := fmt.Sprintf("recordings/%s/%s.mp4", s.room.sid, recordID)
	s.add(ends+30*time.Second+jitter(rng, time.Minute), schema.EventRecordingProceeded, 0, func(e *roomhookv1.Event) {
		e.RecordingInfo = &roomhookv1.RecordingInfoEvent{
			RecordId: recordID, RecorderId: recorder, RecorderMsg: "success",
			FilePath: proto.String(path), FileSize: proto.Float32(float32(int(size*100)) / 100),
		}
	})
}

// jitter is a uniformly random duration in [0, d).
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}

func randomString(rng *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}
