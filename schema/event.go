package schema

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// Event names of plugNmeet and LiveKit, as they appear in the last subject
// token and in the body's "event" field. Platforms add events over time, so a
// name missing here is delivered as it is, not rejected.
const (
	EventRoomCreated                  = "room_created"
	EventRoomStarted                  = "room_started"
	EventRoomFinished                 = "room_finished"
	EventParticipantJoined            = "participant_joined"
	EventParticipantLeft              = "participant_left"
	EventTrackPublished               = "track_published"
	EventTrackUnpublished             = "track_unpublished"
	EventStartRecording               = "start_recording"
	EventEndRecording                 = "end_recording"
	EventRecordingProceeded           = "recording_proceeded"
	EventStartRTMP                    = "start_rtmp"
	EventEndRTMP                      = "end_rtmp"
	EventSpeechToTextSessionStarted   = "speech_to_text_session_started"
	EventSpeechToTextSessionEnded     = "speech_to_text_session_ended"
	EventSpeechToTextTotalUsage       = "speech_to_text_total_usage"
	EventAnalyticsProceeded           = "analytics_proceeded"
	EventSessionEnded                 = "session_ended"
	EventArtifactCreated              = "artifact_created"
	EventRecordingTranscodingFinished = "recording_transcoding_finished"
)

// KnownEventNames returns every event name roomhook knows, in the order of
// DESIGN 1.1. The slice is new on every call; callers may keep or change it.
func KnownEventNames() []string {
	return []string{
		EventRoomCreated,
		EventRoomStarted,
		EventRoomFinished,
		EventParticipantJoined,
		EventParticipantLeft,
		EventTrackPublished,
		EventTrackUnpublished,
		EventStartRecording,
		EventEndRecording,
		EventRecordingProceeded,
		EventStartRTMP,
		EventEndRTMP,
		EventSpeechToTextSessionStarted,
		EventSpeechToTextSessionEnded,
		EventSpeechToTextTotalUsage,
		EventAnalyticsProceeded,
		EventSessionEnded,
		EventArtifactCreated,
		EventRecordingTranscodingFinished,
	}
}

// ErrDecodeEvent: the payload is not a valid binary roomhook.v1.Event (nor
// plugnmeet.CommonNotifyEvent). Returned wrapped with the decoder's detail.
var ErrDecodeEvent = errors.New("undecodable event payload")

// DecodeEvent parses a binary protobuf roomhook.v1.Event, which is also what a
// plugNmeet media node's proto.Marshal of a CommonNotifyEvent gives. Unknown
// fields are kept, so re-encoding the event loses nothing a newer publisher
// sent. Any error wraps ErrDecodeEvent.
func DecodeEvent(data []byte) (*roomhookv1.Event, error) {
	evt := new(roomhookv1.Event)
	if err := proto.Unmarshal(data, evt); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecodeEvent, err)
	}
	return evt, nil
}
