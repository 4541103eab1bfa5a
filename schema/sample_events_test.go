package schema

import (
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// Realistic events, shaped like what plugNmeet's server, LiveKit's forwarded
// webhooks and plugNmeet's recorder produce. Every call builds new values, so
// a test may change what it gets.

// goldenFallbackCreatedAt is the "JetStream stored it" time the golden bodies use.
const goldenFallbackCreatedAt = 1761815002

// goldenStream is the events stream name the golden fallbacks derive ids from.
const goldenStream = "ROOMHOOK_EVENTS_EU-CENTRAL"

type sampleEvent struct {
	// golden is the file name under testdata/golden, without ".json".
	golden string
	evt    *roomhookv1.Event
	// seq is the stream sequence the fallback id is derived from.
	seq uint64
}

func sampleEvents() []sampleEvent {
	return []sampleEvent{
		{golden: EventRoomCreated, seq: 1, evt: &roomhookv1.Event{
			Event: proto.String(EventRoomCreated),
			Room: &roomhookv1.NotifyEventRoom{
				Sid:             proto.String("RM_xK2pQ7vT9bLm"),
				RoomId:          proto.String("weekly-sync"),
				EmptyTimeout:    proto.Uint32(1800),
				MaxParticipants: proto.Uint32(100),
				CreationTime:    proto.Uint64(1761814900),
				EnabledCodecs:   sampleCodecs(),
				Metadata:        proto.String(sampleRoomMetadata),
			},
			// The publisher gave no id and no created_at: the fallbacks fill them.
			WebhookUrls: []string{"https://hooks.example.com/plugnmeet", "https://audit.example.org/in?room=weekly-sync"},
		}},
		{golden: EventRoomStarted, seq: 2, evt: &roomhookv1.Event{
			Event: proto.String(EventRoomStarted),
			Room: &roomhookv1.NotifyEventRoom{
				Sid:             proto.String("RM_xK2pQ7vT9bLm"),
				RoomId:          proto.String("weekly-sync"),
				EmptyTimeout:    proto.Uint32(1800),
				MaxParticipants: proto.Uint32(100),
				CreationTime:    proto.Uint64(1761814900),
				EnabledCodecs:   sampleCodecs(),
				Metadata:        proto.String(sampleRoomMetadata),
				NumParticipants: proto.Uint32(0),
			},
			Id:        proto.String("EV_Rk8sN3qWm2Zp"),
			CreatedAt: proto.Int64(1761814901),
		}},
		{golden: EventRoomFinished, seq: 40, evt: &roomhookv1.Event{
			Event: proto.String(EventRoomFinished),
			Room: &roomhookv1.NotifyEventRoom{
				Sid:             proto.String("RM_xK2pQ7vT9bLm"),
				RoomId:          proto.String("weekly-sync"),
				EmptyTimeout:    proto.Uint32(1800),
				MaxParticipants: proto.Uint32(100),
				CreationTime:    proto.Uint64(1761814900),
				EnabledCodecs:   sampleCodecs(),
				Metadata:        proto.String(sampleRoomMetadata),
				NumParticipants: proto.Uint32(0),
			},
			Id:        proto.String("EV_b7YcT4hJ9eQa"),
			CreatedAt: proto.Int64(1761818512),
		}},
		{golden: EventParticipantJoined, seq: 3, evt: &roomhookv1.Event{
			Event:       proto.String(EventParticipantJoined),
			Room:        sampleRoom(1),
			Participant: sampleParticipant(),
			Id:          proto.String("EV_jP3mX8rT2cVw"),
			CreatedAt:   proto.Int64(1761814950),
		}},
		{golden: EventParticipantLeft, seq: 31, evt: &roomhookv1.Event{
			Event: proto.String(EventParticipantLeft),
			Room:  sampleRoom(0),
			Participant: func() *livekit.ParticipantInfo {
				p := sampleParticipant()
				p.State = livekit.ParticipantInfo_DISCONNECTED
				p.Tracks = nil
				p.IsPublisher = false
				p.DisconnectReason = livekit.DisconnectReason_CLIENT_INITIATED
				return p
			}(),
			Id:        proto.String("EV_q2Lx7NbK5sDe"),
			CreatedAt: proto.Int64(1761818400),
		}},
		{golden: EventTrackPublished, seq: 4, evt: &roomhookv1.Event{
			Event:       proto.String(EventTrackPublished),
			Room:        sampleRoom(1),
			Participant: sampleParticipant(),
			Track:       sampleVideoTrack(),
			Id:          proto.String("EV_t9Gd2KvR6mXy"),
			CreatedAt:   proto.Int64(1761814961),
		}},
		{golden: EventTrackUnpublished, seq: 30, evt: &roomhookv1.Event{
			Event:       proto.String(EventTrackUnpublished),
			Room:        sampleRoom(1),
			Participant: sampleParticipant(),
			Track:       sampleAudioTrack(),
			Id:          proto.String("EV_u4Hs8WcP1nLz"),
			CreatedAt:   proto.Int64(1761818399),
		}},
		// The recorder sends its RecordingTasks enum name; the body lower-cases it.
		{golden: EventStartRecording, seq: 5, evt: &roomhookv1.Event{
			Event: proto.String("START_RECORDING"),
			Room:  sampleRoomRef(),
			RecordingInfo: &roomhookv1.RecordingInfoEvent{
				RecordId:    "REC_weekly-sync_1761815010",
				RecorderId:  "node_01",
				RecorderMsg: "success",
			},
			CreatedAt: proto.Int64(1761815010),
		}},
		{golden: EventEndRecording, seq: 20, evt: &roomhookv1.Event{
			Event: proto.String("END_RECORDING"),
			Room:  sampleRoomRef(),
			RecordingInfo: &roomhookv1.RecordingInfoEvent{
				RecordId:    "REC_weekly-sync_1761815010",
				RecorderId:  "node_01",
				RecorderMsg: "notifications.recording-ended",
			},
			CreatedAt: proto.Int64(1761817000),
		}},
		{golden: EventRecordingProceeded, seq: 21, evt: &roomhookv1.Event{
			Event: proto.String("RECORDING_PROCEEDED"),
			Room:  sampleRoomRef(),
			RecordingInfo: &roomhookv1.RecordingInfoEvent{
				RecordId:    "REC_weekly-sync_1761815010",
				RecorderId:  "node_01",
				RecorderMsg: "success",
				FilePath:    proto.String("node_01/weekly-sync/REC_weekly-sync_1761815010.mp4"),
				FileSize:    proto.Float32(52.73),
			},
			CreatedAt: proto.Int64(1761817042),
		}},
		{golden: EventRecordingTranscodingFinished, seq: 22, evt: &roomhookv1.Event{
			Event: proto.String("RECORDING_TRANSCODING_FINISHED"),
			Room:  sampleRoomRef(),
			RecordingInfo: &roomhookv1.RecordingInfoEvent{
				RecordId:    "REC_weekly-sync_1761815010",
				RecorderId:  "node_01",
				RecorderMsg: "transcoding finished",
				FilePath:    proto.String("node_01/weekly-sync/REC_weekly-sync_1761815010_720p.mp4"),
				FileSize:    proto.Float32(31.5),
			},
			CreatedAt: proto.Int64(1761817230),
		}},
		{golden: EventStartRTMP, seq: 6, evt: &roomhookv1.Event{
			Event: proto.String("START_RTMP"),
			Room:  sampleRoomRef(),
			RecordingInfo: &roomhookv1.RecordingInfoEvent{
				RecordId:    "RTMP_weekly-sync_1761815100",
				RecorderId:  "node_02",
				RecorderMsg: "success",
			},
			CreatedAt: proto.Int64(1761815100),
		}},
		{golden: EventEndRTMP, seq: 19, evt: &roomhookv1.Event{
			Event: proto.String("END_RTMP"),
			Room:  sampleRoomRef(),
			RecordingInfo: &roomhookv1.RecordingInfoEvent{
				RecordId:    "RTMP_weekly-sync_1761815100",
				RecorderId:  "node_02",
				RecorderMsg: "notifications.rtmp-ended",
				FilePath:    proto.String(""),
			},
			CreatedAt: proto.Int64(1761816900),
		}},
		{golden: EventSpeechToTextSessionStarted, seq: 7, evt: &roomhookv1.Event{
			Event:         proto.String(EventSpeechToTextSessionStarted),
			Room:          sampleRoomRef(),
			SpeechService: &roomhookv1.SpeechServiceEvent{UserId: proto.String("user-42")},
		}},
		{golden: EventSpeechToTextSessionEnded, seq: 18, evt: &roomhookv1.Event{
			Event:         proto.String(EventSpeechToTextSessionEnded),
			Room:          sampleRoomRef(),
			SpeechService: &roomhookv1.SpeechServiceEvent{UserId: proto.String("user-42")},
		}},
		{golden: EventSpeechToTextTotalUsage, seq: 41, evt: &roomhookv1.Event{
			Event:         proto.String(EventSpeechToTextTotalUsage),
			Room:          sampleRoomRef(),
			SpeechService: &roomhookv1.SpeechServiceEvent{TotalUsage: 4235},
		}},
		{golden: EventSessionEnded, seq: 39, evt: &roomhookv1.Event{
			Event: proto.String(EventSessionEnded),
			Room: &roomhookv1.NotifyEventRoom{
				Sid:    proto.String("RM_xK2pQ7vT9bLm"),
				RoomId: proto.String("weekly-sync"),
			},
		}},
		{golden: EventAnalyticsProceeded, seq: 42, evt: &roomhookv1.Event{
			Event:     proto.String(EventAnalyticsProceeded),
			Room:      sampleRoomRef(),
			Analytics: &roomhookv1.AnalyticsEvent{FileId: proto.String("AF_weekly-sync_1761818512")},
		}},
		{golden: EventArtifactCreated, seq: 43, evt: &roomhookv1.Event{
			Event: proto.String(EventArtifactCreated),
			Room:  sampleRoomRef(),
			RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{
				Type:       roomhookv1.RoomArtifactType_MEETING_SUMMARY_USAGE,
				ArtifactId: "ART_u8Qm2Wx5Rt7Y",
				Metadata: &roomhookv1.RoomArtifactMetadata{
					UserInfo:        &roomhookv1.RoomArtifactUserInfo{UserId: "user-42", Name: proto.String("Ada Lovelace")},
					ProviderJobInfo: &roomhookv1.RoomArtifactProviderJobInfo{JobId: "job-7f3c", FileName: "weekly-sync-summary.md"},
					UsageDetails: &roomhookv1.RoomArtifactMetadata_TokenUsage{TokenUsage: &roomhookv1.RoomArtifactTokenUsage{
						PromptTokens:                  12840,
						CompletionTokens:              1310,
						TotalTokens:                   14150,
						Breakdown:                     map[string]int64{"summarize": 11200, "chunk_merge": 2950, "user-42": 14150},
						PromptTokensEstimatedCost:     proto.Float64(0.001926),
						CompletionTokensEstimatedCost: proto.Float64(0.000786),
						TotalTokensEstimatedCost:      proto.Float64(0.002712),
					}},
					ReferenceArtifactId: proto.String("ART_s1Nd4Kc9Hv2B"),
				},
			},
			Id:        proto.String("6f1c1b1e-8f0a-4c53-9d0e-2b7f4a0c9e11"),
			CreatedAt: proto.Int64(1761818600),
		}},
		{golden: EventArtifactCreated + "-speech_transcription_usage", seq: 44, evt: &roomhookv1.Event{
			Event: proto.String(EventArtifactCreated),
			Room:  sampleRoomRef(),
			RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{
				Type:       roomhookv1.RoomArtifactType_SPEECH_TRANSCRIPTION_USAGE,
				ArtifactId: "ART_p5Vb8Nm3Qz6T",
				Metadata: &roomhookv1.RoomArtifactMetadata{
					UsageDetails: &roomhookv1.RoomArtifactMetadata_DurationUsage{DurationUsage: &roomhookv1.RoomArtifactDurationUsage{
						DurationSec:              3187,
						Breakdown:                map[string]int64{"en-US": 2410, "de-DE": 777},
						DurationSecEstimatedCost: proto.Float64(0.0531),
					}},
				},
			},
		}},
		{golden: EventArtifactCreated + "-meeting_summary", seq: 45, evt: &roomhookv1.Event{
			Event: proto.String(EventArtifactCreated),
			Room:  sampleRoomRef(),
			RoomArtifact: &roomhookv1.RoomArtifactWebhookEvent{
				Type:       roomhookv1.RoomArtifactType_MEETING_SUMMARY,
				ArtifactId: "ART_s1Nd4Kc9Hv2B",
				Metadata: &roomhookv1.RoomArtifactMetadata{
					FileInfo: &roomhookv1.RoomArtifactFileInfo{
						FilePath: "artifacts/weekly-sync/summary-ART_s1Nd4Kc9Hv2B.md",
						FileSize: 18233,
						MimeType: "text/markdown",
					},
				},
			},
		}},
	}
}

// sampleRoomMetadata is plugNmeet-style room metadata: JSON inside a string,
// with characters an HTML-escaping encoder would change.
const sampleRoomMetadata = `{"room_title":"Q&A <weekly> sync","welcome_message":"Hi \"team\"\nagenda → docs","room_features":{"allow_webcams":true,"mute_on_start":false}}`

func sampleCodecs() []*livekit.Codec {
	return []*livekit.Codec{
		{Mime: "audio/opus"},
		{Mime: "audio/red"},
		{Mime: "video/VP8"},
		{Mime: "video/H264", FmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{Mime: "video/AV1"},
	}
}

// sampleRoom is the room as plugNmeet forwards it with participant and track events.
func sampleRoom(numParticipants uint32) *roomhookv1.NotifyEventRoom {
	return &roomhookv1.NotifyEventRoom{
		Sid:             proto.String("RM_xK2pQ7vT9bLm"),
		RoomId:          proto.String("weekly-sync"),
		EmptyTimeout:    proto.Uint32(1800),
		MaxParticipants: proto.Uint32(100),
		CreationTime:    proto.Uint64(1761814900),
		EnabledCodecs:   sampleCodecs(),
		Metadata:        proto.String(sampleRoomMetadata),
		NumParticipants: proto.Uint32(numParticipants),
	}
}

// sampleRoomRef is the room as plugNmeet's own events (recorder, speech,
// analytics, artifacts) name it.
func sampleRoomRef() *roomhookv1.NotifyEventRoom {
	return &roomhookv1.NotifyEventRoom{
		Sid:    proto.String("RM_xK2pQ7vT9bLm"),
		RoomId: proto.String("weekly-sync"),
	}
}

func sampleParticipant() *livekit.ParticipantInfo {
	return &livekit.ParticipantInfo{
		Sid:        "PA_Zx4cV7bN1mQw",
		Identity:   "user-42",
		State:      livekit.ParticipantInfo_ACTIVE,
		Tracks:     []*livekit.TrackInfo{sampleAudioTrack(), sampleVideoTrack()},
		Metadata:   `{"is_admin":true,"record_webcam":true,"lock_settings":{"lock_microphone":false}}`,
		JoinedAt:   1761814950,
		JoinedAtMs: 1761814950123,
		Name:       "Ada Lovelace",
		Version:    3,
		Permission: &livekit.ParticipantPermission{
			CanSubscribe:      true,
			CanPublish:        true,
			CanPublishData:    true,
			CanPublishSources: []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE, livekit.TrackSource_SCREEN_SHARE},
			CanUpdateMetadata: true,
		},
		Region:         "eu-central",
		IsPublisher:    true,
		Kind:           livekit.ParticipantInfo_STANDARD,
		Attributes:     map[string]string{"role": "moderator", "lang": "en", "dept": "R&D"},
		ClientProtocol: 1,
	}
}

func sampleVideoTrack() *livekit.TrackInfo {
	return &livekit.TrackInfo{
		Sid:      "TR_VCk3Lq8Xw2Np",
		Type:     livekit.TrackType_VIDEO,
		Name:     "camera",
		Width:    1280,
		Height:   720,
		Source:   livekit.TrackSource_CAMERA,
		MimeType: "video/VP8",
		Mid:      "1",
		Codecs: []*livekit.SimulcastCodecInfo{{
			MimeType: "video/VP8",
			Mid:      "1",
			Cid:      "5d3a6c1e-camera",
			Layers: []*livekit.VideoLayer{
				{Quality: livekit.VideoQuality_LOW, Width: 320, Height: 180, Bitrate: 150000, Ssrc: 1148392011, Rid: "q"},
				{Quality: livekit.VideoQuality_MEDIUM, Width: 640, Height: 360, Bitrate: 500000, Ssrc: 2873310422, SpatialLayer: 1, Rid: "h"},
				{Quality: livekit.VideoQuality_HIGH, Width: 1280, Height: 720, Bitrate: 1700000, Ssrc: 3920018877, SpatialLayer: 2, Rid: "f"},
			},
			VideoLayerMode: livekit.VideoLayer_ONE_SPATIAL_LAYER_PER_STREAM,
		}},
		Stream:            "camera",
		Version:           &livekit.TimedVersion{UnixMicro: 1761814960123456, Ticks: 1},
		BackupCodecPolicy: livekit.BackupCodecPolicy_SIMULCAST,
	}
}

func sampleAudioTrack() *livekit.TrackInfo {
	return &livekit.TrackInfo{
		Sid:      "TR_AMr6Ty1Ue9Ks",
		Type:     livekit.TrackType_AUDIO,
		Name:     "microphone",
		Muted:    true,
		Source:   livekit.TrackSource_MICROPHONE,
		MimeType: "audio/red",
		Mid:      "0",
		Codecs: []*livekit.SimulcastCodecInfo{
			{MimeType: "audio/red", Mid: "0", Cid: "9b1f0e27-mic"},
			{MimeType: "audio/opus", Cid: "9b1f0e27-mic"},
		},
		Stream:        "camera",
		Version:       &livekit.TimedVersion{UnixMicro: 1761814959870012},
		AudioFeatures: []livekit.AudioTrackFeature{livekit.AudioTrackFeature_TF_ECHO_CANCELLATION, livekit.AudioTrackFeature_TF_NOISE_SUPPRESSION, livekit.AudioTrackFeature_TF_AUTO_GAIN_CONTROL},
	}
}
