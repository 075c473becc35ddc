//go:build soak

package soak_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
)

const (
	connID = "conn-1"
	orgID  = "org-a"
	site   = "https://acme.atlassian.net"
	// chunk is how long each load.Run lasts. The soak runs many short runs
	// rather than one long one so that the load generator's own record of
	// every request (in this process) does not grow for ten minutes and
	// pass for the platform's growth.
	chunk = 5 * time.Second
	// Thresholds over the second half of the run (the first half is
	// warm-up: caches, SQLite pages, connection pools filling up). The
	// fitted growth must stay under both a relative and an absolute bound
	// to count as a trend; a few MiB of noise on a small heap is not one.
	maxHeapGrowthFrac  = 0.10
	maxHeapGrowthBytes = 2 << 20
	// The goroutine count swings by a few dozen with the requests in
	// flight at the moment of sampling; a leak of even one goroutine per
	// keep-alive connection or per second would be hundreds.
	maxGoroutineGrowth = 10
	reportPath         = "/tmp/itsm-soak.txt"
)

// sample is one reading of the platform process (this test process, minus
// the load generator's short-lived state) and of the NATS server process.
type sample struct {
	at         time.Duration
	heapInuse  uint64
	goroutines int
	rss        uint64
	natsRSS    uint64
}

// TestSoak runs the whole platform (receiver, normalizer, backfill, SQLite)
// in this process for SOAK_DURATION (10 minutes by default) at a steady
// SOAK_RATE (200/s), samples the heap in use after a GC and the goroutine
// count every few seconds, fits a line through the second half and fails on
// a growth trend. NATS runs as its own process, as in production: its
// dedupe windows (RAW 2 h, ITSM 1 h) keep one entry per message id, so its
// memory grows by design until the windows fill; it is reported, not
// judged. At the end every accepted delivery must be stored.
func TestSoak(t *testing.T) {
	duration := envDuration(t, "SOAK_DURATION", 10*time.Minute)
	rate := envFloat(t, "SOAK_RATE", 200)
	interval := max(duration/120, time.Second)

	dir := t.TempDir()
	users := broker.NewUsers()
	natsURL, natsPID := startNATSProcess(t, dir, users)
	cfg, err := config.Load(func(k string) (string, bool) {
		if k == "ITSM_DEV" {
			return "true", true
		}
		return "", false
	})
	require.NoError(t, err)
	cfg.HTTPAddr, cfg.NATSURL, cfg.DataDir, cfg.Store = "127.0.0.1:0", natsURL, dir, filepath.Join(dir, "itsm.db")
	cfg.NATSUsers = users
	cfg.MetricsAddr = "127.0.0.1:0"
	logf, err := os.Create(filepath.Join(dir, "platform.log"))
	require.NoError(t, err)
	defer logf.Close()
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(logf), zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	p, err := app.Start(ctx, cfg, app.All, log)
	require.NoError(t, err)
	defer func() { cancel(); require.NoError(t, p.Wait()) }()
	now := time.Now().UTC()
	require.NoError(t, p.Store().CreateConnection(ctx, &store.Connection{ID: connID, OrganizationID: orgID, Vendor: "JIRA",
		State: store.StateActive, SiteURL: site, RefreshIntervalSecs: 21600, TimeoutSecs: 1800, CreatedAt: now, UpdatedAt: now}))

	start := time.Now()
	var mu sync.Mutex
	var samples []sample
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			s := take(start, natsPID)
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			select {
			case <-tick.C:
			case <-stopSampling:
				return
			}
		}
	}()

	// Steady load in chunks; only the newest accepted version per ticket
	// (bounded by Issues) is kept across chunks.
	expected := map[string]int64{}
	var sent, ok, non2xx int
	var worstP99 time.Duration
	for time.Since(start) < duration {
		res, err := load.Run(ctx, load.Config{URL: "http://" + p.HTTPAddr(), Conn: connID, Secret: cfg.JiraClientSecret,
			Site: site, Rate: rate, Concurrency: 16, Duration: min(chunk, duration-time.Since(start)), Issues: 1000,
			DupProb: 0.02, ReorderWindow: 8, VersionBase: time.Now().UnixMilli()})
		require.NoError(t, err)
		sum := res.Summary()
		sent, ok, non2xx = sent+sum.Sent, ok+sum.OK, non2xx+sum.Sent-sum.OK
		worstP99 = max(worstP99, sum.P99)
		for id, v := range res.Expected() {
			expected[id] = max(expected[id], v)
		}
	}
	close(stopSampling)
	<-sampled
	// A reading taken after the last chunk is of an idle platform holding
	// that chunk's result: not comparable with the others.
	for len(samples) > 0 && samples[len(samples)-1].at >= duration {
		samples = samples[:len(samples)-1]
	}

	// Every accepted delivery is stored (the normalizer kept up, too).
	deadline := time.Now().Add(time.Minute)
	for id, v := range expected {
		for {
			d, err := p.Store().Get(ctx, orgID, itsm.KindTicket, id)
			if err == nil && d.Version >= v {
				break
			}
			require.True(t, time.Now().Before(deadline), "ticket %s: newest accepted version %d not stored", id, v)
			time.Sleep(50 * time.Millisecond)
		}
	}

	half := samples[len(samples)/2:]
	heapSlope, heapMean := trend(half, func(s sample) float64 { return float64(s.heapInuse) })
	goSlope, goMean := trend(half, func(s sample) float64 { return float64(s.goroutines) })
	rssSlope, rssMean := trend(half, func(s sample) float64 { return float64(s.rss) })
	natsSlope, natsMean := trend(half, func(s sample) float64 { return float64(s.natsRSS) })
	span := (half[len(half)-1].at - half[0].at).Seconds()
	heapGrowth, goGrowth := heapSlope*span, goSlope*span

	var b strings.Builder
	fmt.Fprintf(&b, "soak: %v at %.0f deliveries/s (%d sent, %d 2xx, %d other; worst chunk p99 %v), %d samples every %v; %d tickets, all stored\n",
		duration, rate, sent, ok, non2xx, worstP99.Round(10*time.Microsecond), len(samples), interval, len(expected))
	fmt.Fprintf(&b, "second half (%.0f s), fitted linear growth:\n", span)
	fmt.Fprintf(&b, "  heap in use (after GC)  mean %6.1f MiB  growth %+7.2f MiB  (limit %.1f MiB)\n",
		heapMean/(1<<20), heapGrowth/(1<<20), math.Max(heapMean*maxHeapGrowthFrac, maxHeapGrowthBytes)/(1<<20))
	fmt.Fprintf(&b, "  goroutines              mean %6.1f      growth %+7.2f      (limit %d)\n", goMean, goGrowth, maxGoroutineGrowth)
	fmt.Fprintf(&b, "  process RSS             mean %6.1f MiB  growth %+7.2f MiB  (reported: includes SQLite's C heap)\n", rssMean/(1<<20), rssSlope*span/(1<<20))
	fmt.Fprintf(&b, "  nats-server RSS         mean %6.1f MiB  growth %+7.2f MiB  (reported: dedupe windows fill by design)\n", natsMean/(1<<20), natsSlope*span/(1<<20))
	fmt.Fprintln(&b, "samples (s, heap_inuse_bytes, goroutines, rss_bytes, nats_rss_bytes):")
	for _, s := range samples {
		fmt.Fprintf(&b, "  %.0f,%d,%d,%d,%d\n", s.at.Seconds(), s.heapInuse, s.goroutines, s.rss, s.natsRSS)
	}
	t.Log("\n" + b.String())
	require.NoError(t, os.WriteFile(reportPath, []byte(b.String()), 0o644))

	require.Zero(t, non2xx, "every delivery of a steady soak is accepted")
	heapOver := heapGrowth > heapMean*maxHeapGrowthFrac && heapGrowth > maxHeapGrowthBytes
	require.False(t, heapOver, "heap grows: %+.2f MiB over the second half (mean %.1f MiB)", heapGrowth/(1<<20), heapMean/(1<<20))
	require.LessOrEqual(t, goGrowth, float64(maxGoroutineGrowth), "goroutines grow: %+.1f over the second half", goGrowth)
}

