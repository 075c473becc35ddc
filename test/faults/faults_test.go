//go:build faults

package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
	"github.com/itsmhub/itsm/services/normalizer"
	"github.com/itsmhub/itsm/services/receiver"
)

// TestNormalizerKilledMidStream runs the normalizer as its own process
// (cmd/normalizer) and SIGKILLs it twice under load. NATS and the receiver
// live on in the test process. Whatever the killed process had fetched and
// not acked is redelivered after AckWait; whatever it wrote and did not
// publish is republished (the ITSM stream's dedupe drops a second copy).
func TestNormalizerKilledMidStream(t *testing.T) {
	dir := t.TempDir()
	nsrv, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), Users: testUsers()})
	require.NoError(t, err)
	t.Cleanup(nsrv.Shutdown)
	natsURL := nsrv.ClientURL()
	storePath := filepath.Join(dir, "itsm.db")
	// The receiver waits for the normalizer's streams and buckets; the test
	// makes them.
	js := connect(t, natsURL)
	require.NoError(t, broker.EnsureStreams(context.Background(), js, 1))
	require.NoError(t, broker.EnsureBuckets(context.Background(), js, 1))
	p := startPlatform(t, devConfig(t, natsURL, storePath), app.Components{Receiver: true}, logger(t))
	addConnection(t, p.Store())
	sn := addServiceNow(t, p.Connections())

	bin := buildNormalizer(t)
	env := []string{"ITSM_DEV=true", "ITSM_NATS_URL=" + natsURL,
		broker.PasswordEnv(broker.UserNormalizer) + "=" + testUsers()[broker.UserNormalizer], "ITSM_STORE=" + storePath,
		"ITSM_HTTP_ADDR=127.0.0.1:0", "ITSM_METRICS_ADDR=127.0.0.1:0", "ITSM_DATA_DIR=" + filepath.Join(dir, "normalizer"), "ITSM_LOG_LEVEL=warn"}
	logPath := filepath.Join(reportDir, t.Name()+".normalizer.log")
	_ = os.Remove(logPath)
	norm := startNormalizerProc(t, bin, env, logPath)

	loadDone := runLoads(t, loadConfigs("http://"+p.HTTPAddr(), sn, 250, 24*time.Second))
	for kill := 1; kill <= 2; kill++ {
		time.Sleep(7 * time.Second)
		norm.kill()
		t.Logf("normalizer killed with SIGKILL (%d); RAW holds %d messages", kill, streamMsgs(t, js, broker.StreamRaw))
		time.Sleep(time.Second)
		norm = startNormalizerProc(t, bin, env, logPath)
	}
	res := <-loadDone
	// Messages the killed processes held come back after AckWait (30 s).
	drain(t, js, 2*time.Minute)
	cs := verifyAll(t, p.Store(), js, res)
	report(t, "normalizer SIGKILLed twice under load (at ~7 s and ~15 s), restarted 1 s later", res, cs)
	requireNoLoss(t, cs)
	for _, c := range cs {
		require.Equal(t, c.Accepted, c.Sent, "%s: the receiver does not depend on the normalizer: every delivery is accepted", c.Vendor)
	}
}

// TestNATSRestartUnderLoad stops the (only) NATS server under load and
// starts it again on the same port and store dir. Deliveries during the
// outage get 503 (Jira retries them); the services reconnect by themselves.
func TestNATSRestartUnderLoad(t *testing.T) {
	dir := t.TempDir()
	ncfg := broker.EmbeddedConfig{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), StoreDir: filepath.Join(dir, "nats"), Users: testUsers()}
	var mu sync.Mutex
	nsrv, err := broker.StartEmbedded(ncfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if nsrv != nil {
			nsrv.Shutdown()
		}
	})
	natsURL := "nats://" + ncfg.Addr
	p := startPlatform(t, devConfig(t, natsURL, filepath.Join(dir, "itsm.db")),
		app.Components{Receiver: true, Normalizer: true}, logger(t))
	addConnection(t, p.Store())
	sn := addServiceNow(t, p.Connections())
	js := connect(t, natsURL)

	loadDone := runLoads(t, loadConfigs("http://"+p.HTTPAddr(), sn, 250, 26*time.Second))
	time.Sleep(8 * time.Second)
	mu.Lock()
	nsrv.Shutdown()
	nsrv = nil
	mu.Unlock()
	down := time.Now()
	t.Log("NATS stopped")
	// Longer than the receiver's publish timeout (5 s), so some requests
	// must be refused rather than held until NATS is back.
	time.Sleep(6 * time.Second)
	mu.Lock()
	nsrv, err = broker.StartEmbedded(ncfg)
	mu.Unlock()
	require.NoError(t, err)
	up := time.Now()
	t.Logf("NATS started again after %v", up.Sub(down).Round(time.Millisecond))
	res := <-loadDone
	drain(t, js, time.Minute)
	cs := verifyAll(t, p.Store(), js, res)
	report(t, "NATS (single node, file store) shut down at ~8 s, started again 6 s later on the same port and dir", res, cs,
		acceptedAfterNote(res, up.Add(5*time.Second), "from 5 s after the restart on"))
	requireNoLoss(t, cs)
	requireServedAfter(t, res, up.Add(5*time.Second), "the receiver serves again after NATS is back")
}

