package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/endpoint"
)

// startAdmin starts this replica's admin service (roomhook.admin.<region>.>) once the
// dispatcher is running, so that a replica answers only when the streams and buckets exist,
// and returns. The service stops when ctx ends; one replica of the region answers each request.
func startAdmin(ctx context.Context, nc *nats.Conn, c Config, replicaID, version string, running func() bool, dir func() *endpoint.Directory, log *slog.Logger) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !running() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	_, err := admin.Start(ctx, nc, admin.Config{
		Region: c.Region, Partitions: c.Partitions, ReplicaID: replicaID, Version: version, Logger: log,
		Delivers: func(id string) bool { _, ok := dir().Get(id); return ok },
		EventFilter: func(id string) (endpoint.EventFilter, bool) {
			v, ok := dir().Get(id)
			return v.Filter, ok
		},
	})
	if err != nil {
		log.Error("admin service not started: `roomhook endpoints|status|dlq` will not reach this replica", "error", err)
		return
	}
	log.Info("admin service running", "subjects", admin.SubjectPrefix(c.Region)+".>")
}
