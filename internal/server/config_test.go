package server_test

import (
	"reflect"
	"testing"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
)

// DefaultConfig, which tests start from, is what LoadConfig reads from an empty environment.
func TestDefaultConfigIsLoadConfigsDefaults(t *testing.T) {
	natstest.ClearRoomhookEnv(t)
	loaded, err := server.LoadConfig(server.ScopeServe)
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	defaults, err := server.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, defaults) {
		t.Errorf("DefaultConfig() = %+v\nLoadConfig()    = %+v", defaults, loaded)
	}
}

// The defaults the envconfig tags spell out (the chart's CI reads them there) are the ones the
// libraries define: one definition each, and this test keeps the spelling in step.
func TestDefaultsAreTheLibrariesDefaults(t *testing.T) {
	t.Parallel()
	c, err := server.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.ContentType != signature.DefaultContentType {
		t.Errorf("ROOMHOOK_CONTENT_TYPE defaults to %q, signature.DefaultContentType is %q", c.ContentType, signature.DefaultContentType)
	}
	if c.RetrySchedule != sender.DefaultRetrySteps || c.RetryJitter != sender.DefaultRetryJitter {
		t.Errorf("ROOMHOOK_RETRY_SCHEDULE/_JITTER default to %q ±%v, dispatcher.DefaultRetrySteps/Jitter are %q ±%v",
			c.RetrySchedule, c.RetryJitter, sender.DefaultRetrySteps, sender.DefaultRetryJitter)
	}
	if c.MaxConnsPerHost != sender.DefaultMaxConnsPerHost || c.MaxConns != sender.DefaultMaxConns {
		t.Errorf("ROOMHOOK_MAX_CONNS_PER_HOST/_MAX_CONNS default to %d/%d, sender.DefaultMaxConnsPerHost/DefaultMaxConns are %d/%d",
			c.MaxConnsPerHost, c.MaxConns, sender.DefaultMaxConnsPerHost, sender.DefaultMaxConns)
	}
}

// TestMaxConnsAloneLowersThePerHostBound: ROOMHOOK_MAX_CONNS set alone below the default
// per-host bound takes that bound down with it instead of refusing to start; a per-host bound
// the operator set stays as set.
func TestMaxConnsAloneLowersThePerHostBound(t *testing.T) {
	tests := []struct {
		maxConns, perHost string // "" leaves the variable unset
		wantPerHost       int
	}{
		{maxConns: "32", wantPerHost: 32},
		{maxConns: "1000", wantPerHost: sender.DefaultMaxConnsPerHost},
		{maxConns: "32", perHost: "8", wantPerHost: 8},
		{maxConns: "", perHost: "8", wantPerHost: 8},
	}
	for _, tt := range tests {
		t.Run(tt.maxConns+"/"+tt.perHost, func(t *testing.T) {
			natstest.ClearRoomhookEnv(t)
			if tt.maxConns != "" {
				t.Setenv("ROOMHOOK_MAX_CONNS", tt.maxConns)
			}
			if tt.perHost != "" {
				t.Setenv("ROOMHOOK_MAX_CONNS_PER_HOST", tt.perHost)
			}
			c, err := server.LoadConfig(server.ScopeServe)
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxConnsPerHost != tt.wantPerHost {
				t.Fatalf("ROOMHOOK_MAX_CONNS_PER_HOST is %d, want %d", c.MaxConnsPerHost, tt.wantPerHost)
			}
		})
	}
}
