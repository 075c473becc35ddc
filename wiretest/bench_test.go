package wiretest_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/cputime"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
	"github.com/itsmhub/itsm/services/normalizer"
	"github.com/itsmhub/itsm/wiretest"
)

// The same measurements on the SQLite store and on the MongoDB store over
// the embedded FerretDB, alternately in one run, each through the platform
// as it configures itself for that store. They are information, not
// targets: FerretDB v1 on SQLite is not a MongoDB replica set
// (docs/mongodb.md says how it differs, docs/performance.md has figures).

// scoped runs a phase's cleanups when the phase ends, so that one store's
// platform is gone before the other's is measured.
type scoped struct {
	testing.TB
	cleanups []func()
}

func (s *scoped) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *scoped) done() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

// benchStores are the stores measured, in order; ITSM_WIRE_BENCH_STORES
// (e.g. "mongodb") narrows them.
func benchStores() []string {
	if v := os.Getenv("ITSM_WIRE_BENCH_STORES"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"sqlite", "mongodb"}
}

// storeFor is ITSM_STORE for kind: a SQLite file in dir, or database itsm
// on a wire server started in dir.
func storeFor(tb testing.TB, kind, dir string) string {
	if kind == "sqlite" {
		return filepath.Join(dir, "itsm.db")
	}
	srv, err := wiretest.Start(wiretest.Config{Dir: filepath.Join(dir, "ferretdb")})
	require.NoError(tb, err)
	tb.Cleanup(srv.Stop)
	return srv.URI("itsm")
}

func envInt(tb testing.TB, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, key)
	return n
}

