//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vault"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
	"github.com/itsmhub/itsm/services/normalizer"
)

const (
	connID = "conn-1"
	orgID  = "org-a"
	site   = "https://acme.atlassian.net"
	// reportDir keeps each test's counts table (for the README) and its
	// logs (for a failure's post-mortem) after the temp dirs are gone.
	reportDir = "/tmp/itsm-faults"
)

// snConnection is the ServiceNow connection of a fault test: its id, its
// push secret and its instance.
type snConnection struct{ id, secret, instance string }

// loadConfigs are the traffic of every fault test: a Jira load and a
// ServiceNow push load side by side, each at half the rate, so the platform
// takes the same total load as with one vendor. Several versions per ticket
// so the version guard is exercised, repeated deliveries (Jira's retries
// keep their identifier; a repeated ServiceNow push is the same body) and
// reordering within a window.
func loadConfigs(url string, sn snConnection, rate float64, d time.Duration) []load.Config {
	jc := load.Config{URL: url, Vendor: load.VendorJira, Conn: connID, Secret: config.DevClientSecret, Site: site,
		Rate: rate / 2, Concurrency: 16, Duration: d, Issues: 750, DupProb: 0.05, ReorderWindow: 8,
		Timeout: 20 * time.Second}
	sc := jc
	sc.Vendor, sc.Conn, sc.Secret, sc.Site, sc.Seed = load.VendorServiceNow, sn.id, sn.secret, sn.instance, 1
	return []load.Config{jc, sc}
}

// runLoads starts the loads in the background; their results arrive, in
// the order of cfgs, when the last one ends.
func runLoads(t *testing.T, cfgs []load.Config) <-chan []*load.Result {
	t.Helper()
	out := make(chan []*load.Result, 1)
	go func() {
		res := make([]*load.Result, len(cfgs))
		var wg sync.WaitGroup
		for i, cfg := range cfgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := load.Run(context.Background(), cfg)
				if err != nil {
					t.Errorf("%s load: %v", cfg.Vendor, err)
					r = &load.Result{Config: cfg}
				}
				res[i] = r
			}()
		}
		wg.Wait()
		out <- res
	}()
	return out
}

