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
// and calls settled. settled comes after the server has the service's subscriptions
// (or after the service failed to start, which is logged): /readyz waits for it, so that a
// replica reported ready also answers `roomhook endpoints|status|dlq`. The service stops when
// ctx ends, and startAdmin returns once it has stopped and its handlers have finished, so that
// a caller that waits for it may close nc; one replica of the region answers each request.
func startAdmin(ctx context.Context, nc *nats.Conn, c Config, replicaID, version string, running func() bool, dir func() *endpoint.Directory, log *slog.Logger, settled func()) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !running() {
		select {
		case <-ctx.Done():
			settled()
			return
		case <-tick.C:
		}
	}
	svc, err := admin.Start(ctx, nc, admin.Config{
		Region: c.Region, Partitions: c.Partitions, ReplicaID: replicaID, Version: version, Logger: log,
		MaxEventBytes: c.MaxEventBytes,
		Delivers:      func(id string) bool { _, ok := dir().Get(id); return ok },
		EventFilter: func(id string) (endpoint.EventFilter, bool) {
			v, ok := dir().Get(id)
			return v.Filter, ok
		},
	})
	if err != nil {
		log.Error("admin service not started: `roomhook endpoints|status|dlq` will not reach this replica", "error", err)
		settled()
		return
	}
	// The subscriptions are only sent; a request from another connection could reach the
	// server before them and find no responder.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		log.Warn("admin service: subscriptions not confirmed by the server", "error", err)
	}
	log.Info("admin service running", "subjects", admin.SubjectPrefix(c.Region)+".>")
	settled()
	<-ctx.Done()
	if err := svc.Wait(); err != nil {
		log.Warn("admin service: not stopped cleanly", "error", err)
	}
}