// faultyStore is the real SQLite store behind a switch: while down, every
// call fails, as a MongoDB primary election or a network partition would
// make it. SQLite cannot really go away (and root ignores file
// permissions), so the outage is injected here.
type faultyStore struct {
	*sqlitestore.Store
	mu   sync.RWMutex
	down bool
}

func (f *faultyStore) check() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.down {
		return errors.New("injected fault: store unavailable")
	}
	return nil
}

func (f *faultyStore) setDown(v bool) {
	f.mu.Lock()
	f.down = v
	f.mu.Unlock()
}

func (f *faultyStore) Put(ctx context.Context, d *store.Document) (store.Outcome, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Store.Put(ctx, d)
}

func (f *faultyStore) Insert(ctx context.Context, d *store.Document) (store.Outcome, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Store.Insert(ctx, d)
}

func (f *faultyStore) Get(ctx context.Context, org string, kind itsm.Kind, id string) (*store.Document, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, org, kind, id)
}

func (f *faultyStore) GetByIdentifier(ctx context.Context, org string, kind itsm.Kind, ident string) (*store.Document, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.GetByIdentifier(ctx, org, kind, ident)
}

func (f *faultyStore) List(ctx context.Context, flt store.Filter) (store.Page, error) {
	if err := f.check(); err != nil {
		return store.Page{}, err
	}
	return f.Store.List(ctx, flt)
}

func (f *faultyStore) MarkSeen(ctx context.Context, org string, kind itsm.Kind, id, syncID string) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.MarkSeen(ctx, org, kind, id, syncID)
}

func (f *faultyStore) LookupConnection(ctx context.Context, id string) (*store.Connection, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.LookupConnection(ctx, id)
}

func (f *faultyStore) FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.FindConnections(ctx, q)
}

func (f *faultyStore) LookupAPIKey(ctx context.Context, hash []byte) (*store.APIKey, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.LookupAPIKey(ctx, hash)
}

func (f *faultyStore) Ping(ctx context.Context) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

// storeOutage is FAULT_STORE_OUTAGE, 30 s by default (the figure);
// shorten it for a quick local run.
func storeOutage(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("FAULT_STORE_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "FAULT_STORE_OUTAGE")
		return d
	}
	return 30 * time.Second
}

