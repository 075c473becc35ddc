package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
	"github.com/itsmhub/itsm/services/receiver"
)

const (
	benchSecret = "bench-client-secret"
	benchSite   = "https://acme.atlassian.net"
	// benchClients is the concurrency of both sides of the ceiling
	// comparison, as in BenchmarkReceiverVsBareEcho.
	benchClients = 64
)

func newConnection(id, org string) *store.Connection {
	now := time.Now().UTC()
	return &store.Connection{ID: id, OrganizationID: org, Vendor: "JIRA", State: store.StateActive,
		SiteURL: benchSite, RefreshIntervalSecs: 21600, TimeoutSecs: 1800, CreatedAt: now, UpdatedAt: now}
}

func rawMsgs(b *testing.B, js jetstream.JetStream) uint64 {
	b.Helper()
	s, err := js.Stream(context.Background(), broker.StreamRaw)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State.Msgs
}

// BenchmarkReceiverVsJetStreamCeiling compares, in one run, the receiver
// with what JetStream itself can take on this machine: the same 3 KiB
// bodies published with a synchronous (acked) publish by 64 concurrent
// publishers on one in-process connection, the way the receiver publishes.
// The receiver adds HTTP, the JWT check and the connection lookup; the
// ratio says how much of the broker's ceiling it reaches. b.N is the number
// of deliveries per side.
func BenchmarkReceiverVsJetStreamCeiling(b *testing.B) {
	ctx := context.Background()
	br := brokertest.Start(b)
	js := br.JetStream()
	st, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateConnection(ctx, newConnection("conn-1", "org-a")); err != nil {
		b.Fatal(err)
	}
	jv, err := jiraconn.NewVerifier(jiraconn.VerifierConfig{ClientSecret: []byte(benchSecret)})
	if err != nil {
		b.Fatal(err)
	}
	r, err := receiver.New(receiver.Config{Verifiers: map[string]receiver.DeliveryVerifier{jira.VendorName: jv}}, js, st,
		apikey.NewAuthenticator(st, nil), zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	// Run is the receiver's real http.Server (timeouts included).
	go func() { done <- r.Run(rctx, ln, 5*time.Second) }()
	defer func() { stop(); <-done }()

	cfg := load.Config{URL: "http://" + ln.Addr().String(), Conn: "conn-1", Secret: benchSecret, Site: benchSite,
		Concurrency: benchClients, Issues: max(b.N, 1), RunID: "ceiling-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	plan, err := load.Plan(cfg, b.N)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	before := rawMsgs(b, js)
	ceil := publishCeiling(b, js, plan)
	mid := rawMsgs(b, js)
	res, err := load.RunPlan(ctx, cfg, plan)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	sum := res.Summary()
	if got := rawMsgs(b, js) - mid; got != uint64(sum.Accepted) || sum.Accepted != b.N {
		b.Fatalf("receiver: %d of %d accepted, %d new RAW messages (%v)", sum.Accepted, b.N, got, sum.Status)
	}
	if got := mid - before; got != uint64(b.N) {
		b.Fatalf("ceiling: %d of %d published", got, b.N)
	}
	b.ReportMetric(ceil.rps, "js_req/s")
	b.ReportMetric(sum.RPS, "recv_req/s")
	b.ReportMetric(sum.RPS/ceil.rps, "ratio")
	b.ReportMetric(msf(ceil.p99), "js_p99_ms")
	b.ReportMetric(msf(sum.P50), "recv_p50_ms")
	b.ReportMetric(msf(sum.P99), "recv_p99_ms")
	b.ReportMetric(loadAvg(), "loadavg_1m")
}

type ceilingResult struct {
	rps float64
	p99 time.Duration
}

// publishCeiling publishes every planned body as the receiver would (same
// subject shape, headers, message id and stream expectation), from
// benchClients goroutines, each waiting for its ack.
func publishCeiling(b *testing.B, js jetstream.JetStream, plan []load.Delivery) ceilingResult {
	var next atomic.Int64
	lat := make([]time.Duration, len(plan))
	subj := broker.RawSubject("jira", "conn-ceiling", broker.SourceWebhook)
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(plan) {
					return
				}
				t0 := time.Now()
				msg := nats.NewMsg(subj)
				msg.Data = plan[i].Body
				msg.Header.Set(itsm.HeaderOrganization, "org-a")
				msg.Header.Set(itsm.HeaderConnection, "conn-ceiling")
				msg.Header.Set(itsm.HeaderVendor, "JIRA")
				msg.Header.Set(itsm.HeaderReceivedAt, strconv.FormatInt(t0.UnixNano(), 10))
				pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID("conn-ceiling:"+plan[i].ID), jetstream.WithExpectStream(broker.StreamRaw))
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return ceilingResult{rps: float64(len(plan)) / elapsed.Seconds(), p99: load.Percentile(lat, 99)}
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkEndToEnd drives the whole platform, started in-process as `make
// run` starts it (embedded NATS JetStream and SQLite on disk, every
// service), with signed deliveries at 1,000/s (E2E_RATE) for 20 s
// (E2E_DURATION), and measures webhook → itsm.ticket.updated latency with a
// NATS subscriber: from the start of the first request that carried a
// version to the arrival of that version's event. The same-run baseline is
// the receiver's own answer latency (the synchronous, durably acked part);
// the ratio says what the asynchronous half (consume, map, write, publish)
// adds. Run with -benchtime 1x; each iteration is one fresh platform.
func BenchmarkEndToEnd(b *testing.B) {
	endToEnd(b, envFloat(b, "E2E_RATE", 1000), envDuration(b, "E2E_DURATION", 20*time.Second), 100*time.Millisecond)
}

// BenchmarkSustainedEndToEnd is BenchmarkEndToEnd at issue 21's sustained
// goal: 10,000 webhooks/s (SUSTAINED_RATE) for 60 s (SUSTAINED_DURATION),
// p99 < 50 ms, every event published once. req/s is the rate the platform
// answered (below the asked rate when it cannot keep up: the 64 clients
// wait for each answer); rate/asked says how much of it.
func BenchmarkSustainedEndToEnd(b *testing.B) {
	endToEnd(b, envFloat(b, "SUSTAINED_RATE", 10000), envDuration(b, "SUSTAINED_DURATION", 60*time.Second), 50*time.Millisecond)
}

// endToEnd runs b.N fresh platforms under rate webhooks/s for dur and
// reports the latencies against target.
func endToEnd(b *testing.B, rate float64, dur, target time.Duration) {
	for i := range b.N {
		b.StopTimer()
		env := startPlatform(b)
		probe, err := load.StartProbe(env.natsURL)
		if err != nil {
			b.Fatal(err)
		}
		cfg := load.Config{URL: env.url, Conn: "conn-1", Secret: config.DevClientSecret, Site: benchSite,
			Rate: rate, Concurrency: benchClients, Duration: dur, Issues: 5000, DupProb: 0.02, ReorderWindow: 8,
			Seed: int64(i + 1)}
		b.StartTimer()
		res, err := load.Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		// A rate above what the normalizer drains leaves a backlog that
		// drains after the load: wait for it rather than count it lost.
		lat := probe.Measure(res, 60*time.Second+4*dur)
		b.StopTimer()
		probe.Close()
		env.stop(b)
		sum := res.Summary()
		if sum.OK != sum.Sent {
			b.Fatalf("%d of %d deliveries not answered 2xx: %v %v", sum.Sent-sum.OK, sum.Sent, sum.Status, sum.Errors)
		}
		if err := lat.Err(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(sum.RPS, "req/s")
		b.ReportMetric(msf(lat.P50), "e2e_p50_ms")
		b.ReportMetric(msf(lat.P99), "e2e_p99_ms")
		b.ReportMetric(msf(sum.P50), "recv_p50_ms")
		b.ReportMetric(msf(sum.P99), "recv_p99_ms")
		b.ReportMetric(float64(lat.P99)/float64(max(sum.P99, time.Microsecond)), "ratio_p99")
		b.ReportMetric(float64(lat.P99)/float64(target), "p99/target")
		b.ReportMetric(sum.RPS/rate, "rate/asked")
		b.ReportMetric(float64(lat.Matched), "events")
		b.ReportMetric(loadAvg(), "loadavg_1m")
	}
}

// loadAvg is the machine's 1-minute load average (0 without /proc). It is
// reported with the figures because the development machine is shared: a
// run at load 6 on 2 cores measures the neighbours as much as the platform.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

type platformEnv struct {
	url, natsURL string
	cancel       context.CancelFunc
	p            *app.Platform
}

func (e *platformEnv) stop(tb testing.TB) {
	e.cancel()
	if err := e.p.Wait(); err != nil {
		tb.Fatal(err)
	}
}

// startPlatform is `make run` in-process: dev mode, every component, on
// random loopback ports and a fresh data dir.
func startPlatform(b testing.TB, mods ...func(*config.Config)) *platformEnv {
	cfg, err := config.Load(func(k string) (string, bool) {
		if k == "ITSM_DEV" {
			return "true", true
		}
		return "", false
	})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg.HTTPAddr, cfg.NATSListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.Store = filepath.Join(dir, "itsm.db")
	cfg.ShutdownTimeout = 10 * time.Second
	for _, m := range mods {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := app.Start(ctx, cfg, app.All, zap.NewNop())
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	if err := p.Store().CreateConnection(ctx, newConnection("conn-1", "org-a")); err != nil {
		b.Fatal(err)
	}
	return &platformEnv{url: "http://" + p.HTTPAddr(), natsURL: p.NATSURLAs(broker.UserSubscriber), cancel: cancel, p: p}
}

func envFloat(b *testing.B, key string, def float64) float64 {
	if v := os.Getenv(key); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("%s=%q: want a positive number", key, v)
		}
		return f
	}
	return def
}

func envDuration(b *testing.B, key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("%s=%q: want a duration like 20s", key, v)
		}
		return d
	}
	return def
}
