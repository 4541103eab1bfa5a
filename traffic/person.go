package traffic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/livekit/protocol/livekit"
)

// person is who joins a meeting; each connection (session) of theirs gets a new sid.
type person struct {
	identity, name string
	moderator      bool
	recorder       bool
	lang, region   string
	metadata       string
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Hedy", "Linus", "Margaret", "Dennis", "Barbara",
		"Ken", "Radia", "Tim", "Frances", "Zoë", "José", "Søren", "Łucja", "Mei", "Yūki", "Amara", "Chidi"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Lamarr", "Torvalds", "Hamilton", "Ritchie",
		"Liskov", "Thompson", "Perlman", "Berners-Lee", "Allen", "Müller", "García", "Kierkegaard",
		"Nowak", "Chen", "Tanaka", "Okafor", "Mensah"}
	languages = []string{"en", "en", "en", "de", "fr", "es", "pt-BR", "ja"}
	regions   = []string{"eu-central", "eu-west", "us-east", "ap-south"}
)

func newPerson(rng *rand.Rand, index int) *person {
	first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
	p := &person{
		identity:  fmt.Sprintf("user_%d_%s", 1000+rng.IntN(9000), randomString(rng, 4)),
		name:      first + " " + last,
		moderator: index == 0,
		lang:      languages[rng.IntN(len(languages))],
		region:    regions[rng.IntN(len(regions))],
	}
	// plugNmeet keeps the user's settings as JSON in the participant metadata.
	p.metadata = fmt.Sprintf(`{"profile_pic":"","is_admin":%t,"is_presenter":%t,"raised_hand":false,"wait_for_approval":false,`+
		`"lock_settings":{"lock_microphone":%t,"lock_webcam":false,"lock_screen_sharing":%t,"lock_chat":false},"metadata_id":"%s"}`,
		p.moderator, p.moderator, !p.moderator && rng.IntN(4) == 0, !p.moderator, randomString(rng, 8))
	return p
}

// info is the participant as LiveKit reports it in one state, with the tracks published so far.
func (p *person) info(sid string, joinedAt time.Time, state livekit.ParticipantInfo_State, tracks []*livekit.TrackInfo) *livekit.ParticipantInfo {
	pi := &livekit.ParticipantInfo{
		Sid:            sid,
		Identity:       p.identity,
		State:          state,
		Tracks:         slices.Clone(tracks),
		Metadata:       p.metadata,
		JoinedAt:       joinedAt.Unix(),
		JoinedAtMs:     joinedAt.UnixMilli(),
		Name:           p.name,
		Version:        uint32(1 + len(tracks)),
		Region:         p.region,
		IsPublisher:    len(tracks) > 0,
		Kind:           livekit.ParticipantInfo_STANDARD,
		ClientProtocol: 1,
	}
	switch {
	case p.recorder:
		// plugNmeet's recorder bot joins with a token whose grant sets recorder, and LiveKit still
		// reports it in permission.recorder of participant_joined bodies; its kind stays STANDARD
		// (it is not an egress), so ParticipantInfo.Kind is no replacement here.
		//lint:ignore SA1019 permission.recorder is in the participant bodies plugNmeet receivers read
		pi.Permission = &livekit.ParticipantPermission{CanSubscribe: true, Hidden: true, Recorder: true}
		pi.Metadata = ""
		pi.Attributes = map[string]string{"role": "recorder"}
	case p.moderator:
		pi.Permission = &livekit.ParticipantPermission{
			CanSubscribe: true, CanPublish: true, CanPublishData: true, CanUpdateMetadata: true,
			CanPublishSources: []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE,
				livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO},
		}
		pi.Attributes = map[string]string{"role": "moderator", "lang": p.lang, "plugnmeet.is_admin": "true"}
	default:
		pi.Permission = &livekit.ParticipantPermission{
			CanSubscribe: true, CanPublish: true, CanPublishData: true,
			CanPublishSources: []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE},
		}
		pi.Attributes = map[string]string{"role": "participant", "lang": p.lang}
	}
	return pi
}

