package egress

import (
	"net/netip"
)

// forbiddenRange is a block of addresses webhooks must not reach unless allowed, and the word
// that names its kind in errors and dead letters.
type forbiddenRange struct {
	prefix netip.Prefix
	kind   string
}

// Kinds of forbidden addresses, as ForbiddenError.Kind reports them.
const (
	KindUnspecified = "unspecified"
	KindLoopback    = "loopback"
	KindPrivate     = "private"
	KindCGNAT       = "cgnat"
	KindLinkLocal   = "link-local"
	KindUniqueLocal = "unique-local"
	KindMulticast   = "multicast"
	KindBroadcast   = "broadcast"
	KindReserved    = "reserved"
)

// v4Ranges are the IPv4 blocks that are not globally reachable receivers. The list is the
// issue's (RFC 1918, CGNAT, link-local, loopback, unspecified, multicast, broadcast) plus
// 240.0.0.0/4, which no host may use either.
var v4Ranges = [...]forbiddenRange{
	{netip.MustParsePrefix("0.0.0.0/8"), KindUnspecified}, // "this network"; 0.0.0.0 reaches the local host
	{netip.MustParsePrefix("127.0.0.0/8"), KindLoopback},
	{netip.MustParsePrefix("10.0.0.0/8"), KindPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), KindPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), KindPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), KindCGNAT},
	{netip.MustParsePrefix("169.254.0.0/16"), KindLinkLocal}, // cloud metadata services live here
	{netip.MustParsePrefix("224.0.0.0/4"), KindMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), KindBroadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), KindReserved},
}

// v6Ranges are the IPv6 blocks that are not globally reachable receivers. Forms that embed an
// IPv4 address are not here: they are judged by the address they embed (see embeddedV4).
var v6Ranges = [...]forbiddenRange{
	{netip.MustParsePrefix("::/128"), KindUnspecified},
	{netip.MustParsePrefix("::1/128"), KindLoopback},
	{netip.MustParsePrefix("fe80::/10"), KindLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), KindUniqueLocal}, // deprecated site-local, still routed inside sites
	{netip.MustParsePrefix("fc00::/7"), KindUniqueLocal},
	{netip.MustParsePrefix("ff00::/8"), KindMulticast},
	{netip.MustParsePrefix("64:ff9b:1::/48"), KindPrivate}, // local-use NAT64 (RFC 8215)
}

// Prefixes of IPv6 forms that carry an IPv4 address in their last 32 bits; a connection to
// one reaches (or is translated to) that IPv4 address, so the IPv4 address decides.
var embeddingV4 = [...]netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0/96"),   // IPv4-mapped
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT, RFC 2765)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix (RFC 6052)
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
}

// sixToFour is 2002::/16, whose bits 16..47 are an IPv4 address (RFC 3056).
var sixToFour = netip.MustParsePrefix("2002::/16")

// embeddedV4 returns the IPv4 address an IPv6 address stands for, if it is one of the forms
// that embed one.
func embeddedV4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	for _, p := range embeddingV4 {
		if p.Contains(ip) {
			return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
		}
	}
	if sixToFour.Contains(ip) {
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// classify returns the forbidden range ip falls in, judged by the IPv4 address it embeds when
// it has one, and false for an address that may be reached.
func classify(ip netip.Addr) (forbiddenRange, bool) {
	ip = ip.WithZone("")
	if ip.Is6() {
		if v4, ok := embeddedV4(ip); ok {
			// ::/96 holds :: and ::1 themselves; they are IPv6's own, not 0.0.0.0 and 0.0.0.1.
			if ip.IsUnspecified() {
				return v6Ranges[0], true
			}
			if ip.IsLoopback() {
				return v6Ranges[1], true
			}
			return classifyV4(v4)
		}
		for _, r := range v6Ranges {
			if r.prefix.Contains(ip) {
				return r, true
			}
		}
		return forbiddenRange{}, false
	}
	return classifyV4(ip)
}

func classifyV4(ip netip.Addr) (forbiddenRange, bool) {
	for _, r := range v4Ranges {
		if r.prefix.Contains(ip) {
			return r, true
		}
	}
	return forbiddenRange{}, false
}
