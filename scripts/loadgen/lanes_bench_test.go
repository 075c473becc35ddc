package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
)

// The organizations of BenchmarkLiveDuringFullSync: the syncing tenant, a
// tenant that only receives webhooks, and a small tenant that syncs too.
const (
	orgBig, keyBig     = "org-big", "bench-key-org-big-0123456789"
	orgOther           = "org-other"
	orgSmall, keySmall = "org-small", "bench-key-org-small-0123456789"
	// webhookIssueBase keeps the webhook load's issues apart from the
	// simulator's (ids from 10000 up) and webhookProject from its keys.
	webhookIssueBase = 5_000_000
	webhookProject   = "WHK"
	otherSite        = "https://other.atlassian.net"
)

// BenchmarkLiveDuringFullSync measures goal 0 of issue 21 on the whole
// platform as `make run` starts it, configured against an in-process Jira
// simulator. Each run starts three fresh platforms, one after the other, so
// that -count N alternates the baseline with the measurement:
//
//   - baseline: signed webhooks at E2E_RATE (default 200/s) for E2E_DURATION
//     (default 20s), half for a connection of org-big and half for a
//     connection of org-other, with nothing syncing;
//   - small alone: a full sync of a SMALL_ISSUES-issue connection (default
//     1000, 3 comments each) of org-small, timed from the OAuth callback
//     that requests it until all its tickets and comments are stored;
//   - during: org-big's connection, made through OAuth consent, runs its
//     first full sync of ITSM_BENCH_ISSUES issues (default 100000, 3
//     comments each, like BenchmarkFullSync); once it publishes, the same
//     webhook load starts, and LANES_SMALL_DELAY (default 2s) later
//     org-small connects and syncs as above.
//
// Latency is webhook sent → itsm.ticket.updated received (load.StartProbe).
// The during figures (sync_conn_*, other_org_*) count only the webhooks
// sent before the big sync's records were all stored (but
// sync_conn_whole_run_e2e_p99_ms, which counts all); overlap is that share
// of the run's webhooks, and small_big_busy is 1 when the small sync ended
// before the big one's records were all stored. lost counts final versions
// with no event and deliveries not answered 2xx, over every phase. Run with
// -benchtime 1x:
//
//	ITSM_BENCH_ISSUES=20000 go test ./scripts/loadgen -run '^$' -bench LiveDuringFullSync -benchtime 1x -timeout 30m
//
// Diagnostics: LANES_TIMELINE=1 logs the during phase's latencies per 2 s
// window (run with -v: a benchmark's log is cut short otherwise);
// LANES_PROFILE=dir writes CPU and block profiles of the during phase;
// LANES_PROFILE_SMALL=dir CPU profiles of the small tenant's sync alone and
// during (small-alone.pprof, small-during.pprof), from its connect to its
// records stored.
// Platform settings come from the environment as for `make run`
// (ITSM_NORMALIZER_WORKERS, for instance).
//
// The small tenant's issues are one project of the big site (the simulator
// generates the same size on every site, so the big site has
// ITSM_BENCH_ISSUES/SMALL_ISSUES projects of SMALL_ISSUES issues, and the
// small connection filters one of them); alone, its site is that one project.
func BenchmarkLiveDuringFullSync(b *testing.B) {
	lb := lanesBench{
		issues:     envInt(b, "ITSM_BENCH_ISSUES", 100000),
		small:      envInt(b, "SMALL_ISSUES", 1000),
		rate:       envFloat(b, "E2E_RATE", 200),
		dur:        envDuration(b, "E2E_DURATION", 20*time.Second),
		smallDelay: envDuration(b, "LANES_SMALL_DELAY", 2*time.Second),
	}
	if lb.issues%lb.small != 0 {
		b.Fatalf("ITSM_BENCH_ISSUES=%d: want a multiple of SMALL_ISSUES=%d", lb.issues, lb.small)
	}
	for i := range b.N {
		b.StopTimer()
		base := lb.baseline(b, i)
		alone := lb.smallAlone(b)
		during := lb.during(b, i)
		b.ReportMetric(msf(base.syncConn.P50), "base_sync_conn_e2e_p50_ms")
		b.ReportMetric(msf(base.syncConn.P99), "base_sync_conn_e2e_p99_ms")
		b.ReportMetric(msf(base.otherOrg.P50), "base_other_org_e2e_p50_ms")
		b.ReportMetric(msf(base.otherOrg.P99), "base_other_org_e2e_p99_ms")
		b.ReportMetric(msf(during.syncConn.P50), "sync_conn_e2e_p50_ms")
		b.ReportMetric(msf(during.syncConn.P99), "sync_conn_e2e_p99_ms")
		b.ReportMetric(msf(during.otherOrg.P50), "other_org_e2e_p50_ms")
		b.ReportMetric(msf(during.otherOrg.P99), "other_org_e2e_p99_ms")
		b.ReportMetric(msf(during.wholeRun.P99), "sync_conn_whole_run_e2e_p99_ms")
		worst := max(during.syncConn.P99, during.otherOrg.P99)
		b.ReportMetric(float64(worst)/float64(100*time.Millisecond), "p99/target")
		b.ReportMetric(float64(base.lost+during.lost), "lost")
		b.ReportMetric(during.overlap, "overlap")
		b.ReportMetric(alone.took.Seconds(), "small_alone_s")
		b.ReportMetric(during.small.Seconds(), "small_during_s")
		b.ReportMetric(during.small.Seconds()/alone.took.Seconds(), "small_ratio")
		b.ReportMetric(alone.crawl.Seconds(), "small_alone_crawl_s")
		b.ReportMetric(during.smallCrawl.Seconds(), "small_during_crawl_s")
		b.ReportMetric(boolMetric(during.smallBeforeBig), "small_big_busy")
		b.ReportMetric(during.bigSync.Seconds(), "big_sync_s")
		b.ReportMetric(during.bigStored.Seconds(), "big_stored_s")
		b.ReportMetric(loadAvg(), "loadavg_1m")
	}
}

