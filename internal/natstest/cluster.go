package natstest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterSize is how many nodes NewCluster starts: the smallest cluster that keeps a quorum
// for R3 streams when one node is down.
const ClusterSize = 3

// GlobalAccount is the account clients without credentials use; pass it (or "") to
// StreamLeader and WaitStreamReady.
const GlobalAccount = server.DEFAULT_GLOBAL_ACCOUNT

// Cluster is an in-process JetStream cluster of ClusterSize embedded servers joined by routes
// on loopback. Each node has its own store under t.TempDir() and fixed client and route
// ports, so that Kill and Restart bring a node back where its clients and peers find it, with
// what it stored. JetStream runs with the server's default limits.
//
// Raft timings are the server's defaults (they can only be changed inside package server):
// after a leader dies, its followers elect another in about 4–9 s.
type Cluster struct {
	t    testing.TB
	name string

	mu      sync.Mutex
	opts    []*server.Options // each node's options, cloned for every start
	servers []*server.Server  // nil while a node is down
}

// NewCluster starts a 3-node cluster, waits until it has a JetStream meta leader and every
// node is current, and shuts every node down when the test ends. opts apply to every node
// before the cluster's own settings (ports, store, server and cluster names, routes), which
// they cannot change.
func NewCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: "roomhook-test", servers: make([]*server.Server, ClusterSize)}
	ports := FreePorts(t, 2*ClusterSize)
	clientPorts, clusterPorts := ports[:ClusterSize], ports[ClusterSize:]
	routes := make([]string, ClusterSize)
	for i := range clusterPorts {
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(clusterPorts[i])
	}
	for i := 0; i < ClusterSize; i++ {
		o := &server.Options{NoLog: true, NoSigs: true}
		for _, opt := range opts {
			opt(o)
		}
		o.Host = "127.0.0.1"
		o.Port = clientPorts[i]
		o.ServerName = fmt.Sprintf("n%d", i)
		o.JetStream = true
		o.StoreDir = t.TempDir()
		o.Cluster.Name = c.name
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = clusterPorts[i]
		// Every node lists every route, itself included, as nats-server's own cluster tests
		// do: a node ignores the route to itself, and any two nodes find each other directly.
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.opts = append(c.opts, o)
	}
	t.Cleanup(c.shutdown)
	// Start all nodes before waiting for any, so that routes form at once.
	for i := range c.opts {
		c.start(i)
	}
	for i := range c.opts {
		c.waitForClients(i)
	}
	c.WaitJetStreamReady(t)
	return c
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	ns, err := server.NewServer(c.opts[i].Clone())
	if err != nil {
		c.t.Fatalf("cluster node %d: %v", i, err)
	}
	go ns.Start()
	c.mu.Lock()
	c.servers[i] = ns
	c.mu.Unlock()
}

func (c *Cluster) waitForClients(i int) {
	c.t.Helper()
	if ns := c.Server(i); ns == nil || !ns.ReadyForConnections(30*time.Second) {
		c.t.Fatalf("cluster node %d did not start on port %d (route port %d): %s", i, c.opts[i].Port, c.opts[i].Cluster.Port,
			portsHeld(c.opts[i].Port, c.opts[i].Cluster.Port))
	}
}

func (c *Cluster) shutdown() { c.KillAll() }

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.opts) }

// Server is node i's server, nil while it is down.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

func (c *Cluster) running() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server.Server
	for _, s := range c.servers {
		if s != nil && s.Running() {
			out = append(out, s)
		}
	}
	return out
}

// ClientURLs lists every node's client URL, comma-separated, as nats.Connect takes them; the
// list holds for nodes that are down, which come back on the same ports.
func (c *Cluster) ClientURLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(o.Port)
	}
	return strings.Join(urls, ",")
}

// Kill shuts node i down, as if its process died, and waits until it has let go of its store.
// Killing a node that is down does nothing.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	ns := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart starts node i again on its store and ports, and waits until it accepts clients (not
// until JetStream has caught up: WaitJetStreamReady and WaitStreamReady wait for that). A
// running node is killed first.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	c.start(i)
	c.waitForClients(i)
}