// take reads the process after a GC: HeapInuse then measures live data
// rather than where the collector happened to be.
func take(start time.Time, natsPID int) sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{at: time.Since(start), heapInuse: ms.HeapInuse, goroutines: runtime.NumGoroutine(),
		rss: rssOf("self"), natsRSS: rssOf(strconv.Itoa(natsPID))}
}

// rssOf reads VmRSS from /proc/<pid>/status (0 where there is no /proc).
func rssOf(pid string) uint64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// trend fits y = a + slope·x by least squares over the samples (x in
// seconds) and returns the slope (per second) and the mean of y.
func trend(s []sample, y func(sample) float64) (slope, mean float64) {
	n := float64(len(s))
	var sx, sy float64
	for _, p := range s {
		sx += p.at.Seconds()
		sy += y(p)
	}
	mx, my := sx/n, sy/n
	var cov, vx float64
	for _, p := range s {
		dx := p.at.Seconds() - mx
		cov += dx * (y(p) - my)
		vx += dx * dx
	}
	if vx == 0 {
		return 0, my
	}
	return cov / vx, my
}

// startNATSProcess builds nats-server from the module cache (it is a
// dependency already) and runs it with JetStream on a loopback port, with
// the deployments' configuration file (users, permissions, max_payload).
func startNATSProcess(t *testing.T, dir string, users broker.Users) (string, int) {
	t.Helper()
	bin := filepath.Join(dir, "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	require.NoError(t, err, "build nats-server: %s", out)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf, err := filepath.Abs(filepath.Join("..", "..", "deploy", "nats", "nats.conf"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "-c", conf, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "nats"))
	cmd.Env = os.Environ()
	for u, pw := range users {
		cmd.Env = append(cmd.Env, broker.PasswordEnv(u)+"="+pw)
	}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := nats.Connect(url, nats.UserInfo(broker.UserAdmin, users[broker.UserAdmin]))
		if err == nil {
			nc.Close()
			return url, cmd.Process.Pid
		}
		require.True(t, time.Now().Before(deadline), "nats-server not ready: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
}

func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	t.Helper()
	if v := os.Getenv(key); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, key)
		return d
	}
	return def
}

func envFloat(t *testing.T, key string, def float64) float64 {
	t.Helper()
	if v := os.Getenv(key); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, key)
		return f
	}
	return def
}
