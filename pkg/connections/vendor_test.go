package connections_test

import (
	"context"
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

// A vendor that pushes without registering webhooks (ServiceNow's business
// rule) leaves Connector.Webhooks nil: its connections activate, sync and
// report their mappings, and nothing tries to register or refresh a
// webhook for them. Jira's connector without its registrar stands in.
func TestConnectorWithoutWebhookRegistration(t *testing.T) {
	ctx := context.Background()
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1, Clock: clock})
	b := brokertest.Start(t)
	st, err := sqlitestore.Open(ctx, t.TempDir()+"/s.db")
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	leases, err := lease.Open(ctx, b.JetStream(), "leases", "a", 30*time.Second, 1)
	require.NoError(t, err)
	v, err := vault.New(vault.NewKey())
	require.NoError(t, err)
	jc := jiraconn.New(jiraconn.Config{Endpoints: jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()},
		ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), Now: clock.Now})
	cfg := connections.Config{PublicURL: "http://127.0.0.1:1", StateKey: []byte("0123456789abcdef0123456789abcdef"),
		Now: clock.Now, Registerer: prometheus.NewRegistry(),
		Connectors: []connections.Connector{{Vendor: jira.VendorName, Title: jiraconn.Title, Authorizer: jc, Mappings: jc, Options: jiraconn.Options}}}

	bad := cfg
	bad.Connectors = []connections.Connector{{Vendor: "Jira", Title: "Jira", Authorizer: jc, Mappings: jc, Options: jiraconn.Options}}
	_, err = connections.New(bad, st, v, leases, nil, zaptest.NewLogger(t))
	require.ErrorContains(t, err, "upper case")
	bad.Connectors = nil
	_, err = connections.New(bad, st, v, leases, nil, zaptest.NewLogger(t))
	require.ErrorContains(t, err, "at least one vendor connector")

	m, err := connections.New(cfg, st, v, leases, nil, zaptest.NewLogger(t))
	require.NoError(t, err)
	_, _, err = m.Create(ctx, "org-a", connections.CreateRequest{Vendor: "SERVICENOW"})
	var ve *connections.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "vendor", ve.Field)
	require.Contains(t, ve.Message, "supported: JIRA")

	c := activate(t, m)
	require.Equal(t, store.HealthHealthy, c.Detail.Health.Status)
	require.Empty(t, c.Detail.Webhooks)
	require.Empty(t, c.Detail.WebhookURL)
	clock.Advance(40 * 24 * time.Hour) // past any webhook's life
	require.NoError(t, m.MaintainWebhooks(ctx))
	got, err := st.GetConnection(ctx, "org-a", c.ID)
	require.NoError(t, err)
	require.Empty(t, got.Detail.Webhooks)

	report, err := m.Mappings(ctx, "org-a", c.ID)
	require.NoError(t, err)
	require.Equal(t, "vendor", report.Source)
	require.NotEmpty(t, report.Statuses)
	require.NotEmpty(t, report.Priorities)
	for _, s := range report.Statuses {
		require.NotEmpty(t, s.MappedBy, s.Name)
	}
	require.NoError(t, m.Delete(ctx, "org-a", c.ID, false))
}

// A registration the vendor refuses with reasons of its own leaves the
// connection working (syncs carry the changes) with a health that names
// them, for the platform to act on.
func TestRefusedWebhookShowsInHealth(t *testing.T) {
	ctx := context.Background()
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1, Clock: clock, MaxWebhooksPerUser: 1})
	rs, _ := replicas(t, 1, sim, clock)
	m := rs[0].mgr
	first := activate(t, m)
	require.Len(t, first.Detail.Webhooks, 1)
	require.Equal(t, store.HealthHealthy, first.Detail.Health.Status)

	// A second connection of the same Jira user: over the simulator's
	// limit of one webhook.
	c, authURL, err := m.Create(ctx, "org-a", connections.CreateRequest{Vendor: "jira"})
	require.NoError(t, err)
	require.Equal(t, jira.VendorName, c.Vendor)
	code, state := consentCode(t, authURL)
	consent, err := m.Callback(ctx, code, state)
	require.NoError(t, err)
	c, err = m.Confirm(ctx, consent.FormToken, consent.BrowserKey, true)
	require.NoError(t, err)
	require.Equal(t, store.StateActive, c.State)
	require.Empty(t, c.Detail.Webhooks)
	h := c.Detail.Health
	require.Equal(t, store.HealthDegraded, h.Status)
	require.Equal(t, store.OwnerPlatform, h.ResolutionOwner)
	require.Contains(t, h.Description, "Jira refused the webhook (Maximum number of webhooks (1)")
	require.Contains(t, h.Description, "; changes arrive by incremental sync only")

	// The upkeep tries again, and the health keeps saying why.
	require.Error(t, m.MaintainWebhooks(ctx))
}
