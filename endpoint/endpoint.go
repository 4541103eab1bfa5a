package endpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/roomhook/roomhook/schema/signature"
)

// ErrInvalidURL marks a webhook URL that can never be delivered to: not an absolute http or
// https URL, or one carrying user info.
var ErrInvalidURL = errors.New("invalid webhook URL")

// Endpoint is one webhook receiver URL; the same URL is the same Endpoint wherever it was
// registered.
type Endpoint struct {
	ID              string                // ID(URL)
	URL             string                // canonical form, as ParseWebhookURLs returns it
	Credentials     signature.Credentials // API key/secret used to sign for this endpoint
	StandardSecrets []string              // whsec_ secrets, several during rotation
	Filter          EventFilter           // which events this endpoint receives
	Paused          bool                  // no deliveries while set (an operator's pause); the backlog waits in its spill queues
	Global          bool                  // from configuration, as opposed to registered per room
}

// ID returns the stable identifier of a webhook URL: the first 16 hex characters of
// the SHA-256 of the URL. Hex keeps it usable as a NATS subject token and KV key, and a hash
// keeps URLs (which may carry tokens in their query) out of subjects and metric labels.
func ID(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:8])
}

// EventFilter selects the events an endpoint receives, by exact lower-case event name.
type EventFilter struct {
	Include []string // when empty, every event is included
	Exclude []string // wins over Include
}

// Allows reports whether event passes the filter: an empty Include allows every event, and a
// name in Exclude is refused even when it is also in Include.
func (f EventFilter) Allows(event string) bool {
	if slices.Contains(f.Exclude, event) {
		return false
	}
	return len(f.Include) == 0 || slices.Contains(f.Include, event)
}

// ParseWebhookURLs turns a configured or registered list of URLs into canonical, unique
// endpoint URLs, in their first-seen order. Entries are trimmed and empty ones dropped. Every
// other entry must be an absolute http or https URL with a host; the scheme and host are
// lower-cased so that spellings of one receiver become one endpoint. User info is refused
// because Authorization carries the webhook JWT, so basic-auth credentials could never be sent.
// The error names the offending entry as RedactURL shows it (no user info, query or fragment).
func ParseWebhookURLs(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, raw := range list {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		canonical, err := canonicalWebhookURL(raw)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, canonical) {
			out = append(out, canonical)
		}
	}
	return out, nil
}

func canonicalWebhookURL(raw string) (string, error) {
	canonical, _, err := checkWebhookURL(raw)
	return canonical, err
}

// checkWebhookURL returns raw's canonical form, or an error naming raw as RedactURL shows it
// and the URLReason* word for it.
func checkWebhookURL(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw text, which may hold a password or a query token; name the
		// entry without them.
		return "", URLReasonInvalid, fmt.Errorf("%w %q: not a URL", ErrInvalidURL, RedactURL(raw))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		reason := URLReasonForbiddenScheme
		if u.Scheme == "" {
			reason = URLReasonInvalid
		}
		return "", reason, fmt.Errorf("%w %q: scheme must be http or https", ErrInvalidURL, RedactURL(raw))
	case u.Host == "" || u.Hostname() == "":
		return "", URLReasonInvalid, fmt.Errorf("%w %q: no host", ErrInvalidURL, RedactURL(raw))
	case u.User != nil:
		return "", URLReasonInvalid, fmt.Errorf("%w %q: user info is not supported, the Authorization header carries the webhook JWT",
			ErrInvalidURL, RedactURL(raw))
	}
	if port := u.Port(); port != "" {
		// url.Parse takes any digits as a port; a dial to port 99999 or 0 can never work.
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", URLReasonInvalid, fmt.Errorf("%w %q: port %s is not in 1..65535", ErrInvalidURL, RedactURL(raw), port)
		}
	}
	u.Host = strings.ToLower(u.Host)
	return u.String(), "", nil
}

// MaxRoomURLBytes is the longest per-room webhook URL accepted.
const MaxRoomURLBytes = 2 << 10

