package app_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
)

// startWithSim runs the platform against a simulator that shares its clock.
func startWithSim(t *testing.T, opts jirasim.Options) (*apptest.Env, *jirasim.Server, *jirasim.ManualClock) {
	clock := jirasim.NewManualClock(time.Now())
	opts.Clock = clock
	sim := jirasim.NewTestServer(t, opts)
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	}, app.WithClock(clock.Now))
	return env, sim, clock
}

func TestConnectionLifecycleAgainstSimulator(t *testing.T) {
	env, sim, clock := startWithSim(t, jirasim.Options{Seed: 7, Projects: 2, IssuesPerProject: 3, CommentsPerIssue: 1})
	keys := sim.Default().ProjectKeys()
	project := keys[0]

	// Create: 201 in the seed's shape, PENDING, with a consent URL.
	status, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{
		"vendor": "JIRA",
		"options": map[string]any{
			"project_keys_filter": []string{project},
			"priority_mapping":    []map[string]string{{"Highest": "CRITICAL"}},
			"status_mapping":      []map[string]string{{"Waiting for customer": "PENDING"}},
		},
	})
	require.Equal(t, http.StatusCreated, status, body)
	var created connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	require.Equal(t, store.StatePending, created.State)
	require.Equal(t, "org-a", created.OrganizationID)
	require.Equal(t, 21600, created.RefreshIntervalSecs)
	require.Equal(t, 1800, created.TimeoutSecs)
	au, err := url.Parse(created.OAuth2AuthorizeURL)
	require.NoError(t, err)
	require.Equal(t, sim.URL(), au.Scheme+"://"+au.Host)
	for _, scope := range []string{"read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-configuration", "manage:jira-webhook", "offline_access"} {
		require.Contains(t, strings.Fields(au.Query().Get("scope")), scope)
	}
	require.Equal(t, "api.atlassian.com", au.Query().Get("audience"))

	// Another organization cannot see, change, authorize or delete it.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/connections/" + created.ID},
		{http.MethodPatch, "/v1/connections/" + created.ID},
		{http.MethodDelete, "/v1/connections/" + created.ID},
		{http.MethodPost, "/v1/connections/" + created.ID + "/authorize"},
		{http.MethodPost, "/v1/connections/" + created.ID + "/test"},
	} {
		var body any
		if c.method == http.MethodPatch {
			body = map[string]any{"timeout_secs": 600}
		}
		st, _ := env.Call(t, c.method, keyB, c.path, body)
		require.Equal(t, http.StatusNotFound, st, "%s %s as another organization", c.method, c.path)
	}
	_, list := env.Call(t, http.MethodGet, keyB, "/v1/connections", nil)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, list)

	// Consent and callback: a confirmation page; confirmed, ACTIVE with a
	// registered webhook.
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.Contains(t, page.Body, "org-a")
	require.Contains(t, page.Body, sim.Default().Info().URL)
	_, body = env.Call(t, http.MethodGet, keyA, "/v1/connections/"+created.ID, nil)
	require.Contains(t, body, `"state":"PENDING"`, "not active before the confirmation")
	st, body := page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "Jira connected")
	var active connections.View
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+created.ID, &active))
	require.Equal(t, store.StateActive, active.State)
	require.Equal(t, sim.Default().Info().URL, active.SiteURL)
	require.Equal(t, store.HealthHealthy, active.Health.Status)
	require.Len(t, active.Webhooks, 1)
	// Jira has no connection test of its own: the consent tested it.
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+created.ID+"/test", nil)
	require.Equal(t, http.StatusConflict, st, body)
	require.Contains(t, body, "not_testable")
	require.WithinDuration(t, clock.Now().Add(30*24*time.Hour), active.Webhooks[0].ExpiresAt, time.Minute)
	hooks := sim.Default().Webhooks()
	require.Len(t, hooks, 1)
	require.Contains(t, hooks[0].URL, "/webhooks/jira/"+created.ID)

	// The state is single-use: replaying the callback fails and changes nothing.
	replay := apptest.OpenCallback(t, page.CallbackURL)
	require.Equal(t, http.StatusConflict, replay.Status)
	require.Contains(t, replay.Body, "already used")

	// A change in Jira arrives through the webhook, signed, and is normalized.
	ref, err := sim.CreateIssue(jirasim.IssueInput{Project: project, Summary: "created in the simulator", Priority: "Highest"})
	require.NoError(t, err)
	ticketID := itsm.ObjectID(created.ID, itsm.KindTicket, ref.ID)
	var tk itsm.Ticket
	apptest.Eventually(t, 10*time.Second, "the webhook's ticket is readable", func() bool {
		return env.GetJSON(t, keyA, "/v1/itsm/tickets/"+ticketID, &tk) == http.StatusOK
	})
	require.Equal(t, ref.Key, tk.Identifier)
	require.Equal(t, itsm.PriorityCritical, tk.Priority, "the connection's custom priority mapping applies")
	require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyB, "/v1/itsm/tickets/"+ticketID, nil))

	// 25 days later the access token has long expired (and rotated refresh
	// tokens are in play) and the webhook is within a week of expiring: one
	// upkeep pass must refresh both.
	clock.Advance(25 * 24 * time.Hour)
	require.NoError(t, env.Connections().MaintainWebhooks(context.Background()))
	_, body = env.Call(t, http.MethodGet, keyA, "/v1/connections/"+created.ID, nil)
	var after connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &after))
	require.Len(t, after.Webhooks, 1)
	require.Equal(t, active.Webhooks[0].ID, after.Webhooks[0].ID, "refreshed, not re-registered")
	require.True(t, after.Webhooks[0].ExpiresAt.After(clock.Now().Add(29*24*time.Hour)), "expiry extended: %v", after.Webhooks[0].ExpiresAt)

	// Past the original 30 days the webhook still delivers, and the rotated
	// refresh token still works after the old one's grace period.
	clock.Advance(10 * 24 * time.Hour)
	ref2, err := sim.TransitionIssue(ref.Key, "In Progress")
	require.NoError(t, err)
	apptest.Eventually(t, 10*time.Second, "a delivery after day 30", func() bool {
		return env.GetJSON(t, keyA, "/v1/itsm/tickets/"+ticketID, &tk) == http.StatusOK && tk.Status == itsm.StatusInProgress
	})
	_ = ref2
	tok, err := env.Connections().Token(context.Background(), created.ID, "")
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)

	// Delete: the webhook is removed in Jira and deliveries stop.
	st, body = env.Call(t, http.MethodDelete, keyA, "/v1/connections/"+created.ID, nil)
	require.Equal(t, http.StatusNoContent, st, body)
	require.Empty(t, sim.Default().Webhooks())
	_, body = env.Call(t, http.MethodGet, keyA, "/v1/connections/"+created.ID, nil)
	require.Contains(t, body, `"state":"DELETED"`)
	require.NotContains(t, body, tok.AccessToken)
	st, _ = env.Call(t, http.MethodDelete, keyA, "/v1/connections/"+created.ID, nil)
	require.Equal(t, http.StatusNotFound, st, "deleting twice")
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/itsm/tickets/"+ticketID, &tk), "normalized data is kept")

	// No secret ever reached the logs.
	encKey, err := os.ReadFile(filepath.Join(env.Config.DataDir, "dev-encryption.key"))
	require.NoError(t, err)
	logs := env.Logs.String()
	require.NotEmpty(t, logs)
	apptest.RequireNoSecrets(t, logs, map[string]string{
		"access token": tok.AccessToken, "refresh token": tok.RefreshToken, "client secret": sim.ClientSecret(),
		"API key": keyA, "encryption key": strings.TrimSpace(string(encKey)),
	})
}