// TestStoreUnavailable makes the store fail every call for 30 s under load,
// for the receiver and the normalizer alike. The receiver keeps accepting
// while its cached connection lookups last, then answers 5xx (Jira
// retries); the normalizer Naks with backoff and must neither lose nor
// dead-letter anything. MaxDeliver is raised so the retries outlast the
// outage: with the default (5) a 30 s outage would dead-letter messages,
// and the DLQ would be the safety net: dead-lettered messages keep the record and the error.
func TestStoreUnavailable(t *testing.T) {
	outage := storeOutage(t)
	dir := t.TempDir()
	nsrv, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), Users: testUsers()})
	require.NoError(t, err)
	t.Cleanup(nsrv.Shutdown)
	js := connect(t, nsrv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, broker.EnsureStreams(ctx, js, 1))
	sq, err := sqlitestore.Open(ctx, filepath.Join(dir, "itsm.db"))
	require.NoError(t, err)
	t.Cleanup(func() { sq.Close() })
	st := &faultyStore{Store: sq}
	addConnection(t, st)
	log := logger(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mgr := serviceNowManager(t, js, st, "http://"+ln.Addr().String(), log)
	sn := addServiceNow(t, mgr)

	jv, err := jiraconn.NewVerifier(jiraconn.VerifierConfig{ClientSecret: []byte(config.DevClientSecret)})
	require.NoError(t, err)
	r, err := receiver.New(receiver.Config{Verifiers: map[string]receiver.DeliveryVerifier{
		jira.VendorName: jv, servicenow.VendorName: snconn.NewVerifier(mgr.Credentials)}}, js, st,
		apikey.NewAuthenticator(st, nil), log.Named("receiver"), nil)
	require.NoError(t, err)
	// Retries back off from 200 ms to at most 5 s: 6 attempts cover the
	// first ~6 s, then one per 5 s; 12 more than that leaves a wide margin.
	maxDeliver := int(outage/(5*time.Second)) + 18
	n, err := normalizer.New(normalizer.Config{Workers: 8, MaxDeliver: maxDeliver,
		RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 5 * time.Second,
		Mappers: map[string]normalizer.Mapper{broker.VendorToken(jira.VendorName): jira.Mapper{},
			broker.VendorToken(servicenow.VendorName): servicenow.Mapper{}}},
		js, st, log.Named("normalizer"), prometheus.NewRegistry())
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.Run(ctx, ln, 10*time.Second) }()
	go func() { defer wg.Done(); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	lead, tail := 6*time.Second, 10*time.Second
	loadDone := runLoads(t, loadConfigs("http://"+ln.Addr().String(), sn, 250, lead+outage+tail))
	time.Sleep(lead)
	st.setDown(true)
	t.Logf("store down for %v (normalizer MaxDeliver %d)", outage, maxDeliver)
	time.Sleep(outage)
	st.setDown(false)
	up := time.Now()
	t.Log("store back")
	res := <-loadDone
	drain(t, js, 2*time.Minute)
	cs := verifyAll(t, st, js, res)
	report(t, fmt.Sprintf("store (SQLite behind a fault switch) failing every call for %v at ~6 s, receiver and normalizer alike; normalizer MaxDeliver %d", outage, maxDeliver), res, cs,
		acceptedAfterNote(res, up, "after the store came back"))
	requireNoLoss(t, cs)
	requireServedAfter(t, res, up, "the receiver serves again after the store is back")
}

// TestClusterLosesANode runs three JetStream servers clustered on loopback
// with R3 streams, and shuts down the RAW stream's leader under load. The
// services know all three URLs; the remaining two keep quorum.
func TestClusterLosesANode(t *testing.T) {
	servers := startCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	natsURL := strings.Join(urls, ",")
	js := connect(t, natsURL)
	waitJetStream(t, js)
	cfg := devConfig(t, natsURL, filepath.Join(t.TempDir(), "itsm.db"))
	cfg.NATSReplicas = 3
	p := startPlatform(t, cfg, app.Components{Receiver: true, Normalizer: true}, logger(t))
	addConnection(t, p.Store())
	sn := addServiceNow(t, p.Connections())

	loadDone := runLoads(t, loadConfigs("http://"+p.HTTPAddr(), sn, 150, 24*time.Second))
	time.Sleep(8 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	raw, err := js.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	info, err := raw.Info(ctx)
	cancel()
	require.NoError(t, err)
	require.NotNil(t, info.Cluster)
	require.Len(t, info.Cluster.Replicas, 2, "RAW is R3")
	leader := info.Cluster.Leader
	var lost time.Time
	for _, s := range servers {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
			lost = time.Now()
		}
	}
	require.False(t, lost.IsZero(), "RAW leader %q not found", leader)
	t.Logf("RAW stream leader %s shut down", leader)
	res := <-loadDone
	drain(t, js, time.Minute)
	cs := verifyAll(t, p.Store(), js, res)
	report(t, fmt.Sprintf("3-node JetStream cluster, streams R3; the RAW leader (%s) shut down at ~8 s", leader), res, cs,
		acceptedAfterNote(res, lost.Add(5*time.Second), "from 5 s after the node loss on"))
	requireNoLoss(t, cs)
	requireServedAfter(t, res, lost.Add(5*time.Second), "the cluster serves on two nodes")
}

// startCluster runs n clustered JetStream servers in-process, with routes
// on loopback ports picked up front (each must know the others').
func startCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i]))
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "itsm-faults", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
			Users:   broker.ServerUsers(testUsers()), MaxPayload: broker.MaxPayload,
		})
		require.NoError(t, err)
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers[i] = s
	}
	for _, s := range servers {
		require.True(t, s.ReadyForConnections(15*time.Second), "cluster node not ready")
	}
	return servers
}

// waitJetStream waits for the cluster's JetStream meta leader: until then
// stream creation fails.
func waitJetStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
