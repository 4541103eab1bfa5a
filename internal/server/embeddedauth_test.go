package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// The embedded development server refuses anonymous clients; its user is made on the first
// start, printed once, kept in the data dir (owner-only) and used by ConnectNATS when
// ROOMHOOK_NATS_URL is empty, as the subcommands do with no configuration.
func TestEmbeddedNATSRequiresItsUser(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var printed bytes.Buffer
	var first EmbeddedCredentials
	for start := range 2 {
		var announce bytes.Buffer
		ns, creds, err := startEmbeddedNATSAnnouncing("127.0.0.1:-1", dir, &announce)
		if err != nil {
			t.Fatal(err)
		}
		if start == 0 {
			first = creds
			printed = announce
		} else if announce.Len() != 0 || creds != first {
			t.Errorf("restart printed %q and used %+v; want the kept credentials, not printed again", announce.String(), creds)
		}
		url := ns.ClientURL()
		tests := []struct {
			name string
			opts []nats.Option
			ok   bool
		}{
			{"anonymous", nil, false},
			{"wrong password", []nats.Option{nats.UserInfo(creds.User, "guess")}, false},
			{"its user", []nats.Option{nats.UserInfo(creds.User, creds.Password)}, true},
		}
		for _, tt := range tests {
			nc, err := nats.Connect(url, append(tt.opts, nats.NoReconnect())...)
			if (err == nil) != tt.ok {
				t.Errorf("%s: connect error %v, want ok %v", tt.name, err, tt.ok)
			}
			if err == nil {
				nc.Close()
			} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(err.Error(), "Authorization") {
				t.Errorf("%s: %v, want an authorization error", tt.name, err)
			}
		}
		// What every subcommand does with no configuration but the data dir.
		nc, err := ConnectNATS(Config{DataDir: dir}, url, quiet)
		if err != nil {
			t.Fatalf("ConnectNATS with the data dir's credentials: %v", err)
		}
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	// Where the password is kept, never the password: stderr ends up in logs.
	if strings.Contains(printed.String(), first.Password) || !strings.Contains(printed.String(), EmbeddedCredentialsFile(dir)) {
		t.Errorf("first start printed %q; want where the password is kept, and not the password", printed.String())
	}
	info, err := os.Stat(EmbeddedCredentialsFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("credentials file mode %v, want 0600", perm)
	}
}

func TestLoopbackListen(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:4222": true, "localhost:4222": true, "[::1]:4222": true,
		"0.0.0.0:4222": false, ":4222": false, "10.0.0.5:4222": false, "bad": false,
	} {
		if got := loopbackListen(listen); got != want {
			t.Errorf("loopbackListen(%q) = %v, want %v", listen, got, want)
		}
	}
}
