package server

import (
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/roomhook/roomhook/egress"
)

// checkHeaderValue refuses a configured header value that could not go on the wire as it is:
// CR or LF (which would split the header and fail every attempt, or worse, add headers) and
// other control bytes. The error names the variable, not the value.
func checkHeaderValue(variable, value string) error {
	for i := 0; i < len(value); i++ {
		c := value[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			what := "a control character"
			switch c {
			case '\r':
				what = "a carriage return (CR)"
			case '\n':
				what = "a line feed (LF)"
			}
			return errConfig(variable, "holds %s at byte %d; header values must be one line of visible text", what, i)
		}
	}
	if strings.TrimSpace(value) != value {
		return errConfig(variable, "has leading or trailing white space")
	}
	return nil
}

// checkContentType checks ROOMHOOK_CONTENT_TYPE: a header value that is a media type.
func checkContentType(value string) error {
	if err := checkHeaderValue("CONTENT_TYPE", value); err != nil {
		return err
	}
	if _, _, err := mime.ParseMediaType(value); err != nil {
		return errConfig("CONTENT_TYPE", "not a media type such as application/json: %v", err)
	}
	return nil
}

// allowPrivateTargets is the value of ROOMHOOK_ALLOW_PRIVATE_TARGETS: when it is not set,
// false, except in the embedded development mode (no ROOMHOOK_NATS_URL), where receivers on
// this machine are the point.
func allowPrivateTargets(setting string, embedded bool) (bool, error) {
	if strings.TrimSpace(setting) == "" {
		return embedded, nil
	}
	allow, err := strconv.ParseBool(strings.TrimSpace(setting))
	if err != nil {
		return false, errConfig("ALLOW_PRIVATE_TARGETS", "must be true or false, got %q", setting)
	}
	return allow, nil
}

// newEgressGuard builds the SSRF guard from ROOMHOOK_ALLOWED_TARGETS,
// ROOMHOOK_ALLOW_PRIVATE_TARGETS and ROOMHOOK_GUARD_GLOBAL.
func newEgressGuard(allowedTargets []string, allowPrivate string, guardGlobal, embedded bool) (*egress.Guard, error) {
	allow, err := allowPrivateTargets(allowPrivate, embedded)
	if err != nil {
		return nil, err
	}
	g, err := egress.New(egress.Config{AllowedTargets: allowedTargets, AllowPrivate: allow, GuardGlobal: guardGlobal})
	if err != nil {
		return nil, errConfig("ALLOWED_TARGETS", "%v", err)
	}
	return g, nil
}

// describeGuard is the log line's account of the guard.
func describeGuard(g *egress.Guard, allowedTargets []string) string {
	switch {
	case !g.Enabled():
		return "off: webhooks may reach any address (ROOMHOOK_ALLOW_PRIVATE_TARGETS)"
	case g.Applies(true):
		return fmt.Sprintf("on for every endpoint, %d allowed targets", len(allowedTargets))
	}
	return fmt.Sprintf("on for per-room endpoints, %d allowed targets", len(allowedTargets))
}
