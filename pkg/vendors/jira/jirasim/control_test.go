package jirasim

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

func ctl(t *testing.T, s *Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL()+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		require.NoError(t, json.Unmarshal(raw, &m), string(raw))
	}
	return resp.StatusCode, m
}

func TestControlEndpoints(t *testing.T) {
	s, _ := testSim(t, nil)
	tok := login(t, s).AccessToken
	rc := newReceiver(t)
	register(t, s, tok, rc.URL, hook("project = OPS", "jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
		"comment_created", "comment_updated", "comment_deleted"))

	st, info := ctl(t, s, "GET", "/_sim/info", nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, s.ClientID(), info["clientId"])

	st, created := ctl(t, s, "POST", "/_sim/issues", map[string]any{"project": "OPS", "summary": "Printer on fire 🔥", "priority": "Highest", "labels": []string{"hw"}})
	require.Equal(t, http.StatusCreated, st)
	key := created["key"].(string)
	require.Equal(t, "OPS-31", key, "created issues continue the project's numbering")

	st, _ = ctl(t, s, "POST", "/_sim/issues", map[string]any{"project": "NOPE", "summary": "x"})
	require.Equal(t, http.StatusNotFound, st)
	st, _ = ctl(t, s, "POST", "/_sim/issues", map[string]any{"project": "OPS"})
	require.Equal(t, http.StatusBadRequest, st)

	st, _ = ctl(t, s, "PUT", "/_sim/issues/"+key, map[string]any{"assignee": s.Default().Users()[3].AccountID})
	require.Equal(t, http.StatusOK, st)
	st, _ = ctl(t, s, "POST", "/_sim/issues/"+key+"/transition", map[string]any{"status": "Waiting for customer"})
	require.Equal(t, http.StatusOK, st)
	st, cm := ctl(t, s, "POST", "/_sim/issues/"+key+"/comments", map[string]any{"body": "On it."})
	require.Equal(t, http.StatusCreated, st)
	cid := cm["id"].(string)
	st, _ = ctl(t, s, "PUT", "/_sim/issues/"+key+"/comments/"+cid, map[string]any{"body": "On it!"})
	require.Equal(t, http.StatusOK, st)
	st, _ = ctl(t, s, "DELETE", "/_sim/issues/"+key+"/comments/"+cid, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, _ = ctl(t, s, "DELETE", "/_sim/issues/"+key, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, _ = ctl(t, s, "DELETE", "/_sim/issues/"+key, nil)
	require.Equal(t, http.StatusNotFound, st)

	st, stats := ctl(t, s, "POST", "/_sim/deliveries/wait?timeout=10s", nil)
	require.Equal(t, http.StatusOK, st)
	require.EqualValues(t, 0, stats["pending"])
	var events []string
	for _, r := range rc.all() {
		m := r.json(t)
		e := m["webhookEvent"].(string)
		if tn, ok := m["issue_event_type_name"].(string); ok {
			e += "/" + tn
		}
		events = append(events, e)
	}
	require.Equal(t, []string{
		"jira:issue_created/issue_created", "jira:issue_updated/issue_assigned", "jira:issue_updated/issue_generic",
		"comment_created", "jira:issue_updated/issue_commented", "comment_updated", "jira:issue_updated/issue_comment_edited",
		"comment_deleted", "jira:issue_updated/issue_comment_deleted", "jira:issue_deleted",
	}, events)

	before := s.Now()
	st, clk := ctl(t, s, "POST", "/_sim/clock/advance", map[string]any{"duration": "720h"})
	require.Equal(t, http.StatusOK, st)
	now, err := time.Parse(time.RFC3339Nano, clk["now"].(string))
	require.NoError(t, err)
	require.Equal(t, 720*time.Hour, now.Sub(before))

	st, f := ctl(t, s, "POST", "/_sim/faults", map[string]any{"duplicateProb": 0.5, "maxDelay": "10ms"})
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, 0.5, f["duplicateProb"])
	require.Equal(t, Duration(10*time.Millisecond), s.Faults().MaxDelay)

	tok = login(t, s).AccessToken // the old token expired with the clock jump
	st, _ = ctl(t, s, "POST", "/_sim/ratelimit", map[string]any{"everyNth": 2})
	require.Equal(t, http.StatusOK, st)
	c1, _, _ := api(t, s, tok, "GET", "status", nil)
	c2, _, _ := api(t, s, tok, "GET", "status", nil)
	require.Equal(t, []int{200, 429}, []int{c1, c2})
	ctl(t, s, "POST", "/_sim/ratelimit", nil)

	st, _ = ctl(t, s, "POST", "/_sim/consent", map[string]any{"deny": true})
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "access_denied", authorize(t, s, nil).Query().Get("error"))
}
