package connections_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vault"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

type replica struct {
	mgr  *connections.Manager
	jira *jiraconn.Connector
	reg  *prometheus.Registry
}

// replicas builds n managers sharing one store, one NATS and one vault key,
// as n receiver processes would.
func replicas(t *testing.T, n int, sim *jirasim.Server, clock *jirasim.ManualClock) ([]replica, store.Store) {
	ctx := context.Background()
	b := brokertest.Start(t)
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	key := vault.NewKey()
	var out []replica
	for i := range n {
		js := b.JetStream()
		leases, err := lease.Open(ctx, js, "leases", string(rune('a'+i)), 30*time.Second, 1)
		require.NoError(t, err)
		v, err := vault.New(key)
		require.NoError(t, err)
		reg := prometheus.NewRegistry()
		jc := jiraconn.New(jiraconn.Config{Endpoints: jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()},
			ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), Now: clock.Now})
		m, err := connections.New(connections.Config{
			PublicURL:  "http://127.0.0.1:1",
			Connectors: []connections.Connector{{Vendor: jira.VendorName, Title: jiraconn.Title, Authorizer: jc, Webhooks: jc, Mappings: jc, Options: jiraconn.Options}},
			StateKey:   []byte("0123456789abcdef0123456789abcdef"), Now: clock.Now, Registerer: reg,
		}, st, v, leases, nil, zaptest.NewLogger(t))
		require.NoError(t, err)
		out = append(out, replica{mgr: m, jira: jc, reg: reg})
	}
	return out, st
}

func activate(t *testing.T, m *connections.Manager) *store.Connection {
	ctx := context.Background()
	c, authURL, err := m.Create(ctx, "org-a", connections.CreateRequest{Vendor: "JIRA"})
	require.NoError(t, err)
	code, state := consentCode(t, authURL)
	consent, err := m.Callback(ctx, code, state)
	require.NoError(t, err)
	c, err = m.Confirm(ctx, consent.FormToken, consent.BrowserKey, true)
	require.NoError(t, err)
	require.Equal(t, store.StateActive, c.State)
	return c
}

// consentCode consents at the simulator and returns the code and state it
// redirects back with.
func consentCode(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func refreshes(rs []replica, result string) float64 {
	var n float64
	for _, r := range rs {
		mfs, _ := r.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "itsm_token_refreshes_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == result {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return n
}

// TestReplicasRefreshingAtOnceNeverLockOut: Atlassian rotates refresh
// tokens, so if two replicas both refreshed with the same token one would
// store a token that dies at the end of the grace period. Rounds of
// concurrent refreshes, each followed by a jump past the grace period, must
// all succeed, with exactly one refresh per round.
func TestReplicasRefreshingAtOnceNeverLockOut(t *testing.T) {
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1, Clock: clock})
	rs, _ := replicas(t, 2, sim, clock)
	c := activate(t, rs[0].mgr)

	const rounds = 4
	for round := 1; round <= rounds; round++ {
		// Past the access token's hour and the previous refresh token's
		// 10-minute grace: only the latest stored refresh token works now.
		clock.Advance(2 * time.Hour)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := rs[i%2].mgr.Token(context.Background(), c.ID, "")
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "round %d", round)
		}
		require.EqualValues(t, round, refreshes(rs, "ok"), "one refresh per round, whichever replica did it")
	}
	require.Zero(t, refreshes(rs, "invalid_grant"))

	// A REST call through either replica works with the stored token.
	hc, err := rs[1].mgr.HTTPClient(context.Background(), c)
	require.NoError(t, err)
	_, err = rs[1].jira.RefreshWebhooks(context.Background(), c, hc)
	require.NoError(t, err)
}

// TestRevokedGrantAsksTheCustomer: when Jira refuses the refresh token, the
// connection's health says the customer must reconnect.
func TestRevokedGrantAsksTheCustomer(t *testing.T) {
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1, Clock: clock})
	rs, st := replicas(t, 1, sim, clock)
	c := activate(t, rs[0].mgr)
	// Past the 90-day inactivity limit the grant is gone (JIRA.md §1).
	clock.Advance(91 * 24 * time.Hour)
	_, err := rs[0].mgr.Token(context.Background(), c.ID, "")
	require.ErrorIs(t, err, connections.ErrReauthorize)
	got, err := st.GetConnection(context.Background(), "org-a", c.ID)
	require.NoError(t, err)
	require.Equal(t, store.HealthFailed, got.Detail.Health.Status)
	require.Equal(t, store.OwnerCustomer, got.Detail.Health.ResolutionOwner)
	require.EqualValues(t, 1, refreshes(rs, "invalid_grant"))
}
