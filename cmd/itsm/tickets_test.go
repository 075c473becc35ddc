package main

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
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

func TestTicketsCommandsWriteThroughTheAPI(t *testing.T) {
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 2, Clock: clock})
	const key = "key-org-a-0123456789abcdef"
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{key: "org-a"}
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	}, app.WithClock(clock.Now))
	st, body := env.Call(t, http.MethodPost, key, "/v1/connections", map[string]any{"vendor": "JIRA"})
	require.Equal(t, http.StatusCreated, st, body)
	var conn connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &conn))
	apptest.Connect(t, conn.OAuth2AuthorizeURL)

	c := cli{env: map[string]string{"ITSM_API_KEY": key, "ITSM_API_URL": env.URL}}
	code, out, errs := c.run(t, "tickets", "create", "--connection", conn.ID, "--project", sim.Default().ProjectKeys()[0],
		"--name", "From the CLI", "--priority", "LOW", "--tags", "cli,ops", "--idempotency-key", "cli-1")
	require.Equal(t, 0, code, errs)
	var tk itsm.Ticket
	require.NoError(t, json.Unmarshal([]byte(out), &tk), out)
	require.Equal(t, "From the CLI", tk.Name)
	require.Equal(t, itsm.PriorityLow, tk.Priority)
	require.Equal(t, []string{"cli", "ops"}, tk.Tags)

	code, out, errs = c.run(t, "tickets", "update", "--id", tk.ID, "--status", "IN_PROGRESS", "--name", "From the CLI, started")
	require.Equal(t, 0, code, errs)
	require.NoError(t, json.Unmarshal([]byte(out), &tk), out)
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	require.Equal(t, "From the CLI, started", tk.Name)

	code, out, errs = c.run(t, "tickets", "comment", "--id", tk.ID, "--body", "on it")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, `"body":"on it"`)

	// Errors carry the API's message; missing flags are usage errors.
	code, _, errs = c.run(t, "tickets", "update", "--id", tk.ID, "--priority", "URGENT")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "400")
	require.Contains(t, errs, "priority")
	// Whether a project is required is the vendor's (Jira: yes).
	code, _, errs = c.run(t, "tickets", "create", "--connection", conn.ID, "--name", "x")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "project_id or project_key is required")
	code, _, errs = c.run(t, "tickets", "comment", "--id", tk.ID, "--body", "x", "--internal")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "do not support internal comments")
	code, _, errs = cli{env: map[string]string{"ITSM_API_URL": env.URL}}.run(t, "tickets", "comment", "--id", tk.ID, "--body", "x")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "ITSM_API_KEY")
}
