package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectNATS connects to serverURL with whichever ROOMHOOK_NATS_* credentials and TLS settings
// c has, and reconnects forever: a NATS outage pauses delivery, it does not end the process.
// The dispatcher and every client subcommand connect through it, so they accept the same
// settings. With no ROOMHOOK_NATS_URL and no credentials set it uses those of the embedded
// development server, from the data dir.
func ConnectNATS(c Config, serverURL string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("roomhook"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				log.Warn("disconnected from NATS", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
	}
	if c.NATSCredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCredsFile))
	}
	if c.NATSNKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NATSNKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ROOMHOOK_NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, o)
	}
	switch {
	case c.NATSUser != "":
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	case c.NATSURL == "" && c.NATSCredsFile == "" && c.NATSNKeyFile == "":
		// The embedded development mode: the embedded server requires the user it keeps in the
		// data dir, so `go run . <subcommand>` works with no configuration. Before the
		// dispatcher's first start there is no file, and nothing to connect to either.
		if creds, err := ReadEmbeddedCredentials(c.DataDir); err == nil {
			opts = append(opts, nats.UserInfo(creds.User, creds.Password))
		}
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	nc, err := nats.Connect(serverURL, opts...)
	if err != nil {
		return nil, connectError(serverURL, err)
	}
	return nc, nil
}

// natsConnectError is a nats.Connect error whose text named serverURL's credentials: msg says
// it without them, and Unwrap still gives the error it stands for.
type natsConnectError struct {
	msg string
	err error
}

func (e *natsConnectError) Error() string { return e.msg }
func (e *natsConnectError) Unwrap() error { return e.err }

// connectError wraps err, nats.Connect's error for serverURL, as "connect to NATS: …" without
// the URL's user info (a user's password, or a token where a user name would be). A URL that
// does not parse comes back as a *url.Error repeating the raw text; it is named as
// RedactNATSURL shows it instead. Any other error whose text holds an entry of serverURL or its
// user info gets those replaced. errors.Is and errors.As see the error nats returned (the
// *url.Error's own cause, for a parse error).
func connectError(serverURL string, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		detail := ue.Err.Error()
		if _, ok := errors.AsType[url.EscapeError](ue.Err); ok {
			detail = "invalid URL escape" // url.EscapeError quotes the escape, maybe in the password
		}
		return &natsConnectError{
			msg: fmt.Sprintf("connect to NATS: server URL %s does not parse: %s", RedactNATSURL(serverURL), scrubNATSURL(serverURL, detail)),
			err: ue.Err,
		}
	}
	text := err.Error()
	if scrubbed := scrubNATSURL(serverURL, text); scrubbed != text {
		return &natsConnectError{msg: "connect to NATS at " + RedactNATSURL(serverURL) + ": " + scrubbed, err: err}
	}
	return fmt.Errorf("connect to NATS: %w", err)
}

// scrubNATSURL replaces in text every entry of the comma-separated list that has user info, that
// user info (what precedes the last '@' after "://", parsed or not) and its password or token
// with xxxxx.
func scrubNATSURL(list, text string) string {
	var secrets []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		_, rest, ok := strings.Cut(raw, "://")
		if !ok {
			rest = raw
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue // no user info: the URL names no secret
		}
		userInfo := rest[:at]
		secrets = append(secrets, raw, userInfo)
		if _, password, ok := strings.Cut(userInfo, ":"); ok {
			secrets = append(secrets, password)
		}
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			// Unescaped, as a message may show them: the password, or the user name where it is
			// a token (no password).
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			} else {
				secrets = append(secrets, u.User.Username())
			}
		}
	}
	// Longest first, so that a URL goes whole rather than leaving its host beside an xxxxx.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, secret := range secrets {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "xxxxx")
		}
	}
	return text
}

// RedactNATSURL is what logs and messages show of ROOMHOOK_NATS_URL, a comma-separated list of
// server URLs: user info is replaced whole, because nats://<token>@host carries a token where
// a user name would be, and an entry that does not parse is shown as "(unparsable URL)".
func RedactNATSURL(list string) string {
	parts := strings.Split(list, ",")
	for i, raw := range parts {
		raw = strings.TrimSpace(raw)
		// nats.Connect reads host:port and user:pw@host:port as nats:// URLs; url.Parse alone
		// would take "user" for a scheme and keep the password in the opaque part.
		implicit := !strings.Contains(raw, "://")
		if implicit {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)" // url.Error repeats the raw text
		case u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
			if implicit {
				parts[i] = strings.TrimPrefix(parts[i], "nats://")
			}
		}
	}
	return strings.Join(parts, ",")
}
