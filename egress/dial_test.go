package egress_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/roomhook/roomhook/egress"
)

// countingListener counts the connections a loopback receiver accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func listenLoopback(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	accepting := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-accepting
	})
	go func() {
		defer close(accepting)
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return cl
}

// The loopback refusal is proven against a real receiver: the guard must refuse before the
// connection is made, so the receiver accepts nothing; allowed, the same dial connects.
func TestDialRefusesLoopbackForReal(t *testing.T) {
	ln := listenLoopback(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tests := []struct {
		name    string
		cfg     egress.Config
		address string
		refused bool
	}{
		{"ip", egress.Config{}, "127.0.0.1:" + port, true},
		{"localhost by name", egress.Config{}, "localhost:" + port, true},
		{"mapped form", egress.Config{}, "[::ffff:127.0.0.1]:" + port, true},
		{"allowed cidr", egress.Config{AllowedTargets: []string{"127.0.0.0/8"}}, "127.0.0.1:" + port, false},
		{"allowed host name", egress.Config{AllowedTargets: []string{"localhost"}}, "localhost:" + port, false},
		{"guard off", egress.Config{AllowPrivate: true}, "127.0.0.1:" + port, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := egress.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := ln.accepted.Load()
			conn, err := g.DialContext(nil)(context.Background(), "tcp4", tt.address)
			if tt.refused {
				var fe *egress.ForbiddenError
				if !errors.As(err, &fe) || fe.Kind != egress.KindLoopback {
					t.Fatalf("dial %s = %v, want a loopback ForbiddenError", tt.address, err)
				}
				// A barrier: an allowed connection to the same receiver, accepted after any
				// connection the refused dial might have made.
				allowed, _ := egress.New(egress.Config{AllowPrivate: true})
				barrier, err := allowed.DialContext(nil)(context.Background(), "tcp4", "127.0.0.1:"+port)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(barrier) // the receiver closes once it has accepted
				barrier.Close()
				if n := ln.accepted.Load() - before; n != 1 {
					t.Errorf("receiver accepted %d connections, want only the barrier's", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial %s: %v", tt.address, err)
			}
			io.ReadAll(conn)
			conn.Close()
			if n := ln.accepted.Load() - before; n != 1 {
				t.Errorf("receiver accepted %d connections, want 1", n)
			}
		})
	}
}

// stubNet resolves every name to the addresses it is given and, as the base dialer's last
// Control, records every address a connection would be made to and fails the dial there. So
// no test connection ever leaves the machine, even with a broken guard, and an empty record
// proves the guard refused before any connection was attempted.
type stubNet struct {
	mu        sync.Mutex
	answers   [][]netip.Addr // one set per lookup; the last repeats
	lookups   int
	attempted []string
	serving   sync.WaitGroup // the in-process DNS answers
}

// newStubNet returns a stub whose DNS answers are waited for when the test ends.
func newStubNet(t *testing.T, answers ...[]netip.Addr) *stubNet {
	s := &stubNet{answers: answers}
	t.Cleanup(s.serving.Wait)
	return s
}

var errStubNoConnect = errors.New("stub: connection not made")

func (s *stubNet) dialer() *net.Dialer {
	return &net.Dialer{
		Resolver: &net.Resolver{PreferGo: true, Dial: s.dialDNS},
		Control: func(network, address string, _ syscall.RawConn) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.attempted = append(s.attempted, address)
			return errStubNoConnect
		},
	}
}

func (s *stubNet) next() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.lookups, len(s.answers)-1)
	s.lookups++
	return s.answers[i]
}

func (s *stubNet) attempts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.attempted...)
}

// dialDNS answers the resolver in process over a pipe, the stream (TCP) DNS framing.
func (s *stubNet) dialDNS(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		defer server.Close()
		var size [2]byte
		if _, err := io.ReadFull(server, size[:]); err != nil {
			return
		}
		query := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(server, query); err != nil {
			return
		}
		resp := s.answer(query)
		binary.BigEndian.PutUint16(size[:], uint16(len(resp)))
		server.Write(append(size[:], resp...))
	}()
	return client, nil
}

// answer builds the response to a one-question query: A or AAAA records of the next answer
// set, whichever the question asks for.
func (s *stubNet) answer(query []byte) []byte {
	end := 12
	for end < len(query) && query[end] != 0 {
		end += int(query[end]) + 1
	}
	end++ // the root label
	qtype := binary.BigEndian.Uint16(query[end:])
	end += 4
	var records []netip.Addr
	for _, a := range s.next() {
		if (qtype == 1 && a.Is4()) || (qtype == 28 && a.Is6()) {
			records = append(records, a)
		}
	}
	resp := append([]byte(nil), query[:end]...)
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // a response, recursion desired and available
	binary.BigEndian.PutUint16(resp[6:], uint16(len(records)))
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0) // no EDNS record
	for _, a := range records {
		raw := a.AsSlice()
		resp = binary.BigEndian.AppendUint16(resp, 0xC00C) // the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(raw)))
		resp = append(resp, raw...)
	}
	return resp
}

