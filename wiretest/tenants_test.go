package wiretest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
	"github.com/itsmhub/itsm/wiretest"
)

// TestTenantIsolation: two organizations whose Jira sites have the same
// issue ids and keys. Every read is scoped to the caller's organization, in
// the API and so in every store query; a delivery for one tenant's site
// cannot land in the other's connection.
func TestTenantIsolation(t *testing.T) {
	env := startOnWire(t, wiretest.StartTest(t), nil)
	env.AddConnection(t, "conn-a", "org-a", siteA)
	env.AddConnection(t, "conn-b", "org-b", siteB)
	const issues = 5
	secret := env.Config.JiraClientSecret
	plan := func(conn, site string) []load.Delivery {
		d, err := load.Plan(load.Config{Conn: conn, Secret: secret, Site: site, Issues: issues, IssueBase: 20000,
			RunID: conn}, issues)
		require.NoError(t, err)
		return d
	}
	for _, tenant := range []struct{ conn, site string }{{"conn-a", siteA}, {"conn-b", siteB}} {
		for _, d := range plan(tenant.conn, tenant.site) {
			status, body := env.PostWebhook(t, tenant.conn, d.ID, d.Body)
			require.Equal(t, http.StatusAccepted, status, body)
		}
	}
	// Tenant A's site delivered to tenant B's connection: refused.
	swapped := plan("conn-a", siteA)[0]
	status, body := env.PostWebhook(t, "conn-b", "swapped-1", swapped.Body)
	require.Equal(t, http.StatusForbidden, status, body)

	for _, org := range []struct{ key, conn, other string }{{keyA, "conn-a", "conn-b"}, {keyB, "conn-b", "conn-a"}} {
		var page ticketPage
		apptest.Eventually(t, 30*time.Second, org.conn+"'s tickets stored", func() bool {
			return env.GetJSON(t, org.key, "/v1/itsm/tickets", &page) == http.StatusOK && len(page.Items) == issues
		})
		own := map[string]bool{}
		for _, d := range plan(org.conn, "") {
			own[d.TicketID(org.conn)] = true
		}
		for _, tk := range page.Items {
			require.True(t, own[tk.ID], "only the caller's own tickets are listed: %s", tk.ID)
		}
		// The same key in both sites: each organization gets its own.
		var byKey itsm.Ticket
		require.Equal(t, http.StatusOK, env.GetJSON(t, org.key, "/v1/itsm/tickets/by-identifier/LOAD-1", &byKey))
		require.True(t, own[byKey.ID], "LOAD-1 of %s, got %s", org.conn, byKey.ID)
		// The other organization's objects answer 404, like missing ones.
		otherID := itsm.ObjectID(org.other, itsm.KindTicket, "20000")
		require.Equal(t, http.StatusNotFound, env.GetJSON(t, org.key, "/v1/itsm/tickets/"+otherID, nil))
		require.Equal(t, http.StatusOK, env.GetJSON(t, org.key, "/v1/itsm/tickets?connection_id="+org.other, &page))
		require.Empty(t, page.Items)
		require.Equal(t, http.StatusNotFound, env.GetJSON(t, org.key, "/v1/connections/"+org.other, nil))
		status, body := env.Call(t, http.MethodGet, org.key, "/v1/connections", nil)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `"`+org.conn+`"`)
		require.NotContains(t, body, org.other)
		status, _ = env.Call(t, http.MethodDelete, org.key, "/v1/connections/"+org.other+"?purge=true", nil)
		require.Equal(t, http.StatusNotFound, status, "another organization cannot purge a connection")
	}
	// Nothing of the refused delivery reached tenant B, and the failed purges
	// removed nothing.
	var page ticketPage
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyB, "/v1/itsm/tickets?connection_id=conn-b", &page))
	require.Len(t, page.Items, issues)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets?connection_id=conn-a", &page))
	require.Len(t, page.Items, issues)
}
