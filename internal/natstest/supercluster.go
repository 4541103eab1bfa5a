package natstest

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterSpec names one cluster of a super-cluster and how many nodes it has.
type ClusterSpec struct {
	Name  string
	Nodes int
}

// Super-cluster layouts. JetStream's meta group (where streams, consumers and their placement
// are decided) spans every node of every cluster, so it needs a majority of all nodes. Two
// equal regions lose it with either region: eu:3 + us:3 is 6 peers, and the 3 left are not a
// majority. A small third cluster breaks the tie: with eu:3, us:3 and tie:1 the 4 nodes left
// after losing a region are a majority of 7, so the region left keeps creating consumers,
// listing keys and electing leaders. A region's streams are R3 groups inside its own cluster
// and do not need the other region at all.
var (
	// RegionsWithTieBreaker is the layout docs/deploying.md recommends: two regions of three
	// nodes and a one-node tie-breaker cluster that holds no streams.
	RegionsWithTieBreaker = []ClusterSpec{{"eu", 3}, {"us", 3}, {"tie", 1}}
	// LightRegionsWithTieBreaker is the same shape with one node per cluster (R1 streams),
	// for tests that must stay light: losing a region still leaves 2 of 3 meta peers.
	LightRegionsWithTieBreaker = []ClusterSpec{{"eu", 1}, {"us", 1}, {"tie", 1}}
	// EqualRegions is the layout that loses the meta quorum with either region.
	EqualRegions = []ClusterSpec{{"eu", 3}, {"us", 3}}
)

// SuperCluster is an in-process NATS super-cluster: clusters of embedded JetStream servers
// joined by routes, and the clusters joined by gateways, all on loopback. Every node has its
// own store under t.TempDir() and fixed client, route and gateway ports (picked free at
// start), so that a cluster stopped and started again comes back where its clients and peers
// find it, with what it stored. JetStream runs with the server's default limits.
type SuperCluster struct {
	t     testing.TB
	specs []ClusterSpec

	mu    sync.Mutex
	nodes map[string][]*superNode // by cluster name, in spec order
}

type superNode struct {
	opts *server.Options // cloned for every start
	srv  *server.Server  // nil while down
}

// NewSuperCluster starts every cluster of layout, joined by gateways, waits until JetStream has
// a meta leader with every node current, and shuts every node down when the test ends. opts
// apply to every node before the super-cluster's own settings (ports, store, names, routes,
// gateways), which they cannot change.
func NewSuperCluster(t testing.TB, layout []ClusterSpec, opts ...Option) *SuperCluster {
	t.Helper()
	sc := &SuperCluster{t: t, specs: layout, nodes: map[string][]*superNode{}}
	type ports struct{ client, route, gateway []int }
	pp := map[string]ports{}
	total := 0
	for _, spec := range layout {
		total += 3 * spec.Nodes
	}
	free := FreePorts(t, total) // distinct across the whole super-cluster
	for _, spec := range layout {
		if spec.Nodes < 1 || spec.Name == "" || pp[spec.Name].client != nil {
			t.Fatalf("super-cluster: bad or repeated cluster %+v", spec)
		}
		var p ports
		for i := 0; i < spec.Nodes; i++ {
			p.client = append(p.client, free[0])
			p.route = append(p.route, free[1])
			p.gateway = append(p.gateway, free[2])
			free = free[3:]
		}
		pp[spec.Name] = p
	}
	for _, spec := range layout {
		p := pp[spec.Name]
		routes := make([]string, spec.Nodes)
		for i, port := range p.route {
			routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(port)
		}
		// Every gateway URL of every other cluster: a node counts them to know how many
		// meta peers to expect before it elects, as nats-server's own super-cluster tests do.
		var gateways []*server.RemoteGatewayOpts
		for _, other := range layout {
			if other.Name == spec.Name {
				continue
			}
			gw := &server.RemoteGatewayOpts{Name: other.Name}
			for _, port := range pp[other.Name].gateway {
				gw.URLs = append(gw.URLs, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(port)})
			}
			gateways = append(gateways, gw)
		}
		for i := 0; i < spec.Nodes; i++ {
			o := &server.Options{NoLog: true, NoSigs: true}
			for _, opt := range opts {
				opt(o)
			}
			o.Host = "127.0.0.1"
			o.Port = p.client[i]
			o.ServerName = fmt.Sprintf("%s-n%d", spec.Name, i)
			o.JetStream = true
			o.StoreDir = t.TempDir()
			o.Cluster.Name = spec.Name
			o.Cluster.Host = "127.0.0.1"
			o.Cluster.Port = p.route[i]
			// Every node lists every route of its cluster, itself included (a node ignores
			// the route to itself; a one-node cluster needs one for JetStream to cluster).
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
			o.Gateway.Name = spec.Name
			o.Gateway.Host = "127.0.0.1"
			o.Gateway.Port = p.gateway[i]
			o.Gateway.Gateways = gateways
			sc.nodes[spec.Name] = append(sc.nodes[spec.Name], &superNode{opts: o})
		}
	}
	t.Cleanup(sc.shutdown)
	// Start every node before waiting for any, so that routes and gateways form at once.
	for _, spec := range layout {
		for i := range sc.nodes[spec.Name] {
			sc.start(spec.Name, i)
		}
	}
	for _, spec := range layout {
		sc.waitForClients(spec.Name)
	}
	sc.WaitJetStreamReady(t)
	return sc
}

