package server

import (
	"fmt"
	"log/slog"
	"net/url"
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
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

// RedactNATSURL is what logs and messages show of ROOMHOOK_NATS_URL, a comma-separated list of
// server URLs: user info is replaced whole, because nats://<token>@host carries a token where
// a user name would be.
func RedactNATSURL(list string) string {
	parts := strings.Split(list, ",")
	for i, raw := range parts {
		u, err := url.Parse(strings.TrimSpace(raw))
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)" // url.Error repeats the raw text
		case u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