func addrs(list ...string) []netip.Addr {
	out := make([]netip.Addr, len(list))
	for i, a := range list {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestDialRefusesNonGlobalRangesWithoutConnecting(t *testing.T) {
	tests := []struct {
		name    string
		address string // the URL's host and port
		resolve []netip.Addr
		kind    string
	}{
		{"private ip literal", "10.0.0.1:80", nil, egress.KindPrivate},
		{"cgnat ip literal", "100.64.1.1:443", nil, egress.KindCGNAT},
		{"metadata service", "169.254.169.254:80", nil, egress.KindLinkLocal},
		{"unique-local literal", "[fd00::1]:443", nil, egress.KindUniqueLocal},
		{"link-local v6 literal", "[fe80::1]:443", nil, egress.KindLinkLocal},
		{"multicast", "224.0.0.251:80", nil, egress.KindMulticast},
		{"broadcast", "255.255.255.255:80", nil, egress.KindBroadcast},
		{"unspecified", "0.0.0.0:80", nil, egress.KindUnspecified},
		{"nat64 of a private address", "[64:ff9b::a00:1]:80", nil, egress.KindPrivate},
		{"name resolving to private", "hooks.tenant.test:443", addrs("192.168.10.20"), egress.KindPrivate},
		{"name resolving to mapped private", "hooks.tenant.test:443", addrs("::ffff:172.16.5.5"), egress.KindPrivate},
		{"name resolving to every forbidden kind", "hooks.tenant.test:443", addrs("10.9.9.9", "fd00::9"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newStubNet(t, tt.resolve)
			g, err := egress.New(egress.Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.DialContext(stub.dialer())(context.Background(), "tcp", tt.address)
			var fe *egress.ForbiddenError
			if !errors.As(err, &fe) {
				t.Fatalf("dial %s = %v, want a ForbiddenError", tt.address, err)
			}
			if tt.kind != "" && fe.Kind != tt.kind {
				t.Errorf("kind %q, want %q", fe.Kind, tt.kind)
			}
			if got := stub.attempts(); len(got) != 0 {
				t.Errorf("connections attempted to %v", got)
			}
		})
	}
}

// A name that resolves to a global address once and to an internal one the next time is
// caught on the dial that would reach the internal one. The first, allowed, dial is stopped
// by the stub at the point of connecting, which also shows that the stub sees what the guard
// lets through.
func TestDialCatchesRebinding(t *testing.T) {
	stub := newStubNet(t, addrs("203.0.113.7"), addrs("203.0.113.7"), addrs("10.0.0.5"))
	g, _ := egress.New(egress.Config{})
	dial := g.DialContext(stub.dialer())
	// tcp4 makes one lookup per dial.
	if _, err := dial(context.Background(), "tcp4", "rebind.test:443"); !errors.Is(err, errStubNoConnect) {
		t.Fatalf("first dial = %v, want it to reach the stub's connect", err)
	}
	if got := stub.attempts(); len(got) != 1 || got[0] != "203.0.113.7:443" {
		t.Fatalf("attempts %v, want [203.0.113.7:443]", got)
	}
	stub.answers = stub.answers[2:]
	_, err := dial(context.Background(), "tcp4", "rebind.test:443")
	var fe *egress.ForbiddenError
	if !errors.As(err, &fe) || fe.Address != netip.MustParseAddrPort("10.0.0.5:443") {
		t.Fatalf("second dial = %v, want 10.0.0.5:443 refused", err)
	}
	if got := stub.attempts(); len(got) != 1 {
		t.Errorf("attempts %v after the refusal, want only the first", got)
	}
}

func TestDialAllowedTargetsPassToConnect(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		address string
		resolve []netip.Addr
	}{
		{"cidr", []string{"10.0.0.0/8"}, "10.1.2.3:80", nil},
		{"host name, whatever it resolves to", []string{"hooks.internal"}, "hooks.internal:80", addrs("192.168.1.1")},
		{"wildcard", []string{"*.svc.cluster.local"}, "recv.ns.svc.cluster.local:80", addrs("10.96.0.10")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newStubNet(t, tt.resolve)
			g, err := egress.New(egress.Config{AllowedTargets: tt.allowed})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.DialContext(stub.dialer())(context.Background(), "tcp4", tt.address)
			if !errors.Is(err, errStubNoConnect) || errors.Is(err, egress.ErrForbidden) {
				t.Fatalf("dial %s = %v, want it allowed as far as connecting", tt.address, err)
			}
			if len(stub.attempts()) != 1 {
				t.Errorf("attempts %v, want one", stub.attempts())
			}
		})
	}
}
