// Package schema is roomhook's public contract in code: the protobuf event that
// media nodes publish (generated into roomhookv1 from proto/), the subject
// codec of roomhook.events.<region>.<room>.<event>, and the webhook JSON body
// that receivers sign-check byte for byte.
package schema

//go:generate ./generate.sh