// roomCodecs are the codecs a plugNmeet room enables.
func roomCodecs() []*livekit.Codec {
	return []*livekit.Codec{
		{Mime: "audio/opus"},
		{Mime: "audio/red"},
		{Mime: "video/VP8"},
		{Mime: "video/H264", FmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{Mime: "video/VP9"},
		{Mime: "video/AV1"},
	}
}

func roomMetadata(rng *rand.Rand, number int) string {
	titles := []string{"Weekly sync", "Maths 101 — lecture", "Q&A <open>", "Onboarding \"new\" hires", "Retro / planning"}
	return fmt.Sprintf(`{"room_title":"%s #%d","welcome_message":"Welcome!\nPlease mute on entry.","room_features":{"allow_webcams":true,"mute_on_start":%t,"allow_screen_share":true,"recording_features":{"is_allow":true}}}`,
		jsonText(titles[rng.IntN(len(titles))]), number, rng.IntN(2) == 0)
}

// jsonText escapes the two characters our titles need inside a JSON string.
func jsonText(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func trackVersion(at time.Time) *livekit.TimedVersion {
	return &livekit.TimedVersion{UnixMicro: at.UnixMicro()}
}

func audioTrack(rng *rand.Rand, at time.Time) *livekit.TrackInfo {
	cid := randomString(rng, 8) + "-mic"
	t := &livekit.TrackInfo{
		Sid:    "TR_A" + randomString(rng, 11),
		Type:   livekit.TrackType_AUDIO,
		Name:   "microphone",
		Muted:  rng.IntN(10) < 3,
		Source: livekit.TrackSource_MICROPHONE,
		Mid:    "0",
		Stream: "camera",
		AudioFeatures: []livekit.AudioTrackFeature{livekit.AudioTrackFeature_TF_ECHO_CANCELLATION,
			livekit.AudioTrackFeature_TF_NOISE_SUPPRESSION, livekit.AudioTrackFeature_TF_AUTO_GAIN_CONTROL},
		Version: trackVersion(at),
	}
	if rng.IntN(3) > 0 {
		t.MimeType = "audio/red"
		t.Codecs = []*livekit.SimulcastCodecInfo{{MimeType: "audio/red", Mid: "0", Cid: cid}, {MimeType: "audio/opus", Cid: cid}}
	} else {
		t.MimeType = "audio/opus"
		t.Codecs = []*livekit.SimulcastCodecInfo{{MimeType: "audio/opus", Mid: "0", Cid: cid}}
	}
	return t
}

type resolution struct{ w, h uint32 }

var cameraResolutions = []resolution{{1280, 720}, {960, 540}, {640, 360}}

func videoTrack(rng *rand.Rand, at time.Time) *livekit.TrackInfo {
	res := cameraResolutions[rng.IntN(len(cameraResolutions))]
	cid := randomString(rng, 8) + "-camera"
	t := &livekit.TrackInfo{
		Sid:     "TR_V" + randomString(rng, 11),
		Type:    livekit.TrackType_VIDEO,
		Name:    "camera",
		Width:   res.w,
		Height:  res.h,
		Source:  livekit.TrackSource_CAMERA,
		Mid:     "1",
		Stream:  "camera",
		Version: trackVersion(at),
	}
	switch rng.IntN(4) {
	case 0, 1: // VP8 or H.264 simulcast: three streams, one spatial layer each
		mime := "video/VP8"
		if rng.IntN(2) == 0 {
			mime = "video/H264"
		}
		t.MimeType = mime
		// LiveKit still sets track.simulcast next to the codecs' video_layer_mode, and the
		// track_published bodies plugNmeet forwards carry it.
		//lint:ignore SA1019 track.simulcast is part of the track bodies plugNmeet receivers read
		t.Simulcast = true
		t.Codecs = []*livekit.SimulcastCodecInfo{{MimeType: mime, Mid: "1", Cid: cid,
			Layers: simulcastLayers(rng, res), VideoLayerMode: livekit.VideoLayer_ONE_SPATIAL_LAYER_PER_STREAM}}
		t.BackupCodecPolicy = livekit.BackupCodecPolicy_SIMULCAST
	default: // VP9 or AV1 SVC: one stream carrying three spatial layers, VP8 as the backup codec
		mime := "video/VP9"
		if rng.IntN(2) == 0 {
			mime = "video/AV1"
		}
		t.MimeType = mime
		t.Codecs = []*livekit.SimulcastCodecInfo{
			{MimeType: mime, Mid: "1", Cid: cid, Layers: svcLayers(rng, res), VideoLayerMode: livekit.VideoLayer_MULTIPLE_SPATIAL_LAYERS_PER_STREAM},
			{MimeType: "video/VP8", Cid: cid, Layers: simulcastLayers(rng, res), VideoLayerMode: livekit.VideoLayer_ONE_SPATIAL_LAYER_PER_STREAM},
		}
		t.BackupCodecPolicy = livekit.BackupCodecPolicy_PREFER_REGRESSION
	}
	return t
}

func screenTrack(rng *rand.Rand, at time.Time) *livekit.TrackInfo {
	return &livekit.TrackInfo{
		Sid:      "TR_S" + randomString(rng, 11),
		Type:     livekit.TrackType_VIDEO,
		Name:     "screen",
		Width:    1920,
		Height:   1080,
		Source:   livekit.TrackSource_SCREEN_SHARE,
		MimeType: "video/VP8",
		Mid:      "2",
		Stream:   "screen",
		Codecs: []*livekit.SimulcastCodecInfo{{MimeType: "video/VP8", Mid: "2", Cid: randomString(rng, 8) + "-screen",
			Layers:         []*livekit.VideoLayer{{Quality: livekit.VideoQuality_HIGH, Width: 1920, Height: 1080, Bitrate: 2500000, Ssrc: rng.Uint32(), Rid: "f"}},
			VideoLayerMode: livekit.VideoLayer_ONE_SPATIAL_LAYER_PER_STREAM}},
		Version: trackVersion(at),
	}
}

// simulcastLayers are the low, medium and high streams LiveKit's clients send for a camera.
func simulcastLayers(rng *rand.Rand, res resolution) []*livekit.VideoLayer {
	return []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: res.w / 4, Height: res.h / 4, Bitrate: 150000, Ssrc: rng.Uint32(), Rid: "q"},
		{Quality: livekit.VideoQuality_MEDIUM, Width: res.w / 2, Height: res.h / 2, Bitrate: 500000, Ssrc: rng.Uint32(), SpatialLayer: 1, Rid: "h"},
		{Quality: livekit.VideoQuality_HIGH, Width: res.w, Height: res.h, Bitrate: 1700000, Ssrc: rng.Uint32(), SpatialLayer: 2, Rid: "f"},
	}
}

// svcLayers are the spatial layers of one SVC stream, which share one SSRC.
func svcLayers(rng *rand.Rand, res resolution) []*livekit.VideoLayer {
	ssrc := rng.Uint32()
	return []*livekit.VideoLayer{
		{Quality: livekit.VideoQuality_LOW, Width: res.w / 4, Height: res.h / 4, Bitrate: 120000, Ssrc: ssrc},
		{Quality: livekit.VideoQuality_MEDIUM, Width: res.w / 2, Height: res.h / 2, Bitrate: 400000, Ssrc: ssrc, SpatialLayer: 1},
		{Quality: livekit.VideoQuality_HIGH, Width: res.w, Height: res.h, Bitrate: 1400000, Ssrc: ssrc, SpatialLayer: 2},
	}
}
