package dashboard

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// lookPrometheus finds the prometheus binary (Debian's package puts it on PATH). Without it
// the test is skipped on a developer's machine, but fails in CI, which installs it: a CI run
// must not pass by skipping what it is there to check.
func lookPrometheus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus is not on PATH; .ci/run installs it (apt-get install prometheus): %v", err)
		}
		t.Skip("prometheus is not on PATH: apt-get install prometheus to run this test (CI=true makes this a failure)")
	}
	return bin
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// prometheusServer is a real Prometheus process on loopback, stopped when the test ends.
type prometheusServer struct {
	api promAPI
	log *syncBuffer
}

// syncBuffer is the process's output, written by os/exec's copying goroutine and read by the
// test when it fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPrometheus scrapes target (host:port) every second with targetLabels on it, evaluates
// rules every second, and returns once Prometheus is ready.
func startPrometheus(t *testing.T, bin, target string, targetLabels map[string]string, rules ruleFile) *prometheusServer {
	t.Helper()
	dir := t.TempDir()
	rulesRaw, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rulesRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
		"rule_files": []string{filepath.Join(dir, "rules.yaml")},
		"scrape_configs": []any{map[string]any{
			"job_name":       "roomhook",
			"static_configs": []any{map[string]any{"targets": []string{target}, "labels": targetLabels}},
		}},
	}
	cfgRaw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfgRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	p := &prometheusServer{api: promAPI{base: "http://" + addr}, log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start prometheus: %v", err)
	}
	// exited is closed once the process is gone, with its error in waitErr: both the
	// readiness loop and the cleanup wait on it.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %v\n%s", waitErr, p.log.String())
		default:
		}
		if ready(p.api.base + "/-/ready") {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30s:\n%s", p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ready(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitFor polls cond every 250ms until it holds or timeout passes; what names it in the
// failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, timeout, lastErr)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