func TestConnectionBadInput(t *testing.T) {
	env, _, _ := startWithSim(t, jirasim.Options{Seed: 1, Projects: 1, IssuesPerProject: 1})
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"unknown vendor", map[string]any{"vendor": "REMEDY"}, "vendor"},
		{"priority outside the enum", map[string]any{"vendor": "JIRA", "options": map[string]any{"priority_mapping": []map[string]string{{"High": "URGENT"}}}}, "options.priority_mapping[0]"},
		{"status outside the enum", map[string]any{"vendor": "JIRA", "options": map[string]any{"status_mapping": []map[string]string{{"Done": "FINISHED"}}}}, "options.status_mapping[0]"},
		{"malformed project key", map[string]any{"vendor": "JIRA", "options": map[string]any{"project_keys_filter": []string{"ABC", "bad key"}}}, "options.project_keys_filter[1]"},
		{"mapping entry with two keys", map[string]any{"vendor": "JIRA", "options": map[string]any{"priority_mapping": []map[string]string{{"High": "HIGH", "Low": "LOW"}}}}, "options.priority_mapping[0]"},
		{"unknown option", map[string]any{"vendor": "JIRA", "options": map[string]any{"project_key_filter": []string{"ABC"}}}, "project_key_filter"},
		{"interval out of range", map[string]any{"vendor": "JIRA", "refresh_interval_secs": 5}, "refresh_interval_secs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", tc.body)
			require.Equal(t, http.StatusBadRequest, st, body)
			require.Contains(t, body, tc.field)
		})
	}
	st, body := env.Call(t, http.MethodPost, "", "/v1/connections", map[string]any{"vendor": "JIRA"})
	require.Equal(t, http.StatusUnauthorized, st, body)
	_, list := env.Call(t, http.MethodGet, keyA, "/v1/connections", nil)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, list, "nothing was created by bad requests")

	// Forged or tampered OAuth states are refused.
	st, _ = env.Call(t, http.MethodGet, "", "/oauth/callback?code=x&state=forged.state.123.sig", nil)
	require.Equal(t, http.StatusBadRequest, st)
	st, _ = env.Call(t, http.MethodGet, "", "/oauth/callback?error=access_denied", nil)
	require.Equal(t, http.StatusBadRequest, st)
}

