package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbeddedNATS runs a NATS server with JetStream inside the process, for development and
// for `go run .` with no configuration. Production points ROOMHOOK_NATS_URL at a cluster. It
// listens where ROOMHOOK_EMBEDDED_LISTEN says (loopback by default) and requires the user kept
// in the data dir (embeddedCredentials; made and printed on stderr at the first start), so no
// anonymous client, local or not, can connect. Clients that go through ConnectNATS with no
// ROOMHOOK_NATS_URL read that user from the data dir.
func startEmbeddedNATS(listen, dataDir string) (*server.Server, error) {
	ns, _, err := startEmbeddedNATSAnnouncing(listen, dataDir, os.Stderr)
	return ns, err
}

// startEmbeddedNATSAnnouncing is startEmbeddedNATS printing new credentials on announce.
func startEmbeddedNATSAnnouncing(listen, dataDir string, announce io.Writer) (*server.Server, EmbeddedCredentials, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, EmbeddedCredentials{}, fmt.Errorf("ROOMHOOK_EMBEDDED_LISTEN: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, EmbeddedCredentials{}, fmt.Errorf("ROOMHOOK_EMBEDDED_LISTEN: %w", err)
	}
	creds, err := embeddedCredentials(dataDir, announce)
	if err != nil {
		return nil, creds, err
	}
	if !loopbackListen(listen) {
		fmt.Fprintf(announce, "The embedded NATS server listens on %s, beyond this machine; it requires the user kept in %s.\n",
			listen, EmbeddedCredentialsFile(dataDir))
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "roomhook-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "jetstream"),
		NoSigs:     true,
		Users:      []*server.User{{Username: creds.User, Password: creds.Password}},
	})
	if err != nil {
		return nil, creds, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start() // does not block: it starts the server's own goroutines, which ns.Shutdown ends
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, creds, fmt.Errorf("embedded NATS did not start listening on %s", listen)
	}
	return ns, creds, nil
}

// loopbackListen reports whether listen ("host:port") accepts connections from this machine
// only.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
