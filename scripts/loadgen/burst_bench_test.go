package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/itsmhub/itsm/internal/cputime"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
)

// BenchmarkPlatformBurst measures burst acceptance (docs/performance.md):
// the whole platform as `make run` starts it (receiver, normalizer, backfill,
// embedded NATS, SQLite, in one process) under 64 keep-alive clients that
// post signed webhooks of fresh issues as fast as they are answered, for
// BURST_DURATION (default 10s); and, alternately in the same run, a bare
// Echo server that only reads the body and answers 202, under the same
// clients. Every 202 of the platform comes after the JetStream ack. After
// the burst it times the drain: until every accepted delivery's event is
// published (a backlog that only grows would never end). Run with
// -benchtime 1x -count N: each iteration is one bare run and two platforms.
func BenchmarkPlatformBurst(b *testing.B) {
	dur := envDuration(b, "BURST_DURATION", 10*time.Second)
	// The ingest-first gate (pkg/ingest) on, as `make run` has it, and off
	// (a threshold no burst reaches), alternately: what the gate buys.
	off := func(c *config.Config) { c.IngestFirstInflight = 1 << 30 }
	for i := range b.N {
		b.StopTimer()
		bareRPS, bareCPU := bareEchoRPS(b, dur, int64(i+1))
		var on, without burst
		if i%2 == 0 {
			on, without = platformBurst(b, dur, int64(i+1)), platformBurst(b, dur, int64(i+1), off)
		} else {
			without, on = platformBurst(b, dur, int64(i+1), off), platformBurst(b, dur, int64(i+1))
		}
		b.ReportMetric(bareRPS, "bare_echo_req/s")
		b.ReportMetric(on.rps, "platform_req/s")
		b.ReportMetric(on.rps/bareRPS, "ratio")
		b.ReportMetric(without.rps/bareRPS, "ratio_gate_off")
		b.ReportMetric(on.p99, "platform_p99_ms")
		b.ReportMetric(on.drain.Seconds(), "drain_s")
		b.ReportMetric(without.drain.Seconds(), "drain_gate_off_s")
		// CPU per accepted delivery (the process's, load generator included
		// on both sides) follows the neighbours' load much less than the
		// rates do: bare over platform is the ratio CPU alone would allow.
		b.ReportMetric(bareCPU, "bare_cpu_us/req")
		b.ReportMetric(on.cpu, "platform_cpu_us/req")
		b.ReportMetric(bareCPU/on.cpu, "cpu_ratio")
		b.ReportMetric(bareCPU/without.cpu, "cpu_ratio_gate_off")
		b.ReportMetric(loadAvg(), "loadavg_1m")
	}
}

type burst struct {
	rps, p99 float64
	cpu      float64 // µs of process CPU per accepted delivery, during the burst
	drain    time.Duration
}

// platformBurst runs one burst against a fresh platform and waits for its
// drain: every accepted delivery's event published.
func platformBurst(b *testing.B, dur time.Duration, seed int64, mods ...func(*config.Config)) burst {
	env := startPlatform(b, mods...)
	defer env.stop(b)
	probe, err := load.StartProbe(env.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer probe.Close()
	// Fresh issues only: each accepted delivery is one event to wait for.
	cfg := load.Config{URL: env.url, Conn: "conn-1", Secret: config.DevClientSecret, Site: benchSite,
		Concurrency: benchClients, Duration: dur, Issues: 10_000_000, Seed: seed}
	b.StartTimer()
	cpu0 := cputime.Self()
	res, err := load.Run(context.Background(), cfg)
	cpu := cputime.Self() - cpu0
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	sum := res.Summary()
	if sum.OK != sum.Sent {
		b.Fatalf("%d of %d deliveries refused: %v %v", sum.Sent-sum.OK, sum.Sent, sum.Status, sum.Errors)
	}
	var keys []string
	for k := range res.AcceptedVersions() {
		keys = append(keys, k)
	}
	start := time.Now()
	if missing := probe.WaitFor(keys, 5*time.Minute); len(missing) > 0 {
		b.Fatalf("%d of %d accepted deliveries have no event after 5 minutes", len(missing), len(keys))
	}
	return burst{rps: sum.RPS, p99: msf(sum.P99), drain: time.Since(start), cpu: perDelivery(cpu, sum.OK)}
}

// bareEchoRPS is the ceiling of this machine's HTTP stack: an Echo server
// that reads each body and answers 202, under the same load.
func bareEchoRPS(b *testing.B, dur time.Duration, seed int64) (rps, cpuPerReq float64) {
	b.Helper()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/webhooks/jira/:connection_id", func(c echo.Context) error {
		if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
			return err
		}
		return c.NoContent(http.StatusAccepted)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			b.Error(err)
		}
	}()
	defer srv.Close()
	cpu0 := cputime.Self()
	res, err := load.Run(context.Background(), load.Config{URL: "http://" + ln.Addr().String(), Conn: "conn-1",
		Secret: config.DevClientSecret, Site: benchSite, Concurrency: benchClients, Duration: dur, Issues: 10_000_000, Seed: seed})
	cpu := cputime.Self() - cpu0
	if err != nil {
		b.Fatal(err)
	}
	sum := res.Summary()
	return sum.RPS, perDelivery(cpu, sum.OK)
}

func perDelivery[N int | int64](cpu time.Duration, n N) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}
