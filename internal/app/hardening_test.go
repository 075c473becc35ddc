package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/config"
)

// /metrics shows the platform's internals (tenants' connection counts,
// backlog): it is served on ITSM_METRICS_ADDR only, never on the public
// listener.
func TestMetricsOnlyOnTheirOwnListener(t *testing.T) {
	env := apptest.Start(t, nil)
	resp, err := http.Get(env.URL + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the public listener must not serve /metrics")
	require.NotEqual(t, env.HTTPAddr(), env.MetricsAddr())
	resp, err = http.Get("http://" + env.MetricsAddr() + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// The metrics listener serves nothing else.
	resp, err = http.Get("http://" + env.MetricsAddr() + "/v1/itsm/tickets")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// The data dir holds every tenant's data and, in dev mode, the encryption
// key: the platform creates it and its database for the owner only.
func TestDataDirAndDatabaseOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := apptest.StartWith(t, func(c *config.Config) {
		c.DataDir, c.Store = dir, filepath.Join(dir, "itsm.db")
	})
	_ = env
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(dir, "itsm.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// Keys from ITSM_API_KEYS cannot be revoked: a production process refuses
// to start with them and says which variable to remove.
func TestEnvironmentAPIKeysRefusedOutsideDevMode(t *testing.T) {
	for k, v := range map[string]string{
		"ITSM_DEV": "false", "ITSM_JIRA_CLIENT_SECRET": "s", "ITSM_JIRA_CLIENT_ID": "id",
		"ITSM_PUBLIC_URL": "https://itsm.example.com", "ITSM_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"ITSM_API_KEYS": "org-a:aaaaaaaaaaaaaaaaaaaa", "ITSM_DATA_DIR": t.TempDir(),
	} {
		t.Setenv(k, v)
	}
	t.Setenv("ITSM_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("ITSM_NATS_LISTEN", "127.0.0.1:0")
	t.Setenv("ITSM_METRICS_ADDR", "127.0.0.1:0")
	var stderr apptest.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- app.Main(app.All, &stderr) }()
	select {
	case code := <-done:
		require.Equal(t, 2, code)
	case <-time.After(10 * time.Second):
		// It started: stop it the way an operator would, then fail.
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
		<-done
		t.Fatal("the process started with ITSM_API_KEYS outside dev mode")
	}
	require.Contains(t, stderr.String(), "ITSM_API_KEYS: only allowed in dev mode")
	require.NotContains(t, stderr.String(), "aaaaaaaaaaaaaaaaaaaa")
}

// Finding 1: one organization cannot make the shared process hold without
// bound: its connections, their options and every list are bounded.
func TestConnectionQuotasAndPaging(t *testing.T) {
	const keyA, keyB = "quota-key-a-0123456789", "quota-key-b-0123456789"
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
		c.Quotas = config.Quotas{ConnectionsPerOrg: 5, ProjectKeys: 3, MappingEntries: 2, APIRate: 1000, APIBurst: 1000}
	})
	create := func(key string, options map[string]any) (int, string) {
		return env.Call(t, http.MethodPost, key, "/v1/connections", map[string]any{"vendor": "JIRA", "options": options})
	}
	for _, tc := range []struct {
		name    string
		options map[string]any
		msg     string
	}{
		{"project keys", map[string]any{"project_keys_filter": []string{"A", "B", "C", "D"}}, "options.project_keys_filter: 4 entries; at most 3"},
		{"priority mapping", map[string]any{"priority_mapping": []map[string]string{{"a": "HIGH"}, {"b": "LOW"}, {"c": "LOW"}}}, "options.priority_mapping: 3 entries; at most 2"},
		{"status mapping", map[string]any{"status_mapping": []map[string]string{{"a": "OPEN"}, {"b": "OPEN"}, {"c": "OPEN"}}}, "options.status_mapping: 3 entries; at most 2"},
		{"long name", map[string]any{"status_mapping": []map[string]string{{strings.Repeat("n", 300): "OPEN"}}}, "options.status_mapping[0]: names are at most 255 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := create(keyA, tc.options)
			require.Equal(t, http.StatusBadRequest, status, body)
			require.Contains(t, body, tc.msg)
		})
	}
	var ids []string
	for range 5 {
		status, body := create(keyA, map[string]any{"project_keys_filter": []string{"A", "B", "C"}})
		require.Equal(t, http.StatusCreated, status, body)
		var v struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		ids = append(ids, v.ID)
	}
	status, body := create(keyA, nil)
	require.Equal(t, http.StatusForbidden, status, body)
	require.Contains(t, body, "quota_exceeded")
	// PATCH is held to the same option quotas.
	status, body = env.Call(t, http.MethodPatch, keyA, "/v1/connections/"+ids[0],
		map[string]any{"options": map[string]any{"project_keys_filter": []string{"A", "B", "C", "D"}}})
	require.Equal(t, http.StatusBadRequest, status, body)
	// Deleting one frees its place; another organization has its own quota.
	status, body = env.Call(t, http.MethodDelete, keyA, "/v1/connections/"+ids[0], nil)
	require.Equal(t, http.StatusNoContent, status, body)
	status, body = create(keyA, nil)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = create(keyB, nil)
	require.Equal(t, http.StatusCreated, status, body)

	// The list is paged: 6 connections (one DELETED) in pages of 4.
	type page struct {
		Items []struct {
			ID             string `json:"id"`
			OrganizationID string `json:"organization_id"`
		}
		NextCursor *string `json:"next_cursor"`
	}
	var p1, p2 page
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections?limit=4", &p1))
	require.Len(t, p1.Items, 4)
	require.NotNil(t, p1.NextCursor)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections?limit=4&cursor="+*p1.NextCursor, &p2))
	require.Len(t, p2.Items, 2)
	require.Nil(t, p2.NextCursor)
	// Another organization's cursor shows only the caller's own.
	var own, cross page
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyB, "/v1/connections", &own))
	require.Len(t, own.Items, 1)
	require.Equal(t, "org-b", own.Items[0].OrganizationID)
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyB, "/v1/connections?cursor="+*p1.NextCursor, &cross))
	require.LessOrEqual(t, len(cross.Items), 1)
	for _, c := range cross.Items {
		require.Equal(t, own.Items[0].ID, c.ID)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=!!", "sort=id"} {
		status, body := env.Call(t, http.MethodGet, keyA, "/v1/connections?"+q, nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, body)
	}
}