// BenchmarkNormalizerDrain: webhook deliveries (3 KiB, the load
// generator's) of ITSM_WIRE_BENCH_ISSUES issues (default 500), four
// versions each, pre-filled in RAW; then the normalizer alone drains them
// into the store, one event per version.
//
//	cd wiretest && go test -run '^$' -bench NormalizerDrain -benchtime 1x -count 3 .
func BenchmarkNormalizerDrain(b *testing.B) {
	issues := envInt(b, "ITSM_WIRE_BENCH_ISSUES", 500)
	for range b.N {
		for _, kind := range benchStores() {
			wall, cpu, n := benchDrain(b, kind, issues, 4)
			b.ReportMetric(float64(n)/wall.Seconds(), kind+"_msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), kind+"_cpu_us/msg")
		}
	}
	b.ReportMetric(0, "ns/op")
}

func benchDrain(b *testing.B, kind string, issues, versions int) (wall, cpu time.Duration, n int) {
	tb := &scoped{TB: b}
	defer tb.done()
	dir := tb.TempDir()
	cfg := benchConfig(tb, dir, storeFor(tb, kind, dir))
	ctx := context.Background()

	// The normalizer creates the streams and its consumers; then RAW is
	// filled with no normalizer running, as a backlog after an outage.
	stopPlatform(b, startPlatform(tb, cfg, app.Components{Normalizer: true}))
	p := startPlatform(tb, cfg, app.Components{Receiver: true})
	conn := &store.Connection{ID: "conn-bench", OrganizationID: "org-bench", Vendor: "JIRA", State: store.StateActive,
		SiteURL: siteA, RefreshIntervalSecs: 21600, TimeoutSecs: 1800, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	require.NoError(b, p.Store().CreateConnection(ctx, conn))
	plan, err := load.Plan(load.Config{Conn: conn.ID, Secret: "unused", Site: siteA, Issues: issues, IssueBase: 40000,
		RunID: "bench"}, issues*versions)
	require.NoError(b, err)
	js := p.JetStream()
	for _, d := range plan {
		msg := nats.NewMsg(broker.RawSubject("jira", conn.ID, broker.SourceWebhook))
		msg.Header = nats.Header{itsm.HeaderOrganization: {conn.OrganizationID}, itsm.HeaderConnection: {conn.ID},
			itsm.HeaderVendor: {"JIRA"}}
		msg.Data = d.Body
		_, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(d.ID))
		require.NoError(b, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("pre-fill not acknowledged")
	}
	stopPlatform(b, p)

	start, cpu0 := time.Now(), cputime.Self()
	p = startPlatform(tb, cfg, app.Components{Normalizer: true})
	waitDrained(b, p.JetStream(), 10*time.Minute)
	wall, cpu = time.Since(start), cputime.Self()-cpu0
	for _, d := range plan[len(plan)-issues:] {
		doc, err := p.Store().Get(ctx, conn.OrganizationID, itsm.KindTicket, d.TicketID(conn.ID))
		require.NoError(b, err)
		require.Equal(b, d.Version, doc.Version, "every issue stored at its last version")
	}
	stopPlatform(b, p)
	return wall, cpu, len(plan)
}

// BenchmarkFullSync: a first full sync of ITSM_WIRE_BENCH_ISSUES issues
// (default 1,000) in 10 projects with 3 comments each, from the Jira
// simulator through the whole platform (OAuth, backfill worker, RAW,
// normalizer, store), timed from the consent to the last record stored.
//
//	cd wiretest && go test -run '^$' -bench FullSync -benchtime 1x -count 1 .
func BenchmarkFullSync(b *testing.B) {
	issues := envInt(b, "ITSM_WIRE_BENCH_ISSUES", 1000)
	for range b.N {
		for _, kind := range benchStores() {
			syncDone, stored, records := benchFullSync(b, kind, issues)
			b.ReportMetric(syncDone.Seconds(), kind+"_sync_s")
			b.ReportMetric(stored.Seconds(), kind+"_stored_s")
			b.ReportMetric(float64(records)/stored.Seconds(), kind+"_records/s")
		}
	}
	b.ReportMetric(0, "ns/op")
}

func benchFullSync(b *testing.B, kind string, issues int) (syncDone, stored time.Duration, records int) {
	tb := &scoped{TB: b}
	defer tb.done()
	const projects = 10
	sim := jirasim.NewTestServer(tb, jirasim.Options{Seed: 100, Projects: projects, IssuesPerProject: issues / projects,
		CommentsPerIssue: 3, Clock: jirasim.RealClock{}})
	dir := tb.TempDir()
	cfg := benchConfig(tb, dir, storeFor(tb, kind, dir))
	cfg.APIKeys = map[string]string{keyA: "org-a"}
	cfg.JiraAuthURL, cfg.JiraAPIURL = sim.URL(), sim.URL()
	cfg.JiraClientID, cfg.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	p := startPlatform(tb, cfg, app.All)
	base := "http://" + p.HTTPAddr()
	var conn connections.View
	require.Equal(b, http.StatusCreated, call(tb, http.MethodPost, base+"/v1/connections", `{"vendor":"JIRA"}`, &conn))
	start := time.Now()
	consent(tb, conn.OAuth2AuthorizeURL)
	for {
		var v struct {
			LastSync *store.SyncState `json:"last_sync"`
		}
		if call(tb, http.MethodGet, base+"/v1/connections/"+conn.ID, "", &v) == http.StatusOK && v.LastSync != nil &&
			v.LastSync.Kind == store.SyncFull && v.LastSync.Status != store.SyncRunning {
			require.Equal(b, store.SyncCompleted, v.LastSync.Status, v.LastSync.LastError)
			records = int(v.LastSync.Objects)
			break
		}
		require.Less(b, time.Since(start), 20*time.Minute, "the full sync ends")
		time.Sleep(100 * time.Millisecond)
	}
	syncDone = time.Since(start)
	waitDrained(b, p.JetStream(), 20*time.Minute)
	return syncDone, time.Since(start), records
}

// waitDrained waits until the normalizer has acknowledged every RAW
// message, in both of its lanes (live deliveries and sync records).
func waitDrained(tb testing.TB, js jetstream.JetStream, within time.Duration) {
	ctx := context.Background()
	raw, err := js.Stream(ctx, broker.StreamRaw)
	require.NoError(tb, err)
	deadline := time.Now().Add(within)
	for {
		// Info requests may time out on a loaded machine: only the deadline
		// ends the wait.
		si, err := raw.Info(ctx)
		// Every message is in one lane; the lane holding the last one has
		// its floor there once it is done.
		idle, floor := err == nil, uint64(0)
		for _, name := range normalizer.Consumers {
			if !idle {
				break
			}
			var c jetstream.Consumer
			if c, err = js.Consumer(ctx, broker.StreamRaw, name); err != nil {
				idle = false
				break
			}
			ci := c.CachedInfo()
			idle = ci.NumPending == 0 && ci.NumAckPending == 0
			floor = max(floor, ci.AckFloor.Stream)
		}
		if idle && floor >= si.State.LastSeq {
			return
		}
		require.True(tb, time.Now().Before(deadline), "normalizer not idle within %v (last error: %v)", within, err)
		time.Sleep(50 * time.Millisecond)
	}
}

// benchConfig is the dev configuration apptest uses, on dir and
// storeSpec.
func benchConfig(tb testing.TB, dir, storeSpec string) config.Config {
	cfg, err := config.Load(func(k string) (string, bool) {
		if k == "ITSM_DEV" {
			return "true", true
		}
		return "", false
	})
	require.NoError(tb, err)
	cfg.HTTPAddr, cfg.NATSListen, cfg.DataDir, cfg.Store = "127.0.0.1:0", "127.0.0.1:0", dir, storeSpec
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

type running struct {
	*app.Platform
	stop func() error
}

func startPlatform(tb testing.TB, cfg config.Config, comps app.Components) *running {
	ctx, cancel := context.WithCancel(context.Background())
	log := zap.NewNop()
	if path := os.Getenv("ITSM_WIRE_BENCH_LOG"); path != "" {
		var err error
		log, err = zap.Config{Level: zap.NewAtomicLevelAt(zap.WarnLevel), Encoding: "json",
			EncoderConfig: zap.NewProductionEncoderConfig(), OutputPaths: []string{path}}.Build()
		require.NoError(tb, err)
	}
	p, err := app.Start(ctx, cfg, comps, log)
	require.NoError(tb, err)
	var once sync.Once
	var waitErr error
	r := &running{Platform: p, stop: func() error {
		once.Do(func() { cancel(); waitErr = p.Wait() })
		return waitErr
	}}
	tb.Cleanup(func() { _ = r.stop() })
	return r
}

func stopPlatform(tb testing.TB, r *running) {
	require.NoError(tb, r.stop())
}

// call sends an API request as organization org-a and decodes a 2xx answer
// into out.
func call(tb testing.TB, method, url, body string, out any) int {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("X-API-Key", keyA)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	if resp.StatusCode/100 == 2 && out != nil {
		require.NoError(tb, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}
