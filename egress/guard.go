package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
)

// ErrForbidden marks a connection the guard refused; the error is a *ForbiddenError.
var ErrForbidden = errors.New("target address not allowed")

// ErrInvalidTarget marks an entry of Config.AllowedTargets that is neither a CIDR, an IP
// address nor a host name.
var ErrInvalidTarget = errors.New("invalid allowed target")

// ForbiddenError is a refused connection: the address it would have reached and why.
type ForbiddenError struct {
	Address netip.AddrPort // the resolved address that was to be dialled
	Kind    string         // KindLoopback, KindPrivate, …
	Range   netip.Prefix   // the forbidden block the address (or the IPv4 address it embeds) is in
}

// Error names the address and its range; it holds no URL, so it is safe for dead letters and
// logs.
func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("refused %s: %s address (%s)", e.Address, e.Kind, e.Range)
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// Config is what the guard allows.
type Config struct {
	// AllowedTargets lets chosen internal receivers through: CIDRs ("10.1.0.0/16"), single
	// addresses ("10.1.2.3", "fd00::5") and host names ("hooks.internal"; "*.svc.cluster.local"
	// also matches every name below it). A host name is matched against the URL's host, before
	// resolution, so whatever it resolves to is allowed: list only names you control.
	AllowedTargets []string
	// AllowPrivate turns the guard off: every address may be reached.
	AllowPrivate bool
	// GuardGlobal applies the guard to global endpoints (from configuration) too, not only to
	// those registered per room.
	GuardGlobal bool
}

// Guard decides which addresses webhook connections may reach. It is immutable and safe for
// concurrent use. A nil *Guard guards nothing.
type Guard struct {
	prefixes    []netip.Prefix
	hosts       []string // exact lower-case host names
	domains     []string // ".example.com" for "*.example.com"
	off         bool
	guardGlobal bool
}

// New checks cfg and returns its guard. The error names the first bad entry of
// cfg.AllowedTargets and wraps ErrInvalidTarget.
func New(cfg Config) (*Guard, error) {
	g := &Guard{off: cfg.AllowPrivate, guardGlobal: cfg.GuardGlobal}
	for _, raw := range cfg.AllowedTargets {
		t := strings.ToLower(strings.TrimSpace(raw))
		if t == "" {
			continue
		}
		if p, err := netip.ParsePrefix(t); err == nil {
			g.prefixes = append(g.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(t); err == nil {
			g.prefixes = append(g.prefixes, netip.PrefixFrom(ip.WithZone(""), ip.BitLen()))
			continue
		}
		name, wildcard := strings.CutPrefix(t, "*.")
		name = strings.TrimSuffix(name, ".")
		if !validHostName(name) {
			return nil, fmt.Errorf("%w %q: want a CIDR, an IP address or a host name", ErrInvalidTarget, raw)
		}
		if wildcard {
			g.domains = append(g.domains, "."+name)
		} else {
			g.hosts = append(g.hosts, name)
		}
	}
	return g, nil
}

// validHostName accepts DNS names of letters, digits, '-' and '_' in dot-separated labels.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 || strings.Contains(name, "/") || strings.Contains(name, ":") {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Enabled reports whether the guard refuses anything at all.
func (g *Guard) Enabled() bool { return g != nil && !g.off }

// Applies reports whether connections to an endpoint are guarded: per-room endpoints always
// (while the guard is enabled), global ones only with Config.GuardGlobal.
func (g *Guard) Applies(global bool) bool {
	return g.Enabled() && (!global || g.guardGlobal)
}

// AllowsHost reports whether host (a URL's host name, without port) is one of the allowed
// host names, so that any address it resolves to may be reached.
func (g *Guard) AllowsHost(host string) bool {
	if !g.Enabled() {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if slices.Contains(g.hosts, host) {
		return true
	}
	for _, d := range g.domains {
		if strings.HasSuffix(host, d) {
			return true
		}
	}
	return false
}

// Check returns a *ForbiddenError when addr may not be reached, else nil.
func (g *Guard) Check(addr netip.AddrPort) error {
	if !g.Enabled() {
		return nil
	}
	ip := addr.Addr().WithZone("")
	for _, p := range g.prefixes {
		if p.Contains(ip) || (ip.Is4In6() && p.Contains(ip.Unmap())) {
			return nil
		}
	}
	r, forbidden := classify(ip)
	if !forbidden {
		return nil
	}
	return &ForbiddenError{Address: addr, Kind: r.kind, Range: r.prefix}
}

// control is the net.Dialer Control hook: address is the resolved "ip:port" about to be
// connected, so the check sees exactly what is dialled.
func (g *Guard) control(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Not an IP address: nothing the guard can vouch for.
		return fmt.Errorf("%w: cannot read dialled address %q: %w", ErrForbidden, address, err)
	}
	return g.Check(ap)
}

// DialContext returns a dial function for an http.Transport that dials like base (its
// timeouts, keep-alive, resolver) but refuses forbidden addresses just before connecting:
// the guard's check runs in the Control hook, before base's own Control. Hosts in
// AllowedTargets by name are dialled without the check. The refusal is a *ForbiddenError
// wrapped in the dialer's *net.OpError. base is copied and may be nil.
func (g *Guard) DialContext(base *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	var plain net.Dialer
	if base != nil {
		plain = *base
	}
	guarded := plain
	next := plain.Control
	nextCtx := plain.ControlContext
	guarded.Control = nil
	guarded.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := g.control(address); err != nil {
			return err
		}
		switch {
		case nextCtx != nil:
			return nextCtx(ctx, network, address, c)
		case next != nil:
			return next(network, address, c)
		}
		return nil
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err == nil && g.AllowsHost(host) {
			return plain.DialContext(ctx, network, address)
		}
		return guarded.DialContext(ctx, network, address)
	}
}
