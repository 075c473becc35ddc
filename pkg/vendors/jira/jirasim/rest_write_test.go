package jirasim

import (
	"net/http"
	"net/url"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

func adfOf(text string) map[string]any {
	return map[string]any{"type": "doc", "version": 1.0, "content": []any{
		map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": text}}}}}
}

type issueT struct {
	ID     string         `json:"id"`
	Key    string         `json:"key"`
	Fields map[string]any `json:"fields"`
}

func TestRESTCreateEditCommentEmitWebhooks(t *testing.T) {
	s, clk := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL, hook("project = SUP", "jira:issue_created", "jira:issue_updated", "comment_created"))
	admin := s.Default().Users()[1].AccountID

	created := apiJSON[map[string]any](t, s, tok, "POST", "issue", map[string]any{"fields": map[string]any{
		"project": map[string]any{"key": "SUP"}, "summary": "Finding 1", "issuetype": map[string]any{"name": "Bug"},
		"description": adfOf("CVE-2026-1 on host a"), "priority": map[string]any{"name": "High"},
		"assignee": map[string]any{"accountId": admin}, "labels": []string{"security"}, "duedate": "2026-03-01",
	}}, http.StatusCreated)
	key := created["key"].(string)
	require.NotEmpty(t, created["id"])
	require.Contains(t, created["self"], "/rest/api/3/issue/"+created["id"].(string))

	is := apiJSON[issueT](t, s, tok, "GET", "issue/"+key, nil, http.StatusOK)
	require.Equal(t, "Finding 1", is.Fields["summary"])
	require.Equal(t, "Bug", is.Fields["issuetype"].(map[string]any)["name"])
	require.Equal(t, "High", is.Fields["priority"].(map[string]any)["name"])
	require.Equal(t, admin, is.Fields["assignee"].(map[string]any)["accountId"])
	require.Equal(t, []any{"security"}, is.Fields["labels"])
	require.Equal(t, "2026-03-01", is.Fields["duedate"])
	require.Equal(t, adfOf("CVE-2026-1 on host a"), is.Fields["description"], "the ADF is stored as sent")
	updated0 := is.Fields["updated"]

	clk.Advance(1)
	st, _, raw := api(t, s, tok, "PUT", "issue/"+key, map[string]any{"fields": map[string]any{
		"summary": "Finding 1 (confirmed)", "priority": map[string]any{"id": "1"}, "assignee": nil, "labels": []string{"security", "p1"}, "duedate": nil,
	}})
	require.Equal(t, http.StatusNoContent, st, string(raw))
	is = apiJSON[issueT](t, s, tok, "GET", "issue/"+key, nil, http.StatusOK)
	require.Equal(t, "Finding 1 (confirmed)", is.Fields["summary"])
	require.Equal(t, "Highest", is.Fields["priority"].(map[string]any)["name"])
	require.Nil(t, is.Fields["assignee"])
	require.Nil(t, is.Fields["duedate"])
	require.NotEqual(t, updated0, is.Fields["updated"], "an edit moves updated")

	cm := apiJSON[map[string]any](t, s, tok, "POST", "issue/"+key+"/comment", map[string]any{"body": adfOf("triaged")}, http.StatusCreated)
	require.Equal(t, adfOf("triaged"), cm["body"])
	require.NotEmpty(t, cm["id"])

	waitIdle(t, s)
	var events []string
	for _, d := range rc.all() {
		events = append(events, d.json(t)["webhookEvent"].(string))
	}
	require.Equal(t, []string{"jira:issue_created", "jira:issue_updated", "comment_created", "jira:issue_updated"}, events)
}

func TestRESTWritesValidate(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	for name, c := range map[string]struct {
		fields map[string]any
		field  string
	}{
		"plain description": {map[string]any{"project": map[string]any{"key": "SUP"}, "summary": "x", "issuetype": map[string]any{"name": "Task"}, "description": "text"}, "description"},
		"no summary":        {map[string]any{"project": map[string]any{"key": "SUP"}, "issuetype": map[string]any{"name": "Task"}}, "summary"},
		"unknown project":   {map[string]any{"project": map[string]any{"key": "NOPE"}, "summary": "x", "issuetype": map[string]any{"name": "Task"}}, "project"},
		"unknown priority":  {map[string]any{"project": map[string]any{"key": "SUP"}, "summary": "x", "issuetype": map[string]any{"name": "Task"}, "priority": map[string]any{"name": "Urgent!"}}, "priority"},
		"unknown field":     {map[string]any{"project": map[string]any{"key": "SUP"}, "summary": "x", "issuetype": map[string]any{"name": "Task"}, "customfield_1": 1}, "customfield_1"},
	} {
		st, _, raw := api(t, s, tok, "POST", "issue", map[string]any{"fields": c.fields})
		require.Equal(t, http.StatusBadRequest, st, name)
		var e struct {
			Errors map[string]string `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(raw, &e))
		require.Contains(t, e.Errors, c.field, "%s: %s", name, raw)
	}
	st, _, _ := api(t, s, tok, "PUT", "issue/SUP-99999", map[string]any{"fields": map[string]any{"summary": "x"}})
	require.Equal(t, http.StatusNotFound, st)
	st, _, _ = api(t, s, tok, "PUT", "issue/SUP-1", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"}}})
	require.Equal(t, http.StatusBadRequest, st, "the project is not editable")
	st, _, _ = api(t, s, tok, "POST", "issue/SUP-1/comment", map[string]any{"body": "plain"})
	require.Equal(t, http.StatusBadRequest, st, "comment bodies are ADF in v3")
}

func TestRESTTransitionsFollowTheWorkflow(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	created := apiJSON[map[string]any](t, s, tok, "POST", "issue", map[string]any{"fields": map[string]any{
		"project": map[string]any{"key": "SUP"}, "summary": "wf", "issuetype": map[string]any{"name": "Task"}}}, http.StatusCreated)
	key := created["key"].(string)

	type tr struct {
		ID string `json:"id"`
		To struct {
			Name           string `json:"name"`
			StatusCategory struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		} `json:"to"`
	}
	list := func() map[string]tr {
		out := map[string]tr{}
		for _, x := range apiJSON[struct {
			Transitions []tr `json:"transitions"`
		}](t, s, tok, "GET", "issue/"+key+"/transitions", nil, http.StatusOK).Transitions {
			out[x.To.Name] = x
		}
		return out
	}
	fromNew := list()
	require.Contains(t, fromNew, "In Progress")
	require.Contains(t, fromNew, "Won't Do")
	require.NotContains(t, fromNew, "Done", "a new issue cannot be done without work")
	require.NotContains(t, fromNew, "To Do", "no transition to the current status")

	// A transition id of the workflow that is not valid from here: 400.
	doneID := transitionID(7)
	st, _, raw := api(t, s, tok, "POST", "issue/"+key+"/transitions", map[string]any{"transition": map[string]any{"id": doneID}})
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, errorMessages(t, raw), "is not valid for this issue")

	st, _, raw = api(t, s, tok, "POST", "issue/"+key+"/transitions", map[string]any{"transition": map[string]any{"id": fromNew["In Progress"].ID}})
	require.Equal(t, http.StatusNoContent, st, string(raw))
	require.Contains(t, list(), "Done")
	st, _, _ = api(t, s, tok, "POST", "issue/"+key+"/transitions", map[string]any{"transition": map[string]any{"id": doneID}})
	require.Equal(t, http.StatusNoContent, st)
	is := apiJSON[issueT](t, s, tok, "GET", "issue/"+key, nil, http.StatusOK)
	require.Equal(t, "Done", is.Fields["status"].(map[string]any)["name"])
	require.NotNil(t, is.Fields["resolutiondate"])
	fromDone := list()
	require.Len(t, fromDone, 2, "reopen only: %v", fromDone)
}

func TestRESTWritesNeedTheWriteScope(t *testing.T) {
	s, _ := testSim(t, nil)
	loc := authorize(t, s, url.Values{"scope": {"read:jira-work offline_access"}})
	_, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "code": loc.Query().Get("code"), "redirect_uri": testRedirect})
	var tr tokenResp
	require.NoError(t, json.Unmarshal(raw, &tr))
	for _, c := range []struct{ method, path string }{
		{"POST", "issue"}, {"PUT", "issue/SUP-1"}, {"POST", "issue/SUP-1/transitions"}, {"POST", "issue/SUP-1/comment"},
	} {
		st, _, body := api(t, s, tr.AccessToken, c.method, c.path, map[string]any{})
		require.Equal(t, http.StatusForbidden, st, "%s %s", c.method, c.path)
		require.Contains(t, string(body), "scope does not match")
	}
	st, _, _ := api(t, s, tr.AccessToken, "GET", "issue/SUP-1/transitions", nil)
	require.Equal(t, http.StatusOK, st, "listing transitions is a read")
	is := apiJSON[issueT](t, s, tr.AccessToken, "GET", "issue/SUP-1", nil, http.StatusOK)
	require.NotEqual(t, "", is.ID)
}
