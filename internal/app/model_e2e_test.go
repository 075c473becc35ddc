package app_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/services/normalizer"
)

// modelFields are the published model's fields of each object: every one
// must be a key of every object the API answers.
var modelFields = map[string][]string{
	"tickets": {"id", "name", "description", "type", "active", "status", "priority", "parent_ticket_id", "project_id",
		"assigned_user_id", "created_by_user_id", "ticket_created_at", "due_date", "closed_at", "status_updated_at",
		"tags", "url", "identifier", "vendor_attributes", "created_at", "updated_at"},
	"projects": {"id", "name", "description", "category", "type", "status", "status_updated_at", "url",
		"vendor_attributes", "created_at", "updated_at"},
	"comments": {"id", "ticket_id", "author_id", "body", "status", "status_updated_at", "vendor_attributes",
		"created_at", "updated_at"},
	"attachments": {"id", "ticket_id", "name", "mime_type", "uploaded_by_user_id", "status", "status_updated_at",
		"url", "vendor_attributes", "created_at", "updated_at"},
	"users":  {"id", "name", "email", "status", "status_updated_at", "vendor_attributes", "created_at", "updated_at"},
	"groups": {"id", "name", "description", "status", "status_updated_at", "vendor_attributes", "created_at", "updated_at"},
}

// TestFullSyncGivesTheModel connects the simulator, checks the mapping
// report, syncs, and reads every object of the six kinds back through the
// API: every model field present, every status and priority a value of the
// model, and the fields the simulator has data for filled.
func TestFullSyncGivesTheModel(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 11, Projects: 2, IssuesPerProject: 12, CommentsPerIssue: 2})
	status, body := env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{
		"vendor": "JIRA",
		"options": map[string]any{
			// Not in name order: the API keeps the customer's order.
			"priority_mapping": []map[string]string{{"Medium": "LOW"}, {"Highest": "HIGH"}, {"Blocker": "CRITICAL"}},
			"status_mapping":   []map[string]string{{"To Do": "OPEN"}, {"Backlog": "TODO"}},
		},
	})
	require.Equal(t, http.StatusCreated, status, body)
	var created connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	require.Equal(t, []map[string]string{{"Medium": "LOW"}, {"Highest": "HIGH"}, {"Blocker": "CRITICAL"}}, created.Options.PriorityMapping)
	require.Equal(t, []map[string]string{{"To Do": "OPEN"}, {"Backlog": "TODO"}}, created.Options.StatusMapping)

	// Before consent there is no site to ask.
	st, body := env.Call(t, http.MethodGet, keyA, "/v1/connections/"+created.ID+"/mappings", nil)
	require.Equal(t, http.StatusConflict, st, body)
	st, _ = env.Call(t, http.MethodPost, keyA, "/v1/connections", map[string]any{
		"vendor": "JIRA", "options": map[string]any{"status_mapping": []map[string]string{{"Backlog": "BACKLOG"}}}})
	require.Equal(t, http.StatusBadRequest, st, "BACKLOG is not a status of the model")

	apptest.Connect(t, created.OAuth2AuthorizeURL)

	// The mapping report: every status and priority of the site, and why.
	var report connections.MappingReport
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+created.ID+"/mappings", &report))
	require.Equal(t, "vendor", report.Source)
	require.NotEmpty(t, report.Statuses)
	require.NotEmpty(t, report.Priorities)
	for _, s := range report.Statuses {
		require.Contains(t, itsm.MappingTargets(), s.Status, "%s", s.Name)
		if s.Name == "To Do" {
			require.Equal(t, itsm.StatusOpen, s.Status)
			require.EqualValues(t, "custom", s.MappedBy)
		}
	}
	for _, p := range report.Priorities {
		require.Contains(t, itsm.Priorities, p.Priority, "%s", p.Name)
		if p.Name == "Highest" {
			require.Equal(t, itsm.PriorityHigh, p.Priority)
			require.EqualValues(t, "custom", p.MappedBy)
		}
	}
	require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyB, "/v1/connections/"+created.ID+"/mappings", nil))

	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+created.ID+"/sync?kind=full", nil)
	require.Less(t, st, 300, body)
	apptest.Eventually(t, 60*time.Second, "the full sync completes", func() bool {
		var v connections.View
		return env.GetJSON(t, keyA, "/v1/connections/"+created.ID, &v) == http.StatusOK &&
			v.LastSync != nil && v.LastSync.Kind == store.SyncFull && v.LastSync.Status == store.SyncCompleted
	})
	// COMPLETED means published; the records are stored once the
	// normalizer has taken them all.
	apptest.Eventually(t, 60*time.Second, "the normalizer is idle", func() bool {
		idle, err := normalizer.Idle(context.Background(), env.JetStream())
		return err == nil && idle
	})

	filled := map[string]map[string]bool{}
	for coll, fields := range modelFields {
		filled[coll] = map[string]bool{}
		items := listAll(t, env, keyA, "/v1/itsm/"+coll+"?connection_id="+created.ID)
		require.NotEmpty(t, items, "no %s", coll)
		for _, it := range items {
			for _, f := range fields {
				v, ok := it[f]
				require.True(t, ok, "%s lack %q: %v", coll, f, it)
				if v != nil && v != "" {
					filled[coll][f] = true
				}
			}
			switch coll {
			case "tickets":
				require.Contains(t, itsm.Statuses, itsm.Status(it["status"].(string)))
				require.NotEqual(t, "DELETED", it["status"])
				require.Contains(t, itsm.Priorities, itsm.Priority(it["priority"].(string)))
				va := it["vendor_attributes"].(map[string]any)
				require.Contains(t, []any{"custom", "keyword", "category", "none"}, va["status_mapped_by"])
				require.Contains(t, []any{"custom", "keyword", "rank", "none"}, va["priority_mapped_by"])
			default:
				require.Contains(t, []any{"ACTIVE", "INACTIVE"}, it["status"], "%s", coll)
			}
			require.NotNil(t, it["status_updated_at"], "%s", coll)
		}
	}
	for coll, want := range map[string][]string{
		"tickets":     {"description", "project_id", "created_by_user_id", "ticket_created_at", "url", "identifier"},
		"projects":    {"category", "url", "description"},
		"comments":    {"author_id", "body"},
		"attachments": {"uploaded_by_user_id", "mime_type"},
		"users":       {"name"},
		"groups":      {"name"},
	} {
		for _, f := range want {
			require.True(t, filled[coll][f], "no %s has %s", coll, f)
		}
	}

	// The user filter by email, case-insensitively.
	users := listAll(t, env, keyA, "/v1/itsm/users?connection_id="+created.ID)
	i := slices.IndexFunc(users, func(u map[string]any) bool { e, _ := u["email"].(string); return e != "" })
	require.GreaterOrEqual(t, i, 0, "the simulator has users with visible emails")
	email := users[i]["email"].(string)
	byEmail := listAll(t, env, keyA, "/v1/itsm/users?email="+upper(email))
	require.Len(t, byEmail, 1)
	require.Equal(t, users[i]["id"], byEmail[0]["id"])
	require.Empty(t, listAll(t, env, keyB, "/v1/itsm/users?email="+email), "another organization's users stay hidden")
	name := users[i]["name"].(string)
	byName := listAll(t, env, keyA, "/v1/itsm/users?name="+url.QueryEscape(upper(name)))
	require.NotEmpty(t, byName)
	for _, u := range byName {
		require.True(t, strings.EqualFold(name, u["name"].(string)), "%v", u)
	}
	require.Empty(t, listAll(t, env, keyB, "/v1/itsm/users?name="+url.QueryEscape(name)))
	st, _ = env.Call(t, http.MethodGet, keyA, "/v1/itsm/users?status=OPEN", nil)
	require.Equal(t, http.StatusBadRequest, st, "users have lifecycle statuses")
	_ = sim
}