func TestDeleteWithPurgeRemovesTheData(t *testing.T) {
	env, _, _ := startWithSim(t, jirasim.Options{Seed: 5, Projects: 1, IssuesPerProject: 3, CommentsPerIssue: -1})
	status, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{"vendor": "JIRA"})
	require.Equal(t, http.StatusCreated, status, body)
	var created connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	apptest.Connect(t, created.OAuth2AuthorizeURL)

	// The first full sync after OAuth brings the issues in.
	var page struct {
		Items []itsm.Ticket `json:"items"`
	}
	path := "/v1/itsm/tickets?connection_id=" + created.ID
	apptest.Eventually(t, 20*time.Second, "the first sync's tickets", func() bool {
		return env.GetJSON(t, keyA, path, &page) == http.StatusOK && len(page.Items) == 3
	})

	st, body := env.Call(t, http.MethodDelete, keyA, "/v1/connections/"+created.ID+"?purge=maybe", nil)
	require.Equal(t, http.StatusBadRequest, st, body)
	st, body = env.Call(t, http.MethodDelete, keyB, "/v1/connections/"+created.ID+"?purge=true", nil)
	require.Equal(t, http.StatusNotFound, st, "another organization cannot purge it")
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, path, &page))
	require.Len(t, page.Items, 3)

	st, body = env.Call(t, http.MethodDelete, keyA, "/v1/connections/"+created.ID+"?purge=true", nil)
	require.Equal(t, http.StatusNoContent, st, body)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, path, &page))
	require.Empty(t, page.Items)
	require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyA, "/v1/itsm/tickets/"+itsm.ObjectID(created.ID, itsm.KindTicket, "10000"), nil))
}
