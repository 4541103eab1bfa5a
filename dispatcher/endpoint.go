package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/roomhook/roomhook/schema/signature"
)

// ErrInvalidURL marks a webhook URL that can never be delivered to: not an absolute http or
// https URL, or one carrying user info.
var ErrInvalidURL = errors.New("invalid webhook URL")

// Endpoint is one webhook receiver URL; the same URL is the same Endpoint wherever it was
// registered.
type Endpoint struct {
	ID              string                // EndpointID(URL)
	URL             string                // canonical form, as ParseWebhookURLs returns it
	Credentials     signature.Credentials // API key/secret used to sign for this endpoint
	StandardSecrets []string              // whsec_ secrets, several during rotation
	Filter          EventFilter           // which events this endpoint receives
	Paused          bool                  // no deliveries while set (an operator's pause); the backlog waits in the deliver stream
	Global          bool                  // from configuration, as opposed to registered per room
}

// EndpointID returns the stable identifier of a webhook URL: the first 16 hex characters of
// the SHA-256 of the URL. Hex keeps it usable as a NATS subject token and KV key, and a hash
// keeps URLs (which may carry tokens in their query) out of subjects and metric labels.
func EndpointID(url string) string {
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
// The error names the offending entry, with any password redacted.
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
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw text, which may hold a password; name the entry without it.
		return "", fmt.Errorf("%w %q: not a URL", ErrInvalidURL, redactUserInfo(raw))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%w %q: scheme must be http or https", ErrInvalidURL, u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%w %q: no host", ErrInvalidURL, u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("%w %q: user info is not supported, the Authorization header carries the webhook JWT",
			ErrInvalidURL, u.Redacted())
	}
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// redactUserInfo hides everything between "://" and the last "@" of the authority in text that
// did not parse as a URL.
func redactUserInfo(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, path, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return raw
	}
	redacted := scheme + "://xxxxx@" + authority[at+1:]
	if len(authority) < len(rest) {
		redacted += "/" + path
	}
	return redacted
}