func (sc *SuperCluster) start(cluster string, i int) {
	sc.t.Helper()
	n := sc.nodes[cluster][i]
	ns, err := server.NewServer(n.opts.Clone())
	if err != nil {
		sc.t.Fatalf("super-cluster node %s: %v", n.opts.ServerName, err)
	}
	go ns.Start()
	sc.mu.Lock()
	n.srv = ns
	sc.mu.Unlock()
}

func (sc *SuperCluster) waitForClients(cluster string) {
	sc.t.Helper()
	for i, n := range sc.nodes[cluster] {
		if ns := sc.Server(cluster, i); ns == nil || !ns.ReadyForConnections(30*time.Second) {
			sc.t.Fatalf("super-cluster node %s did not start on port %d: %s", n.opts.ServerName, n.opts.Port,
				portsHeld(n.opts.Port, n.opts.Cluster.Port, n.opts.Gateway.Port))
		}
	}
}

func (sc *SuperCluster) shutdown() {
	for _, spec := range sc.specs {
		sc.StopCluster(spec.Name)
	}
}

// Clusters lists the clusters' names, in the layout's order.
func (sc *SuperCluster) Clusters() []string {
	out := make([]string, len(sc.specs))
	for i, s := range sc.specs {
		out[i] = s.Name
	}
	return out
}

// Size is the number of nodes in cluster, running or not.
func (sc *SuperCluster) Size(cluster string) int { return len(sc.nodes[cluster]) }

// Server is node i of cluster, nil while it is down.
func (sc *SuperCluster) Server(cluster string, i int) *server.Server {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.nodes[cluster][i].srv
}

func (sc *SuperCluster) running() []*server.Server {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var out []*server.Server
	for _, spec := range sc.specs {
		for _, n := range sc.nodes[spec.Name] {
			if n.srv != nil && n.srv.Running() {
				out = append(out, n.srv)
			}
		}
	}
	return out
}

// URLs lists the client URLs of cluster's nodes, comma-separated, as nats.Connect takes them;
// the list holds while the cluster is down, since it comes back on the same ports.
func (sc *SuperCluster) URLs(cluster string) string {
	nodes := sc.nodes[cluster]
	if len(nodes) == 0 {
		sc.t.Fatalf("super-cluster has no cluster %q", cluster)
	}
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(n.opts.Port)
	}
	return strings.Join(urls, ",")
}

// StopCluster shuts every node of cluster down, as when a region's data centre is lost, and
// waits until they have let go of their stores. Stopping a stopped cluster does nothing.
func (sc *SuperCluster) StopCluster(cluster string) {
	sc.mu.Lock()
	var stop []*server.Server
	for _, n := range sc.nodes[cluster] {
		if n.srv != nil {
			stop = append(stop, n.srv)
			n.srv = nil
		}
	}
	sc.mu.Unlock()
	for _, ns := range stop {
		ns.Shutdown()
	}
	for _, ns := range stop {
		ns.WaitForShutdown()
	}
}

// RestartCluster starts every node of cluster again on its store and ports (stopping any that
// still run first) and waits until they accept clients; WaitJetStreamReady and
// WaitStreamReady wait for JetStream to catch up.
func (sc *SuperCluster) RestartCluster(cluster string) {
	sc.t.Helper()
	sc.StopCluster(cluster)
	for i := range sc.nodes[cluster] {
		sc.start(cluster, i)
	}
	sc.waitForClients(cluster)
}

// MetaLeader is the server name of the node that leads JetStream's meta group (for example
// "us-n1"), or "" when no running node does.
func (sc *SuperCluster) MetaLeader() string {
	for _, s := range sc.running() {
		if s.JetStreamIsLeader() {
			return s.Name()
		}
	}
	return ""
}

// JetStreamReady reports whether a running node leads the meta group, sees every running node
// as a JetStream peer, and every running node is current with the meta group. With a cluster
// stopped, it holds once the nodes left have a quorum and a leader.
func (sc *SuperCluster) JetStreamReady() bool {
	return jetStreamReady(sc.running())
}

// superReadyTimeout bounds the waits: a super-cluster's meta group forms over gateways, and
// with the server's default raft timings an election takes up to about 9 s and may be held
// again.
const superReadyTimeout = 60 * time.Second

// WaitJetStreamReady waits until JetStreamReady holds.
func (sc *SuperCluster) WaitJetStreamReady(t testing.TB) {
	t.Helper()
	WaitFor(t, superReadyTimeout, "the super-cluster to have a meta leader and every running node current", sc.JetStreamReady)
}

// StreamInfo asks for stream's info (global account) through cluster's nodes, within 2 s.
func (sc *SuperCluster) StreamInfo(cluster, stream string) (*jetstream.StreamInfo, error) {
	nc, err := nats.Connect(sc.URLs(cluster), nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

// StreamReady reports whether stream (global account) is placed in cluster, has a leader
// there, and every replica is current, asked through cluster's own nodes.
func (sc *SuperCluster) StreamReady(cluster, stream string) bool {
	si, err := sc.StreamInfo(cluster, stream)
	if err != nil || si.Cluster == nil || si.Cluster.Name != cluster || si.Cluster.Leader == "" {
		return false
	}
	for _, p := range si.Cluster.Replicas {
		if !p.Current || p.Offline {
			return false
		}
	}
	return true
}

// WaitStreamReady waits until StreamReady holds in cluster for every stream named.
func (sc *SuperCluster) WaitStreamReady(t testing.TB, cluster string, streams ...string) {
	t.Helper()
	WaitFor(t, superReadyTimeout, fmt.Sprintf("streams %v to have leaders in cluster %s with every replica current", streams, cluster), func() bool {
		for _, st := range streams {
			if !sc.StreamReady(cluster, st) {
				return false
			}
		}
		return true
	})
}
