package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestConnectNATSErrorHidesCredentials: nats.Connect's parse error repeats the raw URL, user
// info included; ConnectNATS's error names it as RedactNATSURL does, and nats's own errors
// stay reachable with errors.Is.
func TestConnectNATSErrorHidesCredentials(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name     string
		url      string
		secrets  []string // none of these in the error
		wantText string   // the error says this
		wantIs   error    // and wraps this, when set
	}{
		{name: "password and a bad host", url: "nats://alice:s3cr3tpw@exa mple:4222",
			secrets: []string{"s3cr3tpw"}, wantText: "(unparsable URL) does not parse: invalid character"},
		{name: "token and a bad host", url: "nats://t0ken-s3cr3t@exa mple:4222",
			secrets: []string{"t0ken-s3cr3t"}, wantText: "does not parse"},
		{name: "no scheme, password and a bad host", url: "alice:s3cr3tpw@exa mple:4222",
			secrets: []string{"s3cr3tpw"}, wantText: "does not parse"},
		{name: "bad escape in the password", url: "nats://alice:s3cr%zzpw@127.0.0.1:4222",
			secrets: []string{"s3cr", "%zz"}, wantText: "does not parse: invalid URL escape"},
		{name: "one bad entry of a list", url: "nats://127.0.0.1:1, nats://alice:s3cr3tpw@exa mple:4222",
			secrets: []string{"s3cr3tpw"}, wantText: "nats://127.0.0.1:1,(unparsable URL) does not parse"},
		{name: "parsed, nothing listening", url: "nats://alice:s3cr3tpw@127.0.0.1:1",
			secrets: []string{"s3cr3tpw"}, wantText: "connect to NATS: nats: no servers available", wantIs: nats.ErrNoServers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := ConnectNATS(Config{NATSURL: tt.url}, tt.url, quiet)
			if err == nil {
				nc.Close()
				t.Fatalf("ConnectNATS(%q) connected", tt.url)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q holds %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
		})
	}
}

// TestConnectErrorScrubsMessages: a nats error whose text names the URL or its user info is
// reworded without them and still wraps the nats error; one that does not stays as it was.
func TestConnectErrorScrubsMessages(t *testing.T) {
	tests := []struct {
		name, url string
		err       error
		want      string
	}{
		{name: "whole URL", url: "nats://alice:s3cr3tpw@nats.example:4222",
			err:  fmt.Errorf("dial nats://alice:s3cr3tpw@nats.example:4222: %w", nats.ErrNoServers),
			want: "connect to NATS at nats://redacted@nats.example:4222: dial xxxxx: " + nats.ErrNoServers.Error()},
		{name: "password alone", url: "nats://alice:s3cr3tpw@nats.example:4222",
			err:  fmt.Errorf("auth with s3cr3tpw: %w", nats.ErrAuthorization),
			want: "connect to NATS at nats://redacted@nats.example:4222: auth with xxxxx: " + nats.ErrAuthorization.Error()},
		{name: "token", url: "tls://t0ken-s3cr3t@nats.example",
			err:  fmt.Errorf("token t0ken-s3cr3t refused: %w", nats.ErrAuthorization),
			want: "connect to NATS at tls://redacted@nats.example: token xxxxx refused: " + nats.ErrAuthorization.Error()},
		{name: "no secret in the text", url: "nats://alice:s3cr3tpw@nats.example:4222",
			err: nats.ErrNoServers, want: "connect to NATS: " + nats.ErrNoServers.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := connectError(tt.url, tt.err)
			if err.Error() != tt.want {
				t.Errorf("connectError = %q, want %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("connectError %q does not wrap %v", err, tt.err)
			}
		})
	}
}

func TestRedactNATSURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cr3tpw@nats.example:4222", "nats://redacted@nats.example:4222"},
		{"tls://t0ken@a.example,nats://b.example", "tls://redacted@a.example,nats://b.example"},
		{"alice:s3cr3tpw@nats.example:4222", "redacted@nats.example:4222"},
		{"nats.example:4222", "nats.example:4222"},
		{"nats://alice:s3cr3tpw@exa mple:4222", "(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := RedactNATSURL(tt.in); got != tt.want {
			t.Errorf("RedactNATSURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
