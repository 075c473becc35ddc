package snsim

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func send(t *testing.T, s *Server, c cred, method, path, body string) resp {
	t.Helper()
	req, err := http.NewRequest(method, s.BaseURL("")+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func TestTableAPIWrites(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	rc := newReceiver(t)
	_, err := in.Subscribe(Subscription{Tables: []string{"incident"}, URL: rc.URL, Secret: "k"})
	require.NoError(t, err)

	r := send(t, s, asITIL, "POST", "/api/now/table/incident?sysparm_exclude_reference_link=true",
		`{"short_description":"Created through the API","impact":1,"urgency":"2","no_such_field":"x","work_notes":"first note"}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	rec := decode[struct{ Result map[string]any }](t, r.body).Result
	id := rec["sys_id"].(string)
	require.Equal(t, "2", rec["priority"])
	require.Equal(t, "itsm.integration", rec["sys_created_by"])
	require.NotContains(t, rec, "no_such_field")
	js, _ := list(t, s, asITIL, "/api/now/v2/table/sys_journal_field?sysparm_query=element_id="+id)
	require.Len(t, js, 1)
	require.Equal(t, "first note", js[0]["value"])

	r = send(t, s, asITIL, "PATCH", "/api/now/table/incident/"+id+"?sysparm_display_value=true", `{"state":"2"}`)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "In Progress", decode[struct{ Result map[string]any }](t, r.body).Result["state"])
	r = send(t, s, asITIL, "PUT", "/api/now/table/incident/"+id, `{"comments":"only a comment"}`)
	require.Equal(t, 200, r.status)

	require.Equal(t, http.StatusNoContent, send(t, s, asITIL, "DELETE", "/api/now/table/incident/"+id, "").status)
	require.Equal(t, http.StatusNotFound, send(t, s, asITIL, "DELETE", "/api/now/table/incident/"+id, "").status)
	waitIdle(t, s)
	ops := []string{}
	for _, x := range rc.all() {
		ops = append(ops, verify(t, "k", x).Operation)
	}
	require.Equal(t, []string{"insert", "update", "update", "update", "delete"}, ops, "insert, its work note, the patch, the comment, the delete")

	require.Equal(t, http.StatusForbidden, send(t, s, asNoRole, "POST", "/api/now/table/incident", `{}`).status)
	require.Equal(t, http.StatusForbidden, send(t, s, asITIL, "POST", "/api/now/table/sys_user", `{"user_name":"x"}`).status)
	require.Equal(t, http.StatusCreated, send(t, s, asAdmin, "POST", "/api/now/table/sys_user", `{"user_name":"x"}`).status)
	require.Equal(t, http.StatusBadRequest, send(t, s, asITIL, "POST", "/api/now/table/incident", `{nope`).status)
	require.Equal(t, http.StatusBadRequest, send(t, s, asITIL, "POST", "/api/now/table/nope", `{}`).status)
	hidden := ""
	for _, x := range mustRecords(t, in, "incident") {
		if x["assignment_group"] == in.RestrictedGroup() {
			hidden = x["sys_id"]
		}
	}
	require.Equal(t, http.StatusNotFound, send(t, s, asITIL, "PATCH", "/api/now/table/incident/"+hidden, `{"state":"2"}`).status)
}
