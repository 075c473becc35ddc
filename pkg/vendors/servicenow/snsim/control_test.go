package snsim

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

func ctl(t *testing.T, s *Server, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.BaseURL("")+path, rd)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func TestControlEndpoints(t *testing.T) {
	s, _ := testSim(t, nil)
	rc := newReceiver(t)

	status, b := ctl(t, s, "POST", "/_sim/push/subscriptions", map[string]any{"tables": []string{"incident"}, "url": rc.URL, "secret": "sekret", "include_record": true})
	require.Equal(t, http.StatusCreated, status, string(b))
	require.NotContains(t, string(b), "sekret")

	status, b = ctl(t, s, "POST", "/_sim/records/incident", map[string]any{"fields": map[string]string{"short_description": "from control", "impact": "1", "urgency": "1"}, "as": "itsm.integration"})
	require.Equal(t, http.StatusCreated, status, string(b))
	rec := decode[Record](t, b)
	require.Equal(t, "1", rec["priority"])
	id := rec["sys_id"]

	status, b = ctl(t, s, "POST", "/_sim/clock/advance", map[string]any{"duration": "2h"})
	require.Equal(t, 200, status)
	require.Equal(t, fmtTime(testStart.Add(2*time.Hour)), decode[map[string]string](t, b)["now"])

	status, b = ctl(t, s, "PATCH", "/_sim/records/incident/"+id, map[string]any{"fields": map[string]string{"state": "2"}})
	require.Equal(t, 200, status, string(b))
	require.Equal(t, fmtTime(testStart.Add(2*time.Hour)), decode[Record](t, b)["sys_updated_on"])

	status, _ = ctl(t, s, "POST", "/_sim/records/incident/"+id+"/journal", map[string]any{"element": "work_notes", "value": "note"})
	require.Equal(t, http.StatusCreated, status)
	status, _ = ctl(t, s, "POST", "/_sim/records/incident/"+id+"/attachments", map[string]any{"file_name": "a.bin", "content_base64": "AAEC"})
	require.Equal(t, http.StatusCreated, status)
	status, _ = ctl(t, s, "POST", "/_sim/records/incident/"+id+"/tags", map[string]any{"label": "vip"})
	require.Equal(t, http.StatusCreated, status)
	status, _ = ctl(t, s, "PATCH", "/_sim/records/incident/"+id, map[string]any{"fields": map[string]string{"state": "3"}, "skip_workflow": true})
	require.Equal(t, 200, status)
	status, _ = ctl(t, s, "DELETE", "/_sim/records/incident/"+id+"?skip_workflow=true", nil)
	require.Equal(t, http.StatusNoContent, status)
	status, b = ctl(t, s, "GET", "/_sim/records/incident/"+id, nil)
	require.Equal(t, http.StatusNotFound, status, string(b))

	status, b = ctl(t, s, "POST", "/_sim/push/wait?timeout=5s", nil)
	require.Equal(t, 200, status, string(b))
	st := decode[DeliveryStats](t, b)
	require.Equal(t, 3, st.Delivered, "insert, update, journal update")
	require.Equal(t, 2, st.Skipped)
	require.Len(t, rc.all(), 3)

	// Errors name the problem.
	status, b = ctl(t, s, "POST", "/_sim/records/nope", map[string]any{})
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, string(b), "nope")
	status, b = ctl(t, s, "POST", "/_sim/records/incident", map[string]any{"fields": map[string]string{"bogus": "1"}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, string(b), "bogus")
	status, _ = ctl(t, s, "POST", "/_sim/clock/advance", map[string]any{"duration": "-1h"})
	require.Equal(t, http.StatusBadRequest, status)

	// Faults, rate limits and the request log.
	status, _ = ctl(t, s, "POST", "/_sim/ratelimits", []RateRule{{Limit: 1}})
	require.Equal(t, 200, status)
	require.Equal(t, 200, call(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=1").status)
	require.Equal(t, http.StatusTooManyRequests, call(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=1").status)
	status, _ = ctl(t, s, "POST", "/_sim/ratelimits", []RateRule{})
	require.Equal(t, 200, status)
	status, _ = ctl(t, s, "POST", "/_sim/api/faults", APIFaults{ErrorEveryNth: 1})
	require.Equal(t, 200, status)
	require.Equal(t, http.StatusServiceUnavailable, call(t, s, asAdmin, "/api/now/table/incident").status)
	status, _ = ctl(t, s, "POST", "/_sim/api/faults", APIFaults{})
	require.Equal(t, 200, status)
	status, b = ctl(t, s, "GET", "/_sim/requests", nil)
	require.Equal(t, 200, status)
	log := decode[struct {
		Total    int          `json:"total"`
		Requests []RequestLog `json:"requests"`
	}](t, b)
	require.Equal(t, 3, log.Total)
	require.Equal(t, []int{200, 429, 503}, []int{log.Requests[0].Status, log.Requests[1].Status, log.Requests[2].Status})
	require.Equal(t, "admin", log.Requests[0].User)

	status, b = ctl(t, s, "GET", "/_sim/info", nil)
	require.Equal(t, 200, status)
	require.NotContains(t, string(b), "password")
	info := decode[struct {
		Name   string         `json:"name"`
		Counts map[string]int `json:"counts"`
	}](t, b)
	require.Equal(t, "dev10001", info.Name)
	require.Equal(t, 60, info.Counts["incident"])

	tr := login(t, s)
	status, b = ctl(t, s, "POST", "/_sim/oauth/revoke", map[string]string{"user_name": "itsm.integration"})
	require.Equal(t, 200, status, string(b))
	require.Equal(t, http.StatusUnauthorized, call(t, s, cred{bearer: tr.AccessToken}, "/api/now/table/incident").status)
}