// Keys are unique only per connection: by-identifier with connection_id
// answers that connection's ticket.
func TestByIdentifierHonoursTheConnection(t *testing.T) {
	env := apptest.Start(t, map[string]string{keyA: "org-a", keyB: "org-b"})
	env.AddConnection(t, "conn-1", "org-a", "https://zulipp.atlassian.net")
	env.AddConnection(t, "conn-2", "org-a", "https://zulipp.atlassian.net")
	body := apptest.Fixture(t, "webhooks/issue_updated_status_change_01.json")
	for _, c := range []string{"conn-1", "conn-2"} {
		st, resp := env.PostWebhook(t, c, "delivery-"+c, body)
		require.Equal(t, http.StatusAccepted, st, resp)
	}
	for _, c := range []string{"conn-1", "conn-2"} {
		want := itsm.ObjectID(c, itsm.KindTicket, "10000")
		var tk itsm.Ticket
		apptest.Eventually(t, 10*time.Second, "the ticket of "+c, func() bool {
			return env.GetJSON(t, keyA, "/v1/itsm/tickets/by-identifier/TEST-1?connection_id="+c, &tk) == http.StatusOK
		})
		require.Equal(t, want, tk.ID)
		require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyB, "/v1/itsm/tickets/by-identifier/TEST-1?connection_id="+c, nil))
	}
	require.Equal(t, http.StatusNotFound, env.GetJSON(t, keyA, "/v1/itsm/tickets/by-identifier/TEST-1?connection_id=conn-3", nil))
	st, _ := env.Call(t, http.MethodGet, keyA, "/v1/itsm/tickets/by-identifier/TEST-1?connection=conn-1", nil)
	require.Equal(t, http.StatusBadRequest, st, "a misspelt parameter is an error, not ignored")
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// listAll pages through a list endpoint.
func listAll(t *testing.T, env *apptest.Env, key, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sep := "&"
	if !slices.Contains([]byte(path), '?') {
		sep = "?"
	}
	next := path + sep + "limit=1000"
	for {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		require.Equal(t, http.StatusOK, env.GetJSON(t, key, next, &page), next)
		out = append(out, page.Items...)
		if page.NextCursor == nil {
			return out
		}
		next = path + sep + "limit=1000&cursor=" + *page.NextCursor
	}
}
