package cli

import (
	"context"
	"os"

	"github.com/roomhook/roomhook/internal/server"
)

// Serve returns `roomhook serve` (and plain `roomhook`) for a build of version: one dispatcher
// replica, configured by ROOMHOOK_* variables only; it takes no arguments.
func Serve(version string) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, _ []string) error {
		c, err := server.LoadConfig(server.ScopeServe)
		if err != nil {
			return err
		}
		return server.Serve(ctx, c, server.NewLogger(c, os.Stderr), version)
	}
}
