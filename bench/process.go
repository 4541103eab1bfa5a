package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomhook/roomhook/sender"
)

// replicaContainerMemory is the container memory limit the child replica runs as if under:
// the backlog scenario's memory target is that it fits there.
const replicaContainerMemory = 256 << 20

// replicaProcess is a replica running as `roomhook serve` in a child process, so that its
// memory is its own.
type replicaProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write keeps p, dropping what came before once 64 KiB have piled up.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		l.b.Reset() // keep the tail, which explains an exit
	}
	return l.b.Write(p)
}

// String is what was kept.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startReplicaProcess runs the ReplicaCommand configured like the in-process replicas and
// waits until it reports ready.
func (e *env) startReplicaProcess(ctx context.Context, id string, urls []string, retry sender.RetrySchedule) (*replicaProcess, error) {
	healthAddr, err := deadAddress() // a free port for its health server
	if err != nil {
		return nil, err
	}
	cfg := e.dispatcherConfig(id, nil, retry)
	env := []string{
		"ROOMHOOK_NATS_URL=" + e.url,
		"ROOMHOOK_REGION=" + e.region,
		"ROOMHOOK_API_KEY=" + benchCredentials.APIKey,
		"ROOMHOOK_API_SECRET=" + benchCredentials.APISecret,
		"ROOMHOOK_WEBHOOK_URLS=" + strings.Join(urls, ","),
		"ROOMHOOK_ALLOWED_TARGETS=" + benchTargets,
		"ROOMHOOK_RETRY_SCHEDULE=" + retry.String(),
		fmt.Sprintf("ROOMHOOK_RETRY_JITTER=%g", retry.Jitter),
		fmt.Sprintf("ROOMHOOK_PARTITIONS=%d", cfg.Partitions),
		fmt.Sprintf("ROOMHOOK_MAX_IN_FLIGHT=%d", cfg.MaxInFlight),
		"ROOMHOOK_TAKEOVER=" + cfg.Takeover.String(),
		"ROOMHOOK_STREAM_MAX_AGE=" + cfg.StreamMaxAge.String(),
		"ROOMHOOK_HTTP_ADDR=" + healthAddr,
		"ROOMHOOK_REPLICA_ID=" + id,
		"ROOMHOOK_LOG_LEVEL=error",
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOMHOOK_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	// The soft memory limit roomhook gives itself in a container limited to
	// replicaContainerMemory (90% of it, see internal/server's memoryLimitShare): the benchmark
	// cannot put the child in a cgroup, so it passes the limit the way an operator could.
	env = append(env, fmt.Sprintf("GOMEMLIMIT=%d", replicaContainerMemory/10*9))
	cmd := exec.Command(e.opts.ReplicaCommand[0], e.opts.ReplicaCommand[1:]...)
	cmd.Env = env
	p := &replicaProcess{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the replica process: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	e.mu.Lock()
	e.closers = append(e.closers, p.stop)
	e.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + healthAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("the replica process exited: %s", p.stderr.String())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the replica process is not ready after 30s: %s", p.stderr.String())
		}
	}
}

func (p *replicaProcess) pid() int { return p.cmd.Process.Pid }

// stop ends the process as Kubernetes would: SIGTERM, then SIGKILL after a grace period.
func (p *replicaProcess) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