// Reasons a per-room webhook URL is ignored, as RoomURLError.Reason and the reason label of
// the roomhook_room_urls_ignored_total metric.
const (
	URLReasonInvalid         = "invalid"          // not a URL, no host, a bad port or user info
	URLReasonTooLong         = "too_long"         // over MaxRoomURLBytes
	URLReasonForbiddenScheme = "forbidden_scheme" // not http or https
	URLReasonTooMany         = "too_many"         // past ROOMHOOK_MAX_ROOM_URLS of one room_created (the caller counts)
)

// RoomURLError is why ValidateRoomURL refused a URL. Its text names the URL redacted
// (RedactURL), so it can be logged.
type RoomURLError struct {
	Reason string // URLReasonInvalid, URLReasonTooLong or URLReasonForbiddenScheme
	URL    string // RedactURL of the refused URL, cut to 200 bytes
	Detail string // what is wrong, without the URL
}

// Error reads "per-room webhook URL https://x.example/hook refused (invalid): port 99999 is not in 1..65535".
func (e *RoomURLError) Error() string {
	return fmt.Sprintf("per-room webhook URL %s refused (%s): %s", e.URL, e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrInvalidURL) true.
func (e *RoomURLError) Unwrap() error { return ErrInvalidURL }

// ValidateRoomURL checks one per-room webhook URL, untrusted input from whoever created the
// room: at most MaxRoomURLBytes, an absolute http or https URL with a host, no user info, a
// port (if any) in 1..65535. It returns the canonical URL (as ParseWebhookURLs makes it, so the
// same receiver is the same endpoint) or a *RoomURLError, which wraps ErrInvalidURL; its
// Reason is the word for logs and metrics. Surrounding spaces are trimmed; an empty entry is
// invalid. Whether the address may be reached is decided later, at dial time (package egress).
func ValidateRoomURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	shown := RedactURL(raw)
	if len(shown) > 200 {
		shown = shown[:200] + "…"
	}
	if len(raw) > MaxRoomURLBytes {
		return "", &RoomURLError{Reason: URLReasonTooLong, URL: shown,
			Detail: fmt.Sprintf("%d bytes, at most %d", len(raw), MaxRoomURLBytes)}
	}
	if raw == "" {
		return "", &RoomURLError{Reason: URLReasonInvalid, URL: `""`, Detail: "empty"}
	}
	canonical, reason, err := checkWebhookURL(raw)
	if err != nil {
		return "", &RoomURLError{Reason: reason, URL: shown, Detail: urlProblem(err)}
	}
	return canonical, nil
}

// urlProblem is the part of a checkWebhookURL error after the quoted URL.
func urlProblem(err error) string {
	text := err.Error()
	if i := strings.LastIndex(text, "\": "); i >= 0 {
		return text[i+3:]
	}
	return text
}

// RedactURL is what may be shown or stored of a webhook URL outside the endpoints bucket:
// scheme, host, port and path, without user info, query or fragment, where receivers take
// tokens. An opaque URL (https:user:pw@host) loses what precedes its last '@' to xxxxx. Text
// that does not parse as a URL is shown as redactUnparsed does: user info and query go even
// where a password holds a '/', '?' or '#'.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactUnparsed(raw)
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	if at := strings.LastIndex(u.Opaque, "@"); at >= 0 {
		u.Opaque = "xxxxx@" + u.Opaque[at+1:]
	}
	return u.String()
}

// redactUnparsed is RedactURL of text that did not parse as a URL, where the authority's end is
// not known: a password may hold '/', '?' or '#'. After the scheme's "://" (or from the start
// without one), everything up to the last '@' becomes xxxxx and the rest is cut before its first
// '?' or '#'. An '@' after a '?' or '#' could be in a query or in a password, so then all but
// the scheme is hidden.
func redactUnparsed(raw string) string {
	prefix, rest := "", raw
	if scheme, after, ok := strings.Cut(raw, "://"); ok {
		prefix, rest = scheme+"://", after
	}
	cut := strings.IndexAny(rest, "?#")
	at := strings.LastIndex(rest, "@")
	switch {
	case at >= 0 && cut >= 0 && at > cut:
		return prefix + "xxxxx"
	case at >= 0:
		prefix, rest = prefix+"xxxxx@", rest[at+1:]
		cut = strings.IndexAny(rest, "?#")
	}
	if cut >= 0 {
		rest = rest[:cut]
	}
	return prefix + rest
}

// URLHost is what logs show of a webhook URL: its host, since the query may carry a token.
func URLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