// addServiceNow creates a ServiceNow connection of the test's organization
// the way POST /v1/connections does (the connection manager's Create):
// basic auth against the project's instance simulator, whose connection
// test makes it ACTIVE, and a push secret sealed with its credentials. The
// secret is read back by opening them, as the receiver's verifier does.
func addServiceNow(t *testing.T, mgr *connections.Manager) snConnection {
	t.Helper()
	sim := snsim.NewTestServer(t, snsim.Options{Seed: 7, Instances: []snsim.Instance{{Sizes: snsim.Sizes{
		Incidents: 5, Problems: 2, Changes: 2, RequestItems: 2, CatalogTasks: 2, Users: 4, Groups: 3}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := mgr.Create(ctx, orgID, connections.CreateRequest{Vendor: servicenow.VendorName, Options: connections.Options{
		InstanceURL: sim.BaseURL(""),
		Auth:        &connections.AuthOptions{Type: store.AuthBasic, Username: "itsm.integration", Password: "integration-password"}}})
	require.NoError(t, err)
	require.Equal(t, store.StateActive, c.State, "connection test: %s", c.Detail.Health.Description)
	cred, err := mgr.Credentials(c)
	require.NoError(t, err)
	require.NotEmpty(t, cred.PushSecret)
	return snConnection{id: c.ID, secret: cred.PushSecret, instance: c.SiteURL}
}

// serviceNowManager is a connection manager for ServiceNow alone, wired as
// the platform wires its own, for a test that runs the receiver without
// the platform: it seals and opens the connection's credentials.
func serviceNowManager(t *testing.T, js jetstream.JetStream, st connections.Store, publicURL string, log *zap.Logger) *connections.Manager {
	t.Helper()
	v, err := vault.New(vault.NewKey())
	require.NoError(t, err)
	leases, err := lease.Open(context.Background(), js, "faults-connection-leases", "faults-test", broker.LeaseTTL, 1)
	require.NoError(t, err)
	var mgr *connections.Manager
	sn := snconn.New(snconn.Config{AllowLoopback: true, PublicURL: func() string { return publicURL },
		Secrets: func(c *store.Connection) (*connections.Credentials, error) { return mgr.Credentials(c) }})
	mgr, err = connections.New(connections.Config{PublicURL: publicURL, Connectors: []connections.Connector{sn.Connector()},
		StateKey: vault.NewKey()}, st, v, leases, nil, log.Named("connections"))
	require.NoError(t, err)
	return mgr
}

// logger writes the platform's logs to reportDir/<test>.log.
func logger(t *testing.T) *zap.Logger {
	t.Helper()
	require.NoError(t, os.MkdirAll(reportDir, 0o755))
	f, err := os.Create(filepath.Join(reportDir, t.Name()+".log"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(f), zap.InfoLevel))
}

// devConfig is the platform's dev-mode configuration on loopback and a
// temp dir, against an outside NATS.
func devConfig(t *testing.T, natsURL, storePath string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) {
		if k == "ITSM_DEV" {
			return "true", true
		}
		return "", false
	})
	require.NoError(t, err)
	cfg.HTTPAddr, cfg.NATSURL, cfg.DataDir, cfg.Store = "127.0.0.1:0", natsURL, t.TempDir(), storePath
	cfg.NATSUsers = testUsers()
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

// startPlatform runs the selected components in-process until the test
// ends.
func startPlatform(t *testing.T, cfg config.Config, comps app.Components, log *zap.Logger) *app.Platform {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := app.Start(ctx, cfg, comps, log)
	require.NoError(t, err)
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := p.Wait(); err != nil {
				t.Logf("platform stopped with: %v", err)
			}
		})
	})
	return p
}

func addConnection(t *testing.T, st store.Connections) {
	t.Helper()
	now := time.Now().UTC()
	require.NoError(t, st.CreateConnection(context.Background(), &store.Connection{ID: connID, OrganizationID: orgID,
		Vendor: "JIRA", State: store.StateActive, SiteURL: site, RefreshIntervalSecs: 21600, TimeoutSecs: 1800,
		CreatedAt: now, UpdatedAt: now}))
}

// testUsers are the NATS users of every server and process of these tests.
func testUsers() broker.Users {
	u := broker.Users{}
	for _, name := range broker.AllUsers {
		u[name] = "faults-test-password-" + name
	}
	return u
}

