package natstest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// lowestPortTried is where FreePorts starts looking: above the ports that services on a
// developer's machine usually hold.
const lowestPortTried = 10000

// FreePort returns a loopback TCP port that was free a moment ago; see FreePorts.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct loopback TCP ports that were free a moment ago, for servers
// that must come back on the same port after a restart.
//
// The ports lie below the kernel's ephemeral range. A port the kernel handed out for ":0"
// lies inside it, where every outgoing connection of every test process running beside this
// one takes its local port, in the moment between the pick and the server's start or while a
// killed node is down (a cluster node in CI once never started on such a port). All n ports
// are held open together while picking, so a cluster's client and route ports never repeat.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	low, high := portsBelowEphemeral()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("no free loopback port in %d–%d after %d tries", low, high, tries)
		}
		addr := "127.0.0.1:0"
		if high > low {
			addr = "127.0.0.1:" + strconv.Itoa(low+rand.IntN(high-low))
		}
		ln, err := net.Listen("tcp", addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// portsBelowEphemeral is the range [low, high) between lowestPortTried and the start of the
// kernel's ephemeral range; low == high when there is none (not Linux, or a range that starts
// too low), and FreePorts then lets the kernel choose.
func portsBelowEphemeral() (low, high int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var first, last int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &first, &last); err != nil || first <= lowestPortTried+100 {
		return 0, 0
	}
	return lowestPortTried, first
}

// portsHeld says which of ports something else listens on, for the message of a server that
// did not start: the server was told not to log, so its own "error listening" is lost.
func portsHeld(ports ...int) string {
	var held []string
	for _, p := range ports {
		if p <= 0 { // the kernel chose it
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			held = append(held, fmt.Sprintf("port %d: %v", p, err))
			continue
		}
		ln.Close()
	}
	if len(held) == 0 {
		return "its ports are free, so it is slow to start, not refused"
	}
	return strings.Join(held, "; ")
}
