package backfill

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vault"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasync"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/services/normalizer"
)

// harness is the platform minus the receiver, on real parts: the Jira
// simulator (on a manual clock shared by everything), an embedded NATS
// JetStream, a SQLite store, the real normalizer and the real connection
// manager (OAuth against the simulator, token refresh). Webhooks are
// dropped (no receiver runs), so only syncs bring data in.
type harness struct {
	t   testing.TB
	ctx context.Context
	sim *jirasim.Server
	// clock is the manual clock everything shares, unless the caller gave
	// the simulator a clock of its own (benchmarks run on real time).
	clock *jirasim.ManualClock
	now   func() time.Time
	// What a worker in another process needs to join (benchmark).
	natsURL, dbPath string
	vaultKey        []byte
	// noNormalizer leaves RAW unconsumed until startNormalizer is called
	// (to time the worker and the normalizer each alone).
	noNormalizer    bool
	startNormalizer func()
	normalizers     sync.WaitGroup
	// embedded runs the normalizer as the embedded platform does (see
	// normalizer.Config.Embedded), with normalizerWorkers (0: its default).
	embedded          bool
	normalizerWorkers int
	// normalizerYield, when set, runs before each message the normalizer
	// takes (to slow it down so that pacing binds).
	normalizerYield normalizer.Yielder
	js              jetstream.JetStream
	st              store.Store
	mgr             *connections.Manager
	log             *zap.Logger
	reqs            *Requester
	// apiURL is where Jira clients go: the simulator, or a proxy in front.
	apiURL string
}

const testStateKey = "0123456789abcdef0123456789abcdef"

func newHarness(t testing.TB, opts jirasim.Options, mods ...func(h *harness)) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, ctx: ctx}
	if opts.Clock == nil {
		h.clock = jirasim.NewManualClock(time.Now().UTC())
		opts.Clock = h.clock
	}
	h.now = opts.Clock.Now
	opts.MaxRetries = -1 // a dropped webhook is not retried
	opts.Faults.DropProb = 1
	h.sim = jirasim.NewTestServer(t, opts)
	h.apiURL = h.sim.URL()
	for _, m := range mods {
		m(h)
	}
	lvl := zap.WarnLevel
	if os.Getenv("BACKFILL_TEST_DEBUG") != "" { // every log line of the run
		lvl = zap.DebugLevel
	}
	h.log = zaptest.NewLogger(t, zaptest.Level(lvl))

	dir := t.TempDir()
	users := broker.NewUsers()
	ns, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), Users: users})
	require.NoError(t, err)
	nc, err := ns.Connect(broker.UserAdmin, "backfill-test")
	require.NoError(t, err)
	h.js, err = jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, broker.EnsureStreams(ctx, h.js, 1))
	// As the normalizer's user does at start: a worker in its own process
	// (benchmarks) connects as the backfill user, who may not create them.
	require.NoError(t, broker.EnsureBuckets(ctx, h.js, 1))
	// The benchmark's worker process connects by URL, as the backfill user.
	natsURL, err := url.Parse(ns.ClientURL())
	require.NoError(t, err)
	natsURL.User = url.UserPassword(broker.UserBackfill, users[broker.UserBackfill])
	h.natsURL, h.dbPath = natsURL.String(), filepath.Join(dir, "itsm.db")
	st, err := sqlitestore.Open(ctx, h.dbPath)
	require.NoError(t, err)
	h.st = st

	leases, err := lease.Open(ctx, h.js, "itsm_leases", "test", 30*time.Second, 1)
	require.NoError(t, err)
	h.vaultKey = vault.NewKey()
	v, err := vault.New(h.vaultKey)
	require.NoError(t, err)
	h.reqs = NewRequester(h.js)
	h.mgr, err = connections.New(connections.Config{
		// Nobody listens there: every webhook delivery fails (dropped).
		PublicURL: "http://127.0.0.1:9", Connectors: jiraConnectors(h.endpoints(), h.sim.ClientID(), h.sim.ClientSecret(), h.now),
		StateKey: []byte(testStateKey), Now: h.now,
	}, st, v, leases, h.reqs, h.log.Named("connections"))
	require.NoError(t, err)

	ncfg := normalizer.Config{Workers: 4, Now: h.now}
	if h.embedded {
		ncfg = normalizer.Config{Workers: h.normalizerWorkers, Now: h.now}.Embedded()
	}
	ncfg.Mappers = map[string]normalizer.Mapper{"jira": jira.Mapper{}, "servicenow": servicenow.Mapper{}}
	ncfg.Yield = h.normalizerYield
	n, err := normalizer.New(ncfg, h.js, st, h.log.Named("normalizer"), nil)
	require.NoError(t, err)
	h.startNormalizer = sync.OnceFunc(func() {
		h.normalizers.Add(1)
		go func() {
			defer h.normalizers.Done()
			if err := n.Run(ctx); err != nil {
				t.Errorf("normalizer: %v", err)
			}
		}()
	})
	if !h.noNormalizer {
		h.startNormalizer()
	}
	t.Cleanup(func() {
		cancel()
		h.normalizers.Wait()
		_ = nc.Drain()
		ns.Shutdown()
		_ = st.Close()
	})
	return h
}

