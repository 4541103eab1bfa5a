package egress_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/roomhook/roomhook/egress"
)

func TestGuardCheckRanges(t *testing.T) {
	tests := []struct {
		addr string
		kind string // "" when the address may be reached
	}{
		{"127.0.0.1", egress.KindLoopback},
		{"127.255.255.254", egress.KindLoopback},
		{"::1", egress.KindLoopback},
		{"0.0.0.0", egress.KindUnspecified},
		{"0.1.2.3", egress.KindUnspecified},
		{"::", egress.KindUnspecified},
		{"10.0.0.1", egress.KindPrivate},
		{"172.16.0.1", egress.KindPrivate},
		{"172.31.255.255", egress.KindPrivate},
		{"192.168.1.1", egress.KindPrivate},
		{"100.64.0.1", egress.KindCGNAT},
		{"100.127.255.255", egress.KindCGNAT},
		{"169.254.169.254", egress.KindLinkLocal},
		{"fe80::1", egress.KindLinkLocal},
		{"fe80::1%eth0", egress.KindLinkLocal},
		{"fc00::1", egress.KindUniqueLocal},
		{"fd12:3456::1", egress.KindUniqueLocal},
		{"fec0::1", egress.KindUniqueLocal},
		{"224.0.0.1", egress.KindMulticast},
		{"239.255.255.250", egress.KindMulticast},
		{"ff02::1", egress.KindMulticast},
		{"255.255.255.255", egress.KindBroadcast},
		{"240.0.0.1", egress.KindReserved},
		// IPv6 forms that embed an IPv4 address are judged by it.
		{"::ffff:127.0.0.1", egress.KindLoopback},
		{"::ffff:10.1.2.3", egress.KindPrivate},
		{"::ffff:169.254.169.254", egress.KindLinkLocal},
		{"::ffff:0.0.0.0", egress.KindUnspecified},
		{"::ffff:0:127.0.0.1", egress.KindLoopback},
		{"64:ff9b::127.0.0.1", egress.KindLoopback},
		{"64:ff9b::10.0.0.1", egress.KindPrivate},
		{"64:ff9b::192.168.0.1", egress.KindPrivate},
		{"64:ff9b:1::1", egress.KindPrivate},
		{"::127.0.0.1", egress.KindLoopback},
		{"2002:7f00:1::1", egress.KindLoopback},
		{"2002:a00:1::1", egress.KindPrivate},
		// Global addresses pass, in every form.
		{"93.184.215.14", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"192.169.0.1", ""},
		{"2606:4700::1111", ""},
		{"::ffff:93.184.215.14", ""},
		{"64:ff9b::93.184.215.14", ""},
		{"2002:5db8:d70e::1", ""},
	}
	g, err := egress.New(egress.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ap := netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 443)
			err := g.Check(ap)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", ap, err)
				}
				return
			}
			var fe *egress.ForbiddenError
			if !errors.Is(err, egress.ErrForbidden) || !errors.As(err, &fe) {
				t.Fatalf("Check(%s) = %v, want a ForbiddenError", ap, err)
			}
			if fe.Kind != tt.kind || fe.Address != ap {
				t.Errorf("Check(%s): kind %q address %s, want %q %s", ap, fe.Kind, fe.Address, tt.kind, ap)
			}
		})
	}
}

func TestGuardAllowedTargets(t *testing.T) {
	g, err := egress.New(egress.Config{AllowedTargets: []string{
		" 10.1.0.0/16 ", "192.168.7.7", "fd00::5", "Hooks.Internal", "*.svc.cluster.local", "",
	}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := []struct {
		addr    string
		allowed bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"10.2.0.1", false},
		{"192.168.7.7", true},
		{"192.168.7.8", false},
		{"fd00::5", true},
		{"fd00::6", false},
		{"127.0.0.1", false},
	}
	for _, a := range addrs {
		err := g.Check(netip.AddrPortFrom(netip.MustParseAddr(a.addr), 80))
		if (err == nil) != a.allowed {
			t.Errorf("Check(%s) = %v, want allowed %v", a.addr, err, a.allowed)
		}
	}
	hosts := []struct {
		host    string
		allowed bool
	}{
		{"hooks.internal", true},
		{"HOOKS.internal.", true},
		{"evil.hooks.internal", false},
		{"api.team.svc.cluster.local", true},
		{"svc.cluster.local", false},
		{"localhost", false},
	}
	for _, h := range hosts {
		if got := g.AllowsHost(h.host); got != h.allowed {
			t.Errorf("AllowsHost(%q) = %v, want %v", h.host, got, h.allowed)
		}
	}
}

func TestGuardInvalidTargets(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "http://hooks.internal", "hooks internal", "-bad.example", "*.", "a..b", "[::1]"} {
		t.Run(bad, func(t *testing.T) {
			if _, err := egress.New(egress.Config{AllowedTargets: []string{bad}}); !errors.Is(err, egress.ErrInvalidTarget) {
				t.Errorf("New(%q) = %v, want ErrInvalidTarget", bad, err)
			}
		})
	}
}

func TestGuardApplies(t *testing.T) {
	tests := []struct {
		name              string
		cfg               egress.Config
		perRoom, global   bool
		refusesLoopbackIP bool
	}{
		{"default", egress.Config{}, true, false, true},
		{"guard global", egress.Config{GuardGlobal: true}, true, true, true},
		{"allow private turns it off", egress.Config{AllowPrivate: true, GuardGlobal: true}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := egress.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if g.Applies(false) != tt.perRoom || g.Applies(true) != tt.global {
				t.Errorf("Applies(per room) = %v, Applies(global) = %v; want %v, %v", g.Applies(false), g.Applies(true), tt.perRoom, tt.global)
			}
			refused := g.Check(netip.MustParseAddrPort("127.0.0.1:80")) != nil
			if refused != tt.refusesLoopbackIP {
				t.Errorf("loopback refused = %v, want %v", refused, tt.refusesLoopbackIP)
			}
		})
	}
	var none *egress.Guard
	if none.Enabled() || none.Applies(false) || none.Check(netip.MustParseAddrPort("127.0.0.1:80")) != nil {
		t.Error("a nil Guard must guard nothing")
	}
}
