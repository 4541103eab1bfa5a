// Package roomhookv1 holds the Go types generated from schema/proto/roomhook/v1:
// roomhook.v1.Event, the protobuf payload media nodes publish on
// roomhook.events.<region>.<room>.<event>, and the messages it carries.
//
// Fields 1-10 of Event are wire-compatible with plugNmeet's
// plugnmeet.CommonNotifyEvent; participant, track and the room's codecs are
// LiveKit's own types from github.com/livekit/protocol/livekit. Fields numbered
// 100 and above (WebhookUrls) are routing-only and never reach a webhook body.
//
// Everything except this file is generated: edit the .proto files and run
// schema/generate.sh (or go generate ./schema).
package roomhookv1
