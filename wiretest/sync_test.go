package wiretest_test

import (
	"net/http"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/wiretest"
)

// TestFullSyncReconciles: a connection made through OAuth against the
// Jira simulator gets its first full sync; an issue is then deleted in Jira
// with its webhook dropped, and the next full sync, requested through the
// API, tombstones its ticket and nothing else.
func TestFullSyncReconciles(t *testing.T) {
	const projects, perProject = 2, 6
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 21, Projects: projects, IssuesPerProject: perProject,
		CommentsPerIssue: 1, Clock: clock})
	env := startOnWire(t, wiretest.StartTest(t), func(c *config.Config) {
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	}, app.WithClock(clock.Now))

	status, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{"vendor": "JIRA"})
	require.Equal(t, http.StatusCreated, status, body)
	var conn connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &conn))
	consent(t, conn.OAuth2AuthorizeURL)
	first := waitSync(t, env, conn.ID, "", 60*time.Second)
	require.Equal(t, store.SyncCompleted, first.Status, first.LastError)

	path := "/v1/itsm/tickets?limit=100&connection_id=" + conn.ID
	var page ticketPage
	apptest.Eventually(t, 60*time.Second, "the first full sync's tickets stored", func() bool {
		return env.GetJSON(t, keyA, path, &page) == http.StatusOK && len(page.Items) == projects*perProject
	})

	// Deleted in Jira, its issue_deleted delivery dropped: only a full
	// sync's reconciliation can find out.
	sim.SetFaults(jirasim.Faults{DropProb: 1})
	// Jira deletes an issue's subtasks with it: the victim has none.
	parents := map[string]bool{}
	for _, tk := range page.Items {
		if tk.ParentTicketID != nil {
			parents[*tk.ParentTicketID] = true
		}
	}
	var victim itsm.Ticket
	for _, tk := range page.Items {
		if !parents[tk.ID] {
			victim = tk
			break
		}
	}
	victimKey := victim.Identifier
	require.NotEmpty(t, victimKey)
	require.NoError(t, sim.DeleteIssue(victimKey))
	clock.Advance(time.Minute)

	status, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+conn.ID+"/sync?kind=full", nil)
	require.Equal(t, http.StatusAccepted, status, body)
	second := waitSync(t, env, conn.ID, first.ID, 60*time.Second)
	require.Equal(t, store.SyncCompleted, second.Status, second.LastError)
	apptest.Eventually(t, 60*time.Second, "the deleted issue's ticket tombstoned", func() bool {
		var tk itsm.Ticket
		return env.GetJSON(t, keyA, "/v1/itsm/tickets/"+victim.ID, &tk) == http.StatusOK && tk.Status == itsm.StatusDeleted
	})
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, path, &page))
	deleted := 0
	for _, tk := range page.Items {
		if tk.Status == itsm.StatusDeleted {
			deleted++
			require.Equal(t, victim.ID, tk.ID, "only the deleted issue (%s) is tombstoned, not %s", victimKey, tk.Identifier)
		}
	}
	require.Equal(t, 1, deleted)
	require.Len(t, page.Items, projects*perProject)
}

// consent plays the customer's browser: the authorize URL redirects to the
// platform's OAuth callback, whose confirmation page is confirmed.
func consent(t testing.TB, authorizeURL string) {
	t.Helper()
	apptest.Connect(t, authorizeURL)
}

// waitSync waits for the connection's last full sync other than notID to
// end, and returns it.
func waitSync(t *testing.T, env *apptest.Env, connID, notID string, within time.Duration) store.SyncState {
	t.Helper()
	var last store.SyncState
	apptest.Eventually(t, within, "a full sync of "+connID+" ended", func() bool {
		var v struct {
			LastSync *store.SyncState `json:"last_sync"`
		}
		if env.GetJSON(t, keyA, "/v1/connections/"+connID, &v) != http.StatusOK || v.LastSync == nil {
			return false
		}
		last = *v.LastSync
		return last.ID != notID && last.Kind == store.SyncFull && last.Status != store.SyncRunning
	})
	return last
}