// connect is the test's own client: it reconnects forever, like the
// services, so it survives the faults it watches.
func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("faults-test"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.UserInfo(broker.UserAdmin, testUsers()[broker.UserAdmin]))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// drain waits until the normalizer has acknowledged everything in RAW,
// including messages a killed process held (redelivered after AckWait).
func drain(t *testing.T, js jetstream.JetStream, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	settled := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		idle, err := normalizer.Idle(ctx, js)
		cancel()
		if err == nil && idle {
			// Nak'd messages waiting for redelivery count as unacked, so
			// zero means done; three readings in a row guard against a
			// consumer that moved leader (cluster) and reports late.
			if settled++; settled >= 3 {
				return
			}
		} else {
			settled = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("normalizer not drained within %v (idle %v, last error %v)", within, idle, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// streamIDs reads a whole stream with an ordered consumer and counts the
// messages per Nats-Msg-Id on subjects with the prefix.
func streamIDs(t *testing.T, js jetstream.JetStream, name, prefix string) (ids map[string]int, total int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	ids = map[string]int{}
	if info.State.Msgs == 0 {
		return ids, 0
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		n := 0
		last := uint64(0)
		for m := range batch.Messages() {
			n++
			if meta, err := m.Metadata(); err == nil {
				last = meta.Sequence.Stream
			}
			if strings.HasPrefix(m.Subject(), prefix) {
				ids[m.Headers().Get(nats.MsgIdHdr)]++
				total++
			}
		}
		require.NoError(t, batch.Error())
		if last >= info.State.LastSeq || n == 0 {
			return ids, total
		}
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// counts is what every fault test reports, per vendor.
type counts struct {
	Vendor string
	// Sent requests (repeats included), Accepted 2xx answers, and the
	// distinct (ticket, version) pairs and tickets they carried.
	Sent, Accepted, Versions, Tickets int
	// Refused: answers other than 2xx, and requests with no answer; Jira
	// retries those and ServiceNow's next sync reads the change, so they
	// may or may not be stored.
	Refused int
	// Stored: tickets whose stored version is at least the newest accepted.
	Stored int
	// Published: distinct events (Nats-Msg-Id) of this run's tickets in
	// the ITSM stream; Duplicated: their messages beyond one per id.
	Published, Duplicated int
	// Superseded: accepted versions without an event because a newer
	// version of the ticket was written first (the version guard makes an
	// older record a no-op, by design).
	Superseded int
	// Lost: accepted tickets whose newest accepted version is not stored,
	// or whose stored version has no event. Must be 0.
	Lost int
	// DLQ: dead-lettered messages of any vendor. Must be 0: no fault here
	// is permanent.
	DLQ uint64
}

// vendorTitle names a load's vendor in reports.
func vendorTitle(res *load.Result) string {
	if res.Config.Vendor == load.VendorServiceNow {
		return "ServiceNow"
	}
	return "Jira"
}

// verifyAll counts what each run's accepted deliveries became.
func verifyAll(t *testing.T, st store.Documents, js jetstream.JetStream, results []*load.Result) []counts {
	t.Helper()
	out := make([]counts, len(results))
	for i, res := range results {
		out[i] = verify(t, st, js, res)
	}
	return out
}

// verify counts what one run's accepted deliveries became.
func verify(t *testing.T, st store.Documents, js jetstream.JetStream, res *load.Result) counts {
	t.Helper()
	ctx := context.Background()
	sum := res.Summary()
	conn := res.Config.Conn
	c := counts{Vendor: vendorTitle(res), Sent: sum.Sent, Accepted: sum.OK, Refused: sum.Sent - sum.OK}
	events, _ := streamIDs(t, js, broker.StreamITSM, itsm.KindTicket.Subject())
	accepted := res.AcceptedVersions()
	expected := res.Expected()
	c.Versions, c.Tickets = len(accepted), len(expected)
	var lost []string
	for id, v := range expected {
		doc, err := st.Get(ctx, orgID, itsm.KindTicket, id)
		switch {
		case err != nil:
			lost = append(lost, fmt.Sprintf("%s: not stored (%v), newest accepted version %d", id, err, v))
		case doc.Version < v:
			lost = append(lost, fmt.Sprintf("%s: stored version %d, newest accepted %d", id, doc.Version, v))
		case events[itsm.EventMsgID(id, doc.Version)] == 0:
			lost = append(lost, fmt.Sprintf("%s: stored version %d has no event", id, doc.Version))
		default:
			c.Stored++
		}
	}
	for k, s := range accepted {
		if events[k] == 0 && s.Version < expected[s.TicketID(conn)] {
			c.Superseded++
		}
	}
	// Events of this run's tickets at versions no request carried would be
	// phantoms; count every event of a ticket we sent. The tickets' ids
	// carry the connection, so each vendor's run counts its own.
	tickets := map[string]bool{}
	for id := range expected {
		tickets[id] = true
	}
	for k, n := range events {
		id, _, _ := strings.Cut(k, ":")
		if tickets[id] {
			c.Published++
			c.Duplicated += n - 1
			if n > 1 {
				t.Logf("%s event %s stored %d times", c.Vendor, k, n)
			}
		}
	}
	c.Lost = len(lost)
	sort.Strings(lost)
	for i, l := range lost {
		if i == 20 {
			t.Logf("... and %d more", len(lost)-20)
			break
		}
		t.Logf("%s lost: %s", c.Vendor, l)
	}
	c.DLQ = streamMsgs(t, js, broker.StreamDLQ)
	return c
}

// report logs the counts table, one row per vendor, and writes it to
// reportDir/<test>.txt.
func report(t *testing.T, fault string, results []*load.Result, cs []counts, notes ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "fault: %s\n", fault)
	fmt.Fprintf(&b, "| vendor | sent | accepted (2xx) | refused/failed | versions | tickets | stored | published | duplicated | superseded | lost | DLQ |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | **%d** | %d |\n", c.Vendor,
			c.Sent, c.Accepted, c.Refused, c.Versions, c.Tickets, c.Stored, c.Published, c.Duplicated, c.Superseded, c.Lost, c.DLQ)
	}
	for _, res := range results {
		fmt.Fprintf(&b, "%s:\n", vendorTitle(res))
		res.Summary().Print(&b)
	}
	for _, n := range notes {
		fmt.Fprintln(&b, n)
	}
	t.Log("\n" + b.String())
	require.NoError(t, os.MkdirAll(reportDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(reportDir, t.Name()+".txt"), []byte(b.String()), 0o644))
}

// requireNoLoss is the verdict every fault test shares, for every vendor.
func requireNoLoss(t *testing.T, cs []counts) {
	t.Helper()
	for _, c := range cs {
		require.Positive(t, c.Accepted, "%s: some deliveries must have been accepted", c.Vendor)
		require.Zero(t, c.Lost, "%s: accepted deliveries lost", c.Vendor)
		require.Zero(t, c.Duplicated, "%s: events published twice for one version", c.Vendor)
		require.Equal(t, c.Tickets, c.Stored, c.Vendor)
		require.Zero(t, c.DLQ, "%s: messages dead-lettered", c.Vendor)
	}
}

// acceptedAfter counts 2xx answers to requests started after t0: the
// platform recovered and served again after the fault.
func acceptedAfter(res *load.Result, t0 time.Time) int {
	n := 0
	for _, s := range res.Sends {
		if s.OK() && s.Start.After(t0) {
			n++
		}
	}
	return n
}

// acceptedAfterNote is the report's note of acceptedAfter, per vendor.
func acceptedAfterNote(results []*load.Result, t0 time.Time, what string) string {
	var parts []string
	for _, res := range results {
		parts = append(parts, fmt.Sprintf("%s %d", vendorTitle(res), acceptedAfter(res, t0)))
	}
	return fmt.Sprintf("accepted %s: %s", what, strings.Join(parts, ", "))
}

// requireServedAfter: every vendor's deliveries were accepted again after
// t0, once the platform had recovered.
func requireServedAfter(t *testing.T, results []*load.Result, t0 time.Time, msg string) {
	t.Helper()
	for _, res := range results {
		require.Positive(t, acceptedAfter(res, t0), "%s: %s", vendorTitle(res), msg)
	}
}

// normalizerProc is cmd/normalizer running as its own process, so the test
// can SIGKILL it the way the kernel's OOM killer or a node failure would.
type normalizerProc struct {
	cmd *exec.Cmd
	// exited is closed once the process has been reaped.
	exited chan struct{}
}

// buildNormalizer compiles cmd/normalizer into the test's temp dir.
func buildNormalizer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "normalizer")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/itsmhub/itsm/cmd/normalizer")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build cmd/normalizer: %s", out)
	return bin
}

func startNormalizerProc(t *testing.T, bin string, env []string, logPath string) *normalizerProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	p := &normalizerProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

// kill is kill -9: no drain, no acks, a write possibly half-done.
func (p *normalizerProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop is SIGTERM (a clean shutdown) for the test's cleanup.
func (p *normalizerProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
