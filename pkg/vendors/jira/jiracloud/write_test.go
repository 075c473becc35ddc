package jiracloud_test

import (
	"context"
	"net/http"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

func TestWritesAgainstTheSimulator(t *testing.T) {
	sim, c := simClient(t, jirasim.Options{Seed: 5, Projects: 2, IssuesPerProject: 3})
	ctx := context.Background()
	project := sim.Default().ProjectKeys()[0]

	created, err := c.CreateIssue(ctx, jiracloud.Fields{"project": map[string]string{"key": project}, "summary": "Finding",
		"issuetype": map[string]string{"name": "Task"}, "description": jira.ADF("found on host a"), "priority": map[string]string{"name": "High"}})
	require.NoError(t, err)
	require.NotEmpty(t, created.ID)
	require.Contains(t, created.Key, project+"-")

	_, err = c.CreateIssue(ctx, jiracloud.Fields{"project": map[string]string{"key": project}, "issuetype": map[string]string{"name": "Task"}})
	require.True(t, jiracloud.IsStatus(err, http.StatusBadRequest), "%v", err)
	require.Contains(t, err.Error(), "summary")

	require.NoError(t, c.EditIssue(ctx, created.Key, jiracloud.Fields{"summary": "Finding (confirmed)", "labels": []string{"sec"}}))
	raw, err := c.IssueRaw(ctx, created.ID, []string{"summary", "labels", "description", "status"})
	require.NoError(t, err)
	var is struct {
		Fields struct {
			Summary     string          `json:"summary"`
			Labels      []string        `json:"labels"`
			Description json.RawMessage `json:"description"`
			Status      struct {
				Name string `json:"name"`
			} `json:"status"`
		} `json:"fields"`
	}
	require.NoError(t, json.Unmarshal(raw, &is))
	require.Equal(t, "Finding (confirmed)", is.Fields.Summary)
	require.Equal(t, []string{"sec"}, is.Fields.Labels)
	require.Equal(t, "found on host a", jira.PlainText(is.Fields.Description))

	trs, err := c.Transitions(ctx, created.Key)
	require.NoError(t, err)
	var inProgress string
	for _, tr := range trs {
		require.NotEmpty(t, tr.ID)
		require.NotEmpty(t, tr.To.StatusCategory.Key)
		if tr.To.Name == "In Progress" {
			inProgress = tr.ID
		}
	}
	require.NotEmpty(t, inProgress)
	require.NoError(t, c.DoTransition(ctx, created.Key, inProgress))
	require.True(t, jiracloud.IsStatus(c.DoTransition(ctx, created.Key, inProgress), http.StatusBadRequest),
		"a transition not valid from the new status is refused")

	cm, err := c.AddComment(ctx, created.Key, jira.ADF("triaged"))
	require.NoError(t, err)
	var comment struct {
		ID   string          `json:"id"`
		Body json.RawMessage `json:"body"`
	}
	require.NoError(t, json.Unmarshal(cm, &comment))
	require.NotEmpty(t, comment.ID)
	require.Equal(t, "triaged", jira.PlainText(comment.Body))
}

func TestSearchPagesIssuesWithFields(t *testing.T) {
	sim, c := simClient(t, jirasim.Options{Seed: 3, Projects: 2, IssuesPerProject: 7})
	ctx := context.Background()
	jql := projectJQL(sim.Default().ProjectKeys())
	var keys []string
	token := ""
	for pages := 1; ; pages++ {
		p, err := c.Search(ctx, jql, token, 5, []string{"summary", "updated"})
		require.NoError(t, err)
		for _, raw := range p.Issues {
			var is struct {
				Key    string `json:"key"`
				Fields struct {
					Summary string `json:"summary"`
				} `json:"fields"`
			}
			require.NoError(t, json.Unmarshal(raw, &is))
			require.NotEmpty(t, is.Fields.Summary)
			keys = append(keys, is.Key)
		}
		if p.IsLast {
			require.Equal(t, 3, pages)
			break
		}
		token = p.NextPageToken
	}
	require.Len(t, keys, 14)
}
