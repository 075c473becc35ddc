package jirasim

import (
	"slices"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/fixtures"
)

// readFixture reads a real Jira payload, unedited.
func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	return fixtures.Jira(t, rel)
}

// platformView is what the platform reads from a webhook body.
type platformView struct {
	WebhookEvent string `json:"webhookEvent"`
	Timestamp    int64  `json:"timestamp"`
	Issue        struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Self   string `json:"self"`
		Fields struct {
			Updated string `json:"updated"`
			Summary string `json:"summary"`
			Status  struct {
				Name           string `json:"name"`
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
			Priority *struct {
				Name string `json:"name"`
			} `json:"priority"`
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"fields"`
	} `json:"issue"`
}

func topKeys(t *testing.T, b []byte, path ...string) []string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	ks := keys(m)
	slices.Sort(ks)
	return ks
}

// simBodies captures one delivery per event kind from the simulator.
func simBodies(t *testing.T) map[string][]byte {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL, hook("project = SUP", "jira:issue_updated", "comment_created", "jira:issue_deleted"))
	// platformView needs a priority; then at least one transition changes the status.
	_, err := s.UpdateIssue("SUP-2", IssueUpdate{Priority: ptr("Medium")})
	require.NoError(t, err)
	for _, st := range []string{"Fertig", "To Do"} {
		_, err = s.TransitionIssue("SUP-2", st)
		require.NoError(t, err)
	}
	_, err = s.AddComment("SUP-2", "hello")
	require.NoError(t, err)
	require.NoError(t, s.DeleteIssue("SUP-3"))
	waitIdle(t, s)
	out := map[string][]byte{}
	for _, r := range rc.all() {
		m := r.json(t)
		k := m["webhookEvent"].(string)
		if tn, ok := m["issue_event_type_name"].(string); ok {
			k += "/" + tn
		}
		if _, dup := out[k]; !dup {
			out[k] = r.Body
		}
	}
	return out
}

func TestWebhookBodiesMatchRealFixtures(t *testing.T) {
	real := readFixture(t, "webhooks/issue_updated_status_change_01.json")
	bodies := simBodies(t)
	sim := bodies["jira:issue_updated/issue_generic"]
	require.NotNil(t, sim)

	for name, b := range map[string][]byte{"fixture": real, "simulator": sim} {
		var v platformView
		require.NoError(t, json.Unmarshal(b, &v), name)
		require.Equal(t, "jira:issue_updated", v.WebhookEvent, name)
		require.Positive(t, v.Timestamp, name)
		require.NotEmpty(t, v.Issue.ID, name)
		require.NotEmpty(t, v.Issue.Key, name)
		require.Contains(t, v.Issue.Self, "/rest/api/2/issue/", name)
		require.NotEmpty(t, v.Issue.Fields.Summary, name)
		require.NotEmpty(t, v.Issue.Fields.Status.Name, name)
		require.NotEmpty(t, v.Issue.Fields.Status.StatusCategory.Key, name)
		require.NotNil(t, v.Issue.Fields.Priority, name)
		require.NotEmpty(t, v.Issue.Fields.Priority.Name, name)
		require.NotEmpty(t, v.Issue.Fields.Project.ID, name)
		_, err := time.Parse(jiraTimeLayout, v.Issue.Fields.Updated)
		require.NoError(t, err, name)
	}

	// Same envelope; the simulator adds matchedWebhookIds (3LO app webhooks).
	require.Equal(t, withMatched(topKeys(t, real)), topKeys(t, sim))
	require.Equal(t, topKeys(t, real, "issue"), topKeys(t, sim, "issue"))
	var rc, sc struct {
		Changelog struct {
			Items []map[string]any `json:"items"`
		} `json:"changelog"`
	}
	require.NoError(t, json.Unmarshal(real, &rc))
	require.NoError(t, json.Unmarshal(sim, &sc))
	for k := range rc.Changelog.Items[0] {
		require.Contains(t, sc.Changelog.Items[0], k)
	}
	// Every non-custom field of the real issue is present in the simulator's.
	simFields := topKeys(t, sim, "issue", "fields")
	for _, k := range topKeys(t, real, "issue", "fields") {
		if len(k) > 12 && k[:12] == "customfield_" {
			continue
		}
		require.Contains(t, simFields, k)
	}

	// The same holds for comment_created and jira:issue_deleted.
	realComment := readFixture(t, "webhooks/comment_created_cloud_02.json")
	simComment := bodies["comment_created"]
	require.Equal(t, withMatched(topKeys(t, realComment)), topKeys(t, simComment))
	require.Equal(t, topKeys(t, realComment, "comment"), topKeys(t, simComment, "comment"))
	require.Equal(t, topKeys(t, realComment, "issue", "fields"), topKeys(t, simComment, "issue", "fields"))
	realDeleted := readFixture(t, "webhooks/issue_deleted_cloud_01.json")
	require.Equal(t, withMatched(topKeys(t, realDeleted)), topKeys(t, bodies["jira:issue_deleted"]))
}

// TestRESTMatchesRealFixtures compares REST v3 shapes with real responses.
func TestRESTMatchesRealFixtures(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken

	var realSearch struct {
		Issues []map[string]any `json:"issues"`
	}
	require.NoError(t, json.Unmarshal(readFixture(t, "rest/search_v3_epic_adf_airbyte_01.json"), &realSearch))
	p := apiJSON[searchPage](t, s, tok, "POST", "search/jql", map[string]any{"jql": "key = SUP-1", "fields": []string{"*all"}}, 200)
	simIssue := p.Issues[0]
	for _, k := range []string{"expand", "id", "self", "key", "fields"} {
		require.Contains(t, simIssue, k)
	}
	rf, sf := realSearch.Issues[0]["fields"].(map[string]any), simIssue["fields"].(map[string]any)
	for k := range rf {
		if len(k) > 12 && k[:12] == "customfield_" || k == "development" {
			continue
		}
		require.Contains(t, sf, k)
	}
	require.Equal(t, "doc", sf["description"].(map[string]any)["type"])
	require.Equal(t, rf["issuetype"].(map[string]any)["hierarchyLevel"], sf["issuetype"].(map[string]any)["hierarchyLevel"], "both are epics")

	var realComments struct {
		Comments []map[string]any `json:"comments"`
	}
	require.NoError(t, json.Unmarshal(readFixture(t, "rest/issue_comments_v3_adf_01.json"), &realComments))
	sc := apiJSON[struct {
		Comments []map[string]any `json:"comments"`
	}](t, s, tok, "GET", "issue/SUP-1/comment", nil, 200).Comments[0]
	for k := range realComments.Comments[0] {
		require.Contains(t, sc, k)
	}

	var realProjects struct {
		Values []map[string]any `json:"values"`
	}
	require.NoError(t, json.Unmarshal(readFixture(t, "rest/project_search_v3_airbyte_01.json"), &realProjects))
	sp := apiJSON[pageBeanT](t, s, tok, "GET", "project/search?expand=description", nil, 200).Values[0]
	for k := range realProjects.Values[0] {
		require.Contains(t, sp, k)
	}

	var realUser map[string]any
	require.NoError(t, json.Unmarshal(readFixture(t, "rest/user_cloud_v3_01.json"), &realUser))
	me := apiJSON[map[string]any](t, s, tok, "GET", "myself", nil, 200)
	for k := range realUser {
		require.Contains(t, me, k)
	}
}

func withMatched(ks []string) []string {
	ks = append(ks, "matchedWebhookIds")
	slices.Sort(ks)
	return ks
}
