package connections

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vault"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

// These tests mint tokens with the manager's own key, as only someone who
// holds it could: they prove what the signature alone does not.

var testStateKey = []byte("0123456789abcdef0123456789abcdef")

func testManager(t *testing.T, sim *jirasim.Server, mutate func(*Config)) (*Manager, store.Store) {
	t.Helper()
	ctx := context.Background()
	b := brokertest.Start(t)
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	leases, err := lease.Open(ctx, b.JetStream(), "leases", "a", 30*time.Second, 1)
	require.NoError(t, err)
	v, err := vault.New(vault.NewKey())
	require.NoError(t, err)
	cfg := Config{PublicURL: "http://127.0.0.1:1", Connectors: jiraConnectors(sim, nil), StateKey: testStateKey}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := New(cfg, st, v, leases, nil, zaptest.NewLogger(t))
	require.NoError(t, err)
	return m, st
}

// jiraConnectors is the Jira connector on the simulator, as the wiring
// builds it.
func jiraConnectors(sim *jirasim.Server, now func() time.Time) []Connector {
	jc := jiraconn.New(jiraconn.Config{Endpoints: jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()},
		ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), Now: now})
	return []Connector{{Vendor: jira.VendorName, Title: jiraconn.Title, Authorizer: jc, Webhooks: jc, Mappings: jc, Options: jiraconn.Options}}
}

// code consents at the simulator and returns the authorization code.
func code(t *testing.T, authURL string) string {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc.Query().Get("code")
}

func TestStateLifetimeIsBounded(t *testing.T) {
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 1, Projects: 1, IssuesPerProject: 1})
	for _, cfg := range []func(*Config){
		func(c *Config) { c.StateTTL = 2 * time.Hour },
		func(c *Config) { c.ConsentTTL = 90 * time.Minute },
	} {
		c := Config{PublicURL: "http://x", StateKey: testStateKey, Connectors: jiraConnectors(sim, nil)}
		cfg(&c)
		_, err := New(c, nil, nil, nil, nil, zaptest.NewLogger(t))
		require.ErrorContains(t, err, "must expire within 1h0m0s")
	}
	m, _ := testManager(t, sim, nil)
	require.Equal(t, 15*time.Minute, m.cfg.StateTTL)
	require.Equal(t, 10*time.Minute, m.cfg.ConsentTTL)
}

// A state names the organization as well as the connection: a genuine
// state of organization B cannot touch organization A's connection.
func TestStateBindsTheOrganization(t *testing.T) {
	ctx := context.Background()
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 1, Projects: 1, IssuesPerProject: 1})
	m, st := testManager(t, sim, nil)
	victim, authURL, err := m.Create(ctx, "org-a", CreateRequest{Vendor: "JIRA"})
	require.NoError(t, err)

	// Signed with the real key, but for org-b.
	state, _ := signState(testStateKey, "org-b", victim.ID, time.Now().Add(time.Minute))
	_, err = m.Callback(ctx, code(t, authURL), state)
	require.ErrorIs(t, err, ErrBadState)
	c, err := st.GetConnection(ctx, "org-a", victim.ID)
	require.NoError(t, err)
	require.NotEmpty(t, c.Detail.OAuthStateHash, "the victim's outstanding state was not consumed")
	require.Nil(t, c.Detail.Consent)

	// The genuine state still works, and its confirmation form is bound to
	// org-a too: re-signed for org-b it confirms nothing.
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	consent, err := m.Callback(ctx, code(t, authURL), u.Query().Get("state"))
	require.NoError(t, err)
	require.Equal(t, "org-a", consent.OrganizationID)
	f, err := verifyToken(testStateKey, purposeConsent, consent.FormToken, 4, time.Now())
	require.NoError(t, err)
	crossOrg := signToken(testStateKey, purposeConsent, consent.ExpiresAt, "org-b", f[1], f[2], f[3])
	_, err = m.Confirm(ctx, crossOrg, consent.BrowserKey, true)
	require.ErrorIs(t, err, ErrConsentUsed, "no pending consent of org-b has that connection")
	c, err = st.GetConnection(ctx, "org-a", victim.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatePending, c.State)
	require.NotNil(t, c.Detail.Consent, "still waiting for org-a's administrator")

	got, err := m.Confirm(ctx, consent.FormToken, consent.BrowserKey, true)
	require.NoError(t, err)
	require.Equal(t, store.StateActive, got.State)
}

// Each token is good for its own step only.
func TestTokensAreBoundToTheirPurpose(t *testing.T) {
	exp := time.Now().Add(time.Minute)
	state, _ := signState(testStateKey, "org-a", "conn", exp)
	_, err := verifyToken(testStateKey, purposeConsent, state, 3, time.Now())
	require.ErrorIs(t, err, errTokenForged)
	form := signToken(testStateKey, purposeConsent, exp, "org-a", "conn", "nonce")
	_, _, _, err = verifyState(testStateKey, form, time.Now())
	require.ErrorIs(t, err, ErrBadState)
	_, _, _, err = verifyState(testStateKey, state, exp.Add(2*time.Second))
	require.ErrorIs(t, err, ErrStateExpired)
	_, _, _, err = verifyState([]byte("another key of at least 32 bytes!"), state, time.Now())
	require.ErrorIs(t, err, ErrBadState)
	require.NotErrorIs(t, err, ErrStateExpired)
}

// Reauthorizing a working connection cannot move it to another site, and
// keeps its grant until the new consent is confirmed.
func TestReauthorizationKeepsTheSite(t *testing.T) {
	ctx := context.Background()
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 1, Projects: 1, IssuesPerProject: 1})
	m, st := testManager(t, sim, nil)
	c, authURL, err := m.Create(ctx, "org-a", CreateRequest{Vendor: "JIRA"})
	require.NoError(t, err)
	u, _ := url.Parse(authURL)
	consent, err := m.Callback(ctx, code(t, authURL), u.Query().Get("state"))
	require.NoError(t, err)
	_, err = m.Confirm(ctx, consent.FormToken, consent.BrowserKey, true)
	require.NoError(t, err)
	before, err := st.GetConnection(ctx, "org-a", c.ID)
	require.NoError(t, err)

	// Pretend the connection was made with another cloud id.
	_, err = m.update(ctx, "org-a", c.ID, func(c *store.Connection) error {
		c.CloudID = "00000000-0000-0000-0000-000000000000"
		return nil
	})
	require.NoError(t, err)
	authURL, err = m.Authorize(ctx, "org-a", c.ID)
	require.NoError(t, err)
	u, _ = url.Parse(authURL)
	_, err = m.Callback(ctx, code(t, authURL), u.Query().Get("state"))
	var mismatch *SiteMismatchError
	require.ErrorAs(t, err, &mismatch)
	after, err := st.GetConnection(ctx, "org-a", c.ID)
	require.NoError(t, err)
	require.Equal(t, store.StateActive, after.State)
	require.Equal(t, before.Secret, after.Secret, "the working grant is untouched")
	require.Equal(t, store.HealthHealthy, after.Detail.Health.Status)
}