// KillAll kills every node, as a power cut or a rollout gone wrong would.
func (c *Cluster) KillAll() {
	for i := range c.opts {
		c.Kill(i)
	}
}

// RestartAll starts every node again on its store and ports (killing running ones first),
// all before waiting for any so that routes form at once, and waits until each accepts
// clients; WaitJetStreamReady and WaitStreamReady wait for the rest.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	c.KillAll()
	for i := range c.opts {
		c.start(i)
	}
	for i := range c.opts {
		c.waitForClients(i)
	}
}

// MetaLeader is the index of the node that leads JetStream's meta group, or -1.
func (c *Cluster) MetaLeader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.Running() && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader is the index of the node that leads stream in account ("" for the global
// account), or -1 when no running node does.
func (c *Cluster) StreamLeader(account, stream string) int {
	if account == "" {
		account = GlobalAccount
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.Running() && s.JetStreamIsStreamLeader(account, stream) {
			return i
		}
	}
	return -1
}

// StepDown asks stream's leader (global account) to step down, through the JetStream API on
// any running node, and returns the API's error if it refused or gave no answer within 5 s.
// Another node is elected leader afterwards; WaitStreamReady waits for it.
func (c *Cluster) StepDown(stream string) error {
	nc, err := nats.Connect(c.ClientURLs(), nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	msg, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second)
	if err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("step down %s: %s (%d/%d)", stream, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	}
	if !resp.Success {
		return fmt.Errorf("step down %s: not done: %s", stream, msg.Data)
	}
	return nil
}

// clusterReadyTimeout bounds WaitJetStreamReady and WaitStreamReady: with the server's default
// raft timings an election takes up to about 9 s, and one may fail and be held again.
const clusterReadyTimeout = 40 * time.Second

// JetStreamReady reports whether a running node leads the meta group, sees every running node
// as a JetStream peer, and every running node is current with the meta group.
func (c *Cluster) JetStreamReady() bool {
	return jetStreamReady(c.running())
}

// jetStreamReady is JetStreamReady over the running nodes of a cluster or a super-cluster.
func jetStreamReady(run []*server.Server) bool {
	if len(run) == 0 {
		return false
	}
	var leader *server.Server
	for _, s := range run {
		if s.JetStreamIsLeader() {
			leader = s
		}
	}
	if leader == nil || len(leader.JetStreamClusterPeers()) < len(run) {
		return false
	}
	for _, s := range run {
		if !s.JetStreamEnabled() || !s.JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

// WaitJetStreamReady waits until JetStreamReady holds, as nats-server's own cluster tests do
// before they use a cluster.
func (c *Cluster) WaitJetStreamReady(t testing.TB) {
	t.Helper()
	WaitFor(t, clusterReadyTimeout, "the JetStream cluster to have a meta leader and every node current", c.JetStreamReady)
}

// StreamReady reports whether stream (in account, "" for the global account) has a leader
// and every running node is current with it. With R3 streams on this cluster every node holds
// a replica.
func (c *Cluster) StreamReady(account, stream string) bool {
	if account == "" {
		account = GlobalAccount
	}
	if c.StreamLeader(account, stream) < 0 {
		return false
	}
	for _, s := range c.running() {
		if !s.JetStreamIsStreamCurrent(account, stream) {
			return false
		}
	}
	return true
}

// WaitStreamReady waits until StreamReady holds for every stream named and returns the index
// of the node that leads the first.
func (c *Cluster) WaitStreamReady(t testing.TB, account string, streams ...string) int {
	t.Helper()
	WaitFor(t, clusterReadyTimeout, fmt.Sprintf("streams %v to have leaders with every node current", streams), func() bool {
		for _, st := range streams {
			if !c.StreamReady(account, st) {
				return false
			}
		}
		return true
	})
	if len(streams) == 0 {
		return -1
	}
	return c.StreamLeader(account, streams[0])
}
