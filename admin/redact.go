package admin

import (
	"bytes"
	"regexp"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// RedactURL is what every answer shows of a webhook URL: endpoint.RedactURL, without user
// info, query or fragment, where receivers take tokens. The full URL stays in the endpoints
// bucket.
func RedactURL(raw string) string { return endpoint.RedactURL(raw) }

// urlInText finds http(s) URLs in a body, up to the first space, quote, angle bracket or
// non-ASCII byte. A JSON escape such as \u0026 belongs to the match, so an escaped '&' cannot
// end it before the rest of a query. The scheme's case is spelled out: under (?i) the negated
// class would also exclude 'k' and 's', which non-ASCII letters fold to.
func urlInText() *regexp.Regexp {
	return regexp.MustCompile(`[hH][tT][tT][pP][sS]?://[^\x00-\x20"'<>\x7f-\x{10FFFF}]+`)
}

// redactBody returns a dead letter's body as dlq show may answer it. An invalid event's
// protobuf payload keeps its shape with each webhook_urls entry redacted; any other body, or
// a payload that is not protobuf, has every http(s) URL in it redacted. The stored body is
// not changed: a replay sends what was to be sent.
func redactBody(body []byte) []byte {
	if !looksLikeText(body) {
		if out, ok := redactProtoURLs(body); ok {
			return out
		}
	}
	return urlInText().ReplaceAllFunc(body, func(u []byte) []byte { return []byte(RedactURL(string(u))) })
}

// looksLikeText is true for JSON and other UTF-8 text; a protobuf payload is binary unless it
// is tiny.
func looksLikeText(body []byte) bool {
	trimmed := bytes.TrimSpace(body)
	return utf8.Valid(body) && (len(trimmed) == 0 || trimmed[0] == '{' || trimmed[0] == '[')
}

// redactProtoURLs rewrites the top-level webhook_urls fields of a roomhook.v1.Event payload;
// false when body is not a well-formed protobuf message.
func redactProtoURLs(body []byte) ([]byte, bool) {
	field := (&roomhookv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("webhook_urls").Number()
	out := make([]byte, 0, len(body))
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, body[n:])
		if m < 0 {
			return nil, false
		}
		if num == field && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(body[n:])
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendString(out, RedactURL(string(v)))
		} else {
			out = append(out, body[:n+m]...)
		}
		body = body[n+m:]
	}
	return out, true
}
