package server

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbeddedNATS runs a NATS server with JetStream inside the process, for development and
// for `go run .` with no configuration. Production points ROOMHOOK_NATS_URL at a cluster.
func startEmbeddedNATS(listen, dataDir string) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("ROOMHOOK_EMBEDDED_LISTEN: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("ROOMHOOK_EMBEDDED_LISTEN: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "roomhook-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "jetstream"),
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start listening on %s", listen)
	}
	return ns, nil
}