// jiraConnectors is Jira's connector of the connection lifecycle, as the
// wiring builds it.
func jiraConnectors(ep jiracloud.Endpoints, clientID, clientSecret string, now func() time.Time) []connections.Connector {
	jc := jiraconn.New(jiraconn.Config{Endpoints: ep, ClientID: clientID, ClientSecret: clientSecret, Now: now})
	return []connections.Connector{{Vendor: jira.VendorName, Title: jiraconn.Title, Authorizer: jc, Webhooks: jc, Mappings: jc, Options: jiraconn.Options}}
}

func (h *harness) endpoints() jiracloud.Endpoints {
	return jiracloud.Endpoints{AuthURL: h.sim.URL(), APIURL: h.apiURL}
}

// connect creates a connection and completes OAuth like a customer would;
// the confirmation requests the first full sync.
func (h *harness) connect(org string, opts connections.Options) *store.Connection {
	h.t.Helper()
	c, authURL, err := h.mgr.Create(h.ctx, org, connections.CreateRequest{Vendor: "JIRA", Options: opts})
	require.NoError(h.t, err)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(authURL)
	require.NoError(h.t, err)
	resp.Body.Close()
	require.Equal(h.t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(h.t, err)
	consent, err := h.mgr.Callback(h.ctx, loc.Query().Get("code"), loc.Query().Get("state"))
	require.NoError(h.t, err)
	c, err = h.mgr.Confirm(h.ctx, consent.FormToken, consent.BrowserKey, true)
	require.NoError(h.t, err)
	require.Equal(h.t, store.StateActive, c.State)
	return c
}

// testConfig is a worker configuration scaled for tests: the worker's and
// its Jira connector's.
type testConfig struct {
	Config
	jira jirasync.Config
}

func newTestConfig() testConfig {
	return testConfig{Config: Config{Tick: 50 * time.Millisecond, ProgressEvery: 100 * time.Millisecond},
		jira: jirasync.Config{SearchPageSize: 25}}
}

type workerOpt func(*Config, *Deps, *Worker)

// startWorker runs a worker until the test ends (or stop is called; a
// stop with errHalt kills it the way a crash would).
func (h *harness) startWorker(owner string, ttl time.Duration, tc testConfig, opts ...workerOpt) (w *Worker, stop context.CancelCauseFunc) {
	h.t.Helper()
	leases, err := lease.Open(h.ctx, h.js, LeaseBucket, owner, ttl, 1)
	require.NoError(h.t, err)
	cfg := tc.Config
	jcfg := tc.jira
	jcfg.Endpoints = h.endpoints()
	d := Deps{JS: h.js, Store: h.st, Leases: leases, Log: h.log.Named(owner), Registerer: prometheus.NewRegistry(), Now: h.now,
		Syncers: map[string]Syncer{jira.VendorName: jirasync.New(jcfg, h.mgr, h.log.Named(owner))}}
	for _, o := range opts {
		o(&cfg, &d, nil)
	}
	w = New(cfg, d)
	for _, o := range opts {
		o(&cfg, &d, w)
	}
	ctx, cancel := context.WithCancelCause(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			h.t.Errorf("worker %s: %v", owner, err)
		}
	}()
	var once sync.Once
	stop = func(cause error) {
		once.Do(func() {
			cancel(cause)
			<-done
		})
	}
	h.t.Cleanup(func() { stop(context.Canceled) })
	return w, stop
}

func (h *harness) conn(id string) *store.Connection {
	h.t.Helper()
	c, err := h.st.LookupConnection(h.ctx, id)
	require.NoError(h.t, err)
	return c
}

