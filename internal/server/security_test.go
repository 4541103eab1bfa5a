package server

import (
	"strings"
	"testing"
)

func TestCheckContentType(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"application/webhook+json", true},
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"application/json\r\nX-Injected: 1", false},
		{"application/json\n", false},
		{"application/json\x00", false},
		{"application/json\x7f", false},
		{" application/json", false},
		{"not a media type", false},
		{"", false},
	}
	for _, tt := range tests {
		err := checkContentType(tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("checkContentType(%q) = %v, want ok %v", tt.value, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "ROOMHOOK_CONTENT_TYPE") {
			t.Errorf("error %q does not name the variable", err)
		}
		if err != nil && strings.Contains(err.Error(), "X-Injected") {
			t.Errorf("error %q repeats the value", err)
		}
	}
}

func TestNewEgressGuard(t *testing.T) {
	tests := []struct {
		name         string
		allowed      []string
		allowPrivate string
		guardGlobal  bool
		embedded     bool
		perRoom      bool // guarded
		global       bool
		errVar       string
	}{
		{name: "production default", perRoom: true},
		{name: "embedded default is off", embedded: true},
		{name: "embedded, explicitly on", allowPrivate: "false", embedded: true, perRoom: true},
		{name: "explicitly off", allowPrivate: "true"},
		{name: "guard global", guardGlobal: true, perRoom: true, global: true},
		{name: "allowed targets", allowed: []string{"10.0.0.0/8", "hooks.internal"}, perRoom: true},
		{name: "bad allow private", allowPrivate: "sometimes", errVar: "ROOMHOOK_ALLOW_PRIVATE_TARGETS"},
		{name: "bad target", allowed: []string{"http://x"}, errVar: "ROOMHOOK_ALLOWED_TARGETS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newEgressGuard(tt.allowed, tt.allowPrivate, tt.guardGlobal, tt.embedded)
			if tt.errVar != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errVar) {
					t.Fatalf("err %v, want one naming %s", err, tt.errVar)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Applies(false) != tt.perRoom || g.Applies(true) != tt.global {
				t.Errorf("guards per-room %v global %v, want %v %v", g.Applies(false), g.Applies(true), tt.perRoom, tt.global)
			}
			if describeGuard(g, tt.allowed) == "" {
				t.Error("no description")
			}
		})
	}
}

// Validate, which LoadConfig runs at start, refuses what these checks refuse and names the
// variable.
func TestValidateSecuritySettings(t *testing.T) {
	tests := []struct {
		name     string
		change   func(*Config)
		variable string
	}{
		{"content type with CRLF", func(c *Config) { c.ContentType = "application/json\r\nX-Evil: 1" }, "ROOMHOOK_CONTENT_TYPE"},
		{"bad allowed target", func(c *Config) { c.AllowedTargets = []string{"10.0.0.0/99"} }, "ROOMHOOK_ALLOWED_TARGETS"},
		{"bad allow private", func(c *Config) { c.AllowPrivateTargets = "maybe" }, "ROOMHOOK_ALLOW_PRIVATE_TARGETS"},
		{"no room URLs", func(c *Config) { c.MaxRoomURLs = 0 }, "ROOMHOOK_MAX_ROOM_URLS"},
		{"no room endpoints", func(c *Config) { c.MaxRoomEndpoints = 0 }, "ROOMHOOK_MAX_ROOM_ENDPOINTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DefaultConfig()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("defaults: %v", err)
			}
			tt.change(&c)
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.variable)
			}
			if strings.Contains(err.Error(), "X-Evil") {
				t.Errorf("error %q repeats the value", err)
			}
		})
	}
	c, _ := DefaultConfig()
	if c.MaxRoomURLs != 5 || c.MaxRoomEndpoints != 50000 || c.GuardGlobal || c.AllowPrivateTargets != "" {
		t.Errorf("defaults %d %d %v %q", c.MaxRoomURLs, c.MaxRoomEndpoints, c.GuardGlobal, c.AllowPrivateTargets)
	}
	g, err := c.EgressGuard()
	if err != nil || g.Enabled() {
		t.Errorf("embedded default guard enabled=%v (%v), want off", g.Enabled(), err)
	}
	c.NATSURL = "nats://nats:4222"
	if g, err := c.EgressGuard(); err != nil || !g.Applies(false) || g.Applies(true) {
		t.Errorf("production default guard: %v", err)
	}
}
