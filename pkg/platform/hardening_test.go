package platform_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/platform"
	"github.com/itsmhub/itsm/pkg/platform/platformtest"
)

// /metrics shows the platform's internals (tenants' connection counts,
// backlog): it is served on ITSM_METRICS_ADDR only, never on the public
// listener.
func TestMetricsOnlyOnTheirOwnListener(t *testing.T) {
	env := platformtest.Start(t, nil)
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
	env := platformtest.StartWith(t, func(c *config.Config) {
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
	var stderr bytes.Buffer
	code := platform.Main(platform.All, &stderr)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "ITSM_API_KEYS: only allowed in dev mode")
	require.NotContains(t, stderr.String(), "aaaaaaaaaaaaaaaaaaaa")
}