type lanesBench struct {
	issues, small   int
	rate            float64
	dur, smallDelay time.Duration
}

func boolMetric(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// lanesPlatform is one platform with the simulator it is configured for.
type lanesPlatform struct {
	sim    *jirasim.Server
	env    *platformEnv
	dbPath string
	client *http.Client
}

// startLanesPlatform starts a simulator of projects × perProject issues and
// the platform, configured for it through the environment `make run` reads.
func startLanesPlatform(b *testing.B, projects, perProject int) *lanesPlatform {
	sim, err := jirasim.NewServer(jirasim.Options{Seed: 100, Projects: projects, IssuesPerProject: perProject,
		CommentsPerIssue: 3, Clock: jirasim.RealClock{}})
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{
		"ITSM_DEV":                "true",
		"ITSM_API_KEYS":           orgBig + ":" + keyBig + "," + orgSmall + ":" + keySmall,
		"ITSM_JIRA_AUTH_URL":      sim.URL(),
		"ITSM_JIRA_API_URL":       sim.URL(),
		"ITSM_JIRA_CLIENT_ID":     sim.ClientID(),
		"ITSM_JIRA_CLIENT_SECRET": sim.ClientSecret(),
	}
	// Other settings come from the environment, as for `make run`
	// (ITSM_NORMALIZER_WORKERS, for instance).
	cfg, err := config.Load(func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		sim.Close()
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg.HTTPAddr, cfg.NATSListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.Store = filepath.Join(dir, "itsm.db")
	cfg.ShutdownTimeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	p, err := app.Start(ctx, cfg, app.All, zap.NewNop())
	if err != nil {
		cancel()
		sim.Close()
		b.Fatal(err)
	}
	return &lanesPlatform{sim: sim, dbPath: cfg.Store, client: &http.Client{Timeout: 30 * time.Second},
		env: &platformEnv{url: "http://" + p.HTTPAddr(), natsURL: p.NATSURLAs(broker.UserSubscriber), cancel: cancel, p: p}}
}

func (lp *lanesPlatform) stop(b *testing.B) {
	lp.env.stop(b)
	lp.sim.Close()
}

// call is an API request with an organization's key.
func (lp *lanesPlatform) call(method, apiKey, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, lp.env.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := lp.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// connect creates a Jira connection for the key's organization and plays
// the customer's consent; the callback requests the first full sync. It
// returns the connection's id and when the callback was sent.
func (lp *lanesPlatform) connect(apiKey string, projectKeys []string) (string, time.Time, error) {
	req := map[string]any{"vendor": "JIRA"}
	if len(projectKeys) > 0 {
		req["options"] = map[string]any{"project_keys_filter": projectKeys}
	}
	st, body, err := lp.call(http.MethodPost, apiKey, "/v1/connections", req)
	if err != nil {
		return "", time.Time{}, err
	}
	if st != http.StatusCreated {
		return "", time.Time{}, fmt.Errorf("create connection: %d %s", st, body)
	}
	var created struct {
		ID           string `json:"id"`
		AuthorizeURL string `json:"oauth2_authorize_url"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		return "", time.Time{}, fmt.Errorf("create connection: %w", err)
	}
	sent, err := consent(lp.client, created.AuthorizeURL)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("consent for %s: %w", created.ID, err)
	}
	return created.ID, sent, nil
}

// consent plays the customer's browser: open the authorize URL, follow
// Jira's redirect to the callback, and confirm on the confirmation page (its
// form token and its cookie). It returns when the confirmation was sent: the
// confirmation is what requests the first full sync.
func consent(hc *http.Client, authorizeURL string) (time.Time, error) {
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Get(authorizeURL)
	if err != nil {
		return time.Time{}, err
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || callback == "" {
		return time.Time{}, fmt.Errorf("authorize: %d, want a redirect to the callback", resp.StatusCode)
	}
	resp, err = noRedirect.Get(callback)
	if err != nil {
		return time.Time{}, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("callback: %d %s", resp.StatusCode, page)
	}
	m := consentToken.FindSubmatch(page)
	if m == nil {
		return time.Time{}, fmt.Errorf("callback: no confirmation form in %s", page)
	}
	u, err := url.Parse(callback)
	if err != nil {
		return time.Time{}, err
	}
	form := url.Values{"consent_token": {html.UnescapeString(string(m[1]))}, "decision": {"confirm"}}
	req, err := http.NewRequest(http.MethodPost, u.Scheme+"://"+u.Host+"/oauth/confirm", strings.NewReader(form.Encode()))
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	sent := time.Now()
	resp, err = noRedirect.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("confirm: %d %s", resp.StatusCode, body)
	}
	return sent, nil
}

var consentToken = regexp.MustCompile(`name="consent_token" value="([^"]*)"`)

// lastSync is the status of the connection's last sync ("" before one).
func (lp *lanesPlatform) lastSync(org, id string) (string, error) {
	c, err := lp.env.p.Store().GetConnection(context.Background(), org, id)
	if err != nil {
		return "", fmt.Errorf("connection %s: %w", id, err)
	}
	if c.Detail.LastSync == nil {
		return "", nil
	}
	return string(c.Detail.LastSync.Status), nil
}

// counts are a connection's live tickets (the webhook load's excluded) and
// comments, read from SQLite directly: listing them through the API would
// cost more than what it measures.
//
// It reads the organization's rows only, through the store's list index:
// a scan of the whole table, polled every 50 ms while another tenant's
// sync fills it, competed with the platform for the cores during the sync
// and not alone.
func counts(db *sql.DB, orgID, connID string) (tickets, comments int, err error) {
	err = db.QueryRow(`SELECT
		COUNT(CASE WHEN kind = ? AND identifier NOT LIKE ? THEN 1 END),
		COUNT(CASE WHEN kind = ? THEN 1 END)
		FROM documents INDEXED BY documents_list
		WHERE organization_id = ? AND kind IN (?, ?) AND connection_id = ? AND NOT deleted`,
		string(itsm.KindTicket), webhookProject+"-%", string(itsm.KindComment),
		orgID, string(itsm.KindTicket), string(itsm.KindComment), connID).Scan(&tickets, &comments)
	if err != nil {
		return 0, 0, fmt.Errorf("count documents of %s: %w", connID, err)
	}
	return tickets, comments, nil
}

// waitStored waits until the connection's last sync completed and its
// issues and their comments are all stored, and returns when they were.
func (lp *lanesPlatform) waitStored(org, id string, issues int, within time.Duration) (synced, stored time.Time, err error) {
	db, err := sql.Open("sqlite", "file:"+lp.dbPath+"?mode=ro")
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	defer db.Close()
	deadline := time.Now().Add(within)
	for {
		st, err := lp.lastSync(org, id)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		var t, c int
		if st != "" && st != "RUNNING" {
			if st != "COMPLETED" {
				return time.Time{}, time.Time{}, fmt.Errorf("connection %s: full sync ended %s", id, st)
			}
			if synced.IsZero() {
				synced = time.Now()
			}
			if t, c, err = counts(db, org, id); err != nil {
				return time.Time{}, time.Time{}, err
			}
			if t == issues && c == 3*issues {
				return synced, time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, time.Time{}, fmt.Errorf("connection %s: not stored within %v (last sync %q, %d of %d tickets, %d comments)",
				id, within, st, t, issues, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webhookFigures are the latencies of one phase's webhooks, per
// connection, over the deliveries the phase counts.
type webhookFigures struct {
	syncConn, otherOrg load.Latency
	lost               int
}

// webhookRun is the two connections' webhook loads of one phase.
type webhookRun struct {
	syncConn, otherOrg *load.Result
}

func (lb lanesBench) loadConfig(url, secret, conn, site, cloudID string, seed int64) load.Config {
	return load.Config{URL: url, Conn: conn, Secret: secret, Site: site, CloudID: cloudID, Rate: lb.rate / 2,
		Concurrency: benchClients / 2, Duration: lb.dur, Issues: 5000, IssueBase: webhookIssueBase,
		Project: webhookProject, DupProb: 0.02, ReorderWindow: 8, Seed: seed,
		RunID: conn + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// sendWebhooks runs both loads at once, half the rate each.
func (lb lanesBench) sendWebhooks(b *testing.B, lp *lanesPlatform, bigConn string, seed int64) webhookRun {
	cfgs := []load.Config{
		lb.loadConfig(lp.env.url, lp.sim.ClientSecret(), bigConn, lp.sim.Default().Info().URL, lp.sim.Default().Info().ID, seed),
		lb.loadConfig(lp.env.url, lp.sim.ClientSecret(), "conn-other", otherSite, "", seed+1000),
	}
	res := make([]*load.Result, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = load.Run(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return webhookRun{syncConn: res[0], otherOrg: res[1]}
}

// measure matches a run's deliveries to their events; lost counts final
// versions without an event and deliveries not answered 2xx.
func measure(probe *load.Probe, r *load.Result) (load.Latency, int) {
	lat := probe.Measure(r, 60*time.Second)
	sum := r.Summary()
	return lat, lat.Missing + sum.Sent - sum.OK
}

// sentBefore is the part of a run whose requests started before t.
func sentBefore(r *load.Result, t time.Time) *load.Result {
	out := &load.Result{Config: r.Config, Start: r.Start, End: r.End}
	for _, s := range r.Sends {
		if s.Start.Before(t) {
			out.Sends = append(out.Sends, s)
		}
	}
	return out
}

// sentBetween is the part of a run whose requests started in [from, to).
func sentBetween(r *load.Result, from, to time.Time) *load.Result {
	out := &load.Result{Config: r.Config, Start: r.Start, End: r.End}
	for _, s := range r.Sends {
		if !s.Start.Before(from) && s.Start.Before(to) {
			out.Sends = append(out.Sends, s)
		}
	}
	return out
}

// logTimeline logs the latencies of each window of the run (LANES_TIMELINE=1),
// to tell a steady delay from stalls.
func logTimeline(b *testing.B, probe *load.Probe, run webhookRun, window time.Duration) {
	start := run.syncConn.Start
	for from := start; from.Before(run.syncConn.End); from = from.Add(window) {
		to := from.Add(window)
		big := probe.Measure(sentBetween(run.syncConn, from, to), 0)
		other := probe.Measure(sentBetween(run.otherOrg, from, to), 0)
		b.Logf("t=%5.1fs org-big p50 %7.1fms p99 %7.1fms max %7.1fms | org-other p50 %7.1fms p99 %7.1fms max %7.1fms",
			from.Sub(start).Seconds(), msf(big.P50), msf(big.P99), msf(big.Max), msf(other.P50), msf(other.P99), msf(other.Max))
	}
}

func (lp *lanesPlatform) addOther(b *testing.B) {
	c := newConnection("conn-other", orgOther)
	c.SiteURL = otherSite
	if err := lp.env.p.Store().CreateConnection(context.Background(), c); err != nil {
		b.Fatal(err)
	}
}

// baseline is the webhook load with nothing syncing; org-big's connection
// is stored directly, as its OAuth consent would start a sync.
func (lb lanesBench) baseline(b *testing.B, iter int) webhookFigures {
	lp := startLanesPlatform(b, 1, 1)
	defer lp.stop(b)
	lp.addOther(b)
	c := newConnection("conn-big", orgBig)
	c.SiteURL = lp.sim.Default().Info().URL
	if err := lp.env.p.Store().CreateConnection(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	probe, err := load.StartProbe(lp.env.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer probe.Close()
	run := lb.sendWebhooks(b, lp, c.ID, int64(2*iter+1))
	var f webhookFigures
	var lost int
	f.syncConn, lost = measure(probe, run.syncConn)
	f.lost += lost
	f.otherOrg, lost = measure(probe, run.otherOrg)
	f.lost += lost
	b.Logf("baseline: org-big p50 %v p99 %v, org-other p50 %v p99 %v, lost %d",
		f.syncConn.P50, f.syncConn.P99, f.otherOrg.P50, f.otherOrg.P99, f.lost)
	return f
}

// smallAlone times the small tenant's full sync on a platform of its own.
func (lb lanesBench) smallAlone(b *testing.B) smallResult {
	lp := startLanesPlatform(b, 1, lb.small)
	defer lp.stop(b)
	defer profileSmall(b, "alone")()
	took, err := lp.smallSync(lb.small, lp.sim.Default().ProjectKeys()[:1], 10*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("small alone: %d issues stored in %v", lb.small, took.took)
	return took
}

type smallResult struct {
	// took is until its records were all stored; crawl until its sync
	// ended (every record published).
	took, crawl time.Duration
	stored      time.Time
	err         error
}

// smallSync connects org-small to the projects and waits for its full sync.
func (lp *lanesPlatform) smallSync(issues int, projects []string, within time.Duration) (smallResult, error) {
	id, sent, err := lp.connect(keySmall, projects)
	if err != nil {
		return smallResult{}, err
	}
	synced, stored, err := lp.waitStored(orgSmall, id, issues, within)
	if err != nil {
		return smallResult{}, err
	}
	return smallResult{took: stored.Sub(sent), crawl: synced.Sub(sent), stored: stored}, nil
}

// duringFigures are the during phase's.
type duringFigures struct {
	webhookFigures
	// wholeRun is org-big's connection over all its webhooks, including
	// any sent after the big sync's records were stored.
	wholeRun load.Latency
	// overlap is the share of webhooks sent before the big sync's records
	// were all stored.
	overlap           float64
	small, smallCrawl time.Duration
	// smallBeforeBig: the small sync's records were stored before the big
	// one's.
	smallBeforeBig     bool
	bigSync, bigStored time.Duration
}

// bigProgress is when the big sync completed (its last record published)
// and when its records were all stored.
type bigProgress struct {
	synced, stored time.Time
	err            error
}

// watchBig polls the big connection until its records are all stored.
func (lp *lanesPlatform) watchBig(id string, issues int, within time.Duration) bigProgress {
	var d bigProgress
	db, err := sql.Open("sqlite", "file:"+lp.dbPath+"?mode=ro")
	if err != nil {
		d.err = err
		return d
	}
	defer db.Close()
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.err = fmt.Errorf("the big sync's records were not all stored within %v", within)
			return d
		}
		st, err := lp.lastSync(orgBig, id)
		if err != nil {
			d.err = err
			return d
		}
		if st == "" || st == "RUNNING" {
			continue
		}
		if st != "COMPLETED" {
			d.err = fmt.Errorf("the big sync ended %s", st)
			return d
		}
		if d.synced.IsZero() {
			d.synced = time.Now()
		}
		t, c, err := counts(db, orgBig, id)
		if err != nil {
			d.err = err
			return d
		}
		if t == issues && c == 3*issues {
			d.stored = time.Now()
			return d
		}
	}
}

// lastRawSeq is RAW's last sequence number: how many messages were ever
// published to it, whatever its retention.
func lastRawSeq(b *testing.B, js jetstream.JetStream) uint64 {
	s, err := js.Stream(context.Background(), broker.StreamRaw)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State.LastSeq
}

// during runs the big full sync and, meanwhile, the webhook load and the
// small tenant's full sync.
func (lb lanesBench) during(b *testing.B, iter int) duringFigures {
	lp := startLanesPlatform(b, lb.issues/lb.small, lb.small)
	defer lp.stop(b)
	lp.addOther(b)
	probe, err := load.StartProbe(lp.env.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer probe.Close()
	if dir := os.Getenv("LANES_PROFILE"); dir != "" {
		defer profileDuring(b, dir)()
	}
	bigID, bigStart, err := lp.connect(keyBig, nil)
	if err != nil {
		b.Fatal(err)
	}
	bigCh := make(chan bigProgress, 1)
	go func() { bigCh <- lp.watchBig(bigID, lb.issues, 20*time.Minute) }()

	// The webhooks start once the big sync publishes.
	for deadline := time.Now().Add(2 * time.Minute); lastRawSeq(b, lp.env.p.JetStream()) < 1000; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the big sync published nothing within 2 minutes")
		}
	}
	smallCh := make(chan smallResult, 1)
	go func() {
		time.Sleep(lb.smallDelay)
		stop := profileSmall(b, "during")
		r, err := lp.smallSync(lb.small, lp.sim.Default().ProjectKeys()[:1], 15*time.Minute)
		stop()
		r.err = err
		smallCh <- r
	}()
	run := lb.sendWebhooks(b, lp, bigID, int64(2*iter+2))
	var f duringFigures
	var lost int
	f.wholeRun, lost = measure(probe, run.syncConn)
	f.lost += lost
	_, lost = measure(probe, run.otherOrg)
	f.lost += lost
	small := <-smallCh
	if small.err != nil {
		b.Fatal(small.err)
	}
	big := <-bigCh
	if big.err != nil {
		b.Fatal(big.err)
	}
	f.small, f.smallCrawl = small.took, small.crawl
	f.bigSync, f.bigStored = big.synced.Sub(bigStart), big.stored.Sub(bigStart)
	f.smallBeforeBig = small.stored.Before(big.stored)
	// Only the webhooks sent while the big sync's records were still
	// arriving count as "during". Each delivery of a run is a version of
	// its own issue or a duplicate, so a subset's final versions all have
	// their events and a short wait suffices.
	syncConn, otherOrg := sentBefore(run.syncConn, big.stored), sentBefore(run.otherOrg, big.stored)
	f.syncConn = probe.Measure(syncConn, time.Second)
	f.otherOrg = probe.Measure(otherOrg, time.Second)
	if n := len(run.syncConn.Sends) + len(run.otherOrg.Sends); n > 0 {
		f.overlap = float64(len(syncConn.Sends)+len(otherOrg.Sends)) / float64(n)
	}
	b.Logf("during: org-big p50 %v p99 %v (whole run p99 %v), org-other p50 %v p99 %v, overlap %.2f, lost %d; small sync %v; big sync %v, stored %v",
		f.syncConn.P50, f.syncConn.P99, f.wholeRun.P99, f.otherOrg.P50, f.otherOrg.P99, f.overlap, f.lost, f.small, f.bigSync, f.bigStored)
	if os.Getenv("LANES_TIMELINE") != "" {
		logTimeline(b, probe, run, 2*time.Second)
	}
	return f
}

// profileDuring writes CPU and block profiles of the during phase to dir
// (LANES_PROFILE=dir): the live lane's delay is mostly waiting, which only
// the block profile shows.
func profileDuring(b *testing.B, dir string) (stop func()) {
	f, err := os.Create(filepath.Join(dir, "lanes-cpu.pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		bf, err := os.Create(filepath.Join(dir, "lanes-block.pprof"))
		if err != nil {
			b.Fatal(err)
		}
		defer bf.Close()
		if err := pprof.Lookup("block").WriteTo(bf, 0); err != nil {
			b.Fatal(err)
		}
		runtime.SetBlockProfileRate(0)
	}
}

// profileSmall CPU-profiles the small tenant's sync (LANES_PROFILE_SMALL=dir)
// until stop is called; without the variable it does nothing. It must not
// overlap profileDuring: a process has one CPU profile at a time.
func profileSmall(b *testing.B, phase string) (stop func()) {
	dir := os.Getenv("LANES_PROFILE_SMALL")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, "small-"+phase+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func envInt(b *testing.B, key string, def int) int {
	if v := os.Getenv(key); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", key, v)
		}
		return n
	}
	return def
}
