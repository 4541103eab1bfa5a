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