// waitSync waits until the connection's last sync satisfies cond.
func (h *harness) waitSync(id string, within time.Duration, what string, cond func(ls *store.SyncState) bool) *store.SyncState {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ls := h.conn(id).Detail.LastSync; ls != nil && cond(ls) {
			return ls
		}
		if time.Now().After(deadline) {
			ls := h.conn(id).Detail.LastSync
			h.t.Fatalf("not within %v: %s (last sync: %+v)", within, what, ls)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFull waits for a full sync other than notID to end.
func (h *harness) waitFull(id, notID string, within time.Duration) *store.SyncState {
	h.t.Helper()
	return h.waitSync(id, within, "a full sync ends", func(ls *store.SyncState) bool {
		return ls.Kind == store.SyncFull && ls.ID != notID && ls.Status != store.SyncRunning
	})
}

// drained waits until the normalizer has processed everything in RAW.
func (h *harness) drained(within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if idle, err := normalizer.Idle(h.ctx, h.js); err == nil && idle {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("normalizer not drained within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) doc(c *store.Connection, kind itsm.Kind, vendorID string) *store.Document {
	h.t.Helper()
	d, err := h.st.Get(h.ctx, c.OrganizationID, kind, itsm.ObjectID(c.ID, kind, vendorID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	require.NoError(h.t, err)
	return d
}

// count lists a kind's documents of the connection.
func (h *harness) count(c *store.Connection, kind itsm.Kind, deleted bool) int {
	h.t.Helper()
	n := 0
	f := store.Filter{OrganizationID: c.OrganizationID, ConnectionID: c.ID, Kind: kind, Limit: store.MaxLimit}
	for {
		p, err := h.st.List(h.ctx, f)
		require.NoError(h.t, err)
		for _, d := range p.Docs {
			if d.Deleted == deleted {
				n++
			}
		}
		if p.NextCursor == "" {
			return n
		}
		f.Cursor = p.NextCursor
	}
}

// rawCount is the number of messages on a connection's sync subject.
func (h *harness) rawCount(connID string) uint64 {
	h.t.Helper()
	s, err := h.js.Stream(h.ctx, broker.StreamRaw)
	require.NoError(h.t, err)
	subj := broker.RawSubject(broker.VendorToken("JIRA"), connID, broker.SourceSync)
	info, err := s.Info(h.ctx, jetstream.WithSubjectFilter(subj))
	require.NoError(h.t, err)
	return info.State.Subjects[subj]
}

// update changes a stored connection (the test plays an operator).
func (h *harness) update(id string, fn func(c *store.Connection)) {
	h.t.Helper()
	c := h.conn(id)
	fn(c)
	require.NoError(h.t, h.st.UpdateConnection(h.ctx, c))
}

// ticketByKey is the stored ticket of a Jira issue key.
func (h *harness) ticketByKey(c *store.Connection, key string) *store.Document {
	h.t.Helper()
	d, err := h.st.GetByIdentifier(h.ctx, c.OrganizationID, itsm.KindTicket, key)
	require.NoError(h.t, err)
	return d
}

func (h *harness) get(d *store.Document) *store.Document {
	h.t.Helper()
	got, err := h.st.Get(h.ctx, d.OrganizationID, d.Kind, d.ID)
	require.NoError(h.t, err)
	return got
}

// leases opens the sync lease bucket with the TTL the workers use (opening
// it with another TTL would change the bucket).
func (h *harness) leases(ttl time.Duration) *lease.Leases {
	h.t.Helper()
	l, err := lease.Open(h.ctx, h.js, LeaseBucket, "probe", ttl, 1)
	require.NoError(h.t, err)
	return l
}

// quotaProxy sits in front of the simulator's API and answers every REST
// call of one site with a quota 429, as Jira does when a tenant's hourly
// points are spent (JIRA.md §6); the simulator only refuses bursts.
type quotaProxy struct {
	cloudID    atomic.Value // string; "" = pass everything
	retryAfter string
}

func (q *quotaProxy) install(h *harness) {
	target, err := url.Parse(h.sim.URL())
	require.NoError(h.t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	q.cloudID.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, _ := q.cloudID.Load().(string); id != "" && strings.HasPrefix(r.URL.Path, "/ex/jira/"+id+"/rest/") {
			w.Header().Set("Retry-After", q.retryAfter)
			w.Header().Set("RateLimit-Reason", "jira-quota-tenant-based")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errorMessages":["Rate limit exceeded."],"errors":{}}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	h.t.Cleanup(srv.Close)
	h.apiURL = srv.URL
}
