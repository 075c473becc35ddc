package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/config"
)

func env(m map[string]string) config.Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsInDevMode(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ITSM_DEV": "true"}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
	require.Equal(t, "127.0.0.1:4222", c.NATSListen)
	require.Equal(t, "data/itsm.db", c.Store)
	require.False(t, c.IsMongo())
	require.Equal(t, config.DevClientSecret, c.JiraClientSecret)
}

func TestProductionNeedsSecretsAndURLs(t *testing.T) {
	_, err := config.Load(env(nil))
	for _, v := range []string{"ITSM_JIRA_CLIENT_SECRET", "ITSM_JIRA_CLIENT_ID", "ITSM_ENCRYPTION_KEY", "ITSM_PUBLIC_URL"} {
		require.ErrorContains(t, err, v)
	}
	c, err := config.Load(env(map[string]string{
		"ITSM_JIRA_CLIENT_SECRET": "s", "ITSM_JIRA_CLIENT_ID": "id", "ITSM_PUBLIC_URL": "https://itsm.example.com",
		"ITSM_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}))
	require.NoError(t, err)
	require.Len(t, c.EncryptionKey, 32)
	require.Equal(t, "https://auth.atlassian.com", c.JiraAuthURL)
}

func TestBadEncryptionKeyIsNamedNotEchoed(t *testing.T) {
	_, err := config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_ENCRYPTION_KEY": "c2hvcnQta2V5"}))
	require.ErrorContains(t, err, "ITSM_ENCRYPTION_KEY")
	require.NotContains(t, err.Error(), "c2hvcnQta2V5")
	_, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_JIRA_API_URL": "ftp://x"}))
	require.ErrorContains(t, err, "ITSM_JIRA_API_URL")
}

func TestErrorsNameTheVariableAndHideKeys(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"ITSM_DEV": "1", "ITSM_HTTP_ADDR": "nope", "ITSM_NATS_URL": "http://x",
		"ITSM_NORMALIZER_WORKERS": "0", "ITSM_API_KEYS": "org-a:shortsecret",
	}))
	require.Error(t, err)
	for _, v := range []string{"ITSM_HTTP_ADDR", "ITSM_NATS_URL", "ITSM_NORMALIZER_WORKERS", "ITSM_API_KEYS"} {
		require.ErrorContains(t, err, v)
	}
	require.NotContains(t, err.Error(), "shortsecret")
}

func TestAPIKeysAndMongo(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"ITSM_DEV": "1", "ITSM_API_KEYS": "org-a:aaaaaaaaaaaaaaaaaaaa, org-b:bbbbbbbbbbbbbbbbbbbb",
		"ITSM_STORE": "mongodb://db:27017/itsm",
	}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"aaaaaaaaaaaaaaaaaaaa": "org-a", "bbbbbbbbbbbbbbbbbbbb": "org-b"}, c.APIKeys)
	require.True(t, c.IsMongo())
}

func TestToolsNeedNoServiceSecrets(t *testing.T) {
	c, err := config.LoadTool(env(map[string]string{"ITSM_STORE": "/tmp/x.db"}))
	require.NoError(t, err)
	require.Equal(t, "/tmp/x.db", c.Store)
	_, err = config.LoadTool(env(map[string]string{"ITSM_LOG_LEVEL": "loud"}))
	require.ErrorContains(t, err, "ITSM_LOG_LEVEL")
}

func TestTuningSettings(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ITSM_DEV": "1"}))
	require.NoError(t, err)
	// Unset: the services' own defaults apply.
	require.Zero(t, c.NormalizerAckWait)
	require.Zero(t, c.BackfillIncrementalEvery)
	require.Zero(t, c.BackfillMaxSyncs)
	require.Zero(t, c.NormalizerWorkers)

	c, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_NORMALIZER_ACK_WAIT": "5s",
		"ITSM_BACKFILL_INCREMENTAL_EVERY": "2m", "ITSM_BACKFILL_MAX_SYNCS": "16"}))
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, c.NormalizerAckWait)
	require.Equal(t, 2*time.Minute, c.BackfillIncrementalEvery)
	require.Equal(t, 16, c.BackfillMaxSyncs)

	_, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_NORMALIZER_ACK_WAIT": "5",
		"ITSM_BACKFILL_INCREMENTAL_EVERY": "1s", "ITSM_BACKFILL_MAX_SYNCS": "0"}))
	for _, v := range []string{"ITSM_NORMALIZER_ACK_WAIT", "ITSM_BACKFILL_INCREMENTAL_EVERY", "ITSM_BACKFILL_MAX_SYNCS"} {
		require.ErrorContains(t, err, v)
	}
}

func TestNATSCredentialsAreVariablesOfTheirOwn(t *testing.T) {
	_, err := config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_NATS_URL": "nats://receiver:s3cret-password-value@n1:4222"}))
	require.ErrorContains(t, err, "ITSM_NATS_URL")
	require.NotContains(t, err.Error(), "s3cret")
	_, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_NATS_RECEIVER_PASSWORD": "1234567890123456789"}))
	require.ErrorContains(t, err, "ITSM_NATS_RECEIVER_PASSWORD", "a password a NATS config file would read as a number")
	_, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_NATS_TLS_CERT": "/c.pem"}))
	require.ErrorContains(t, err, "ITSM_NATS_TLS_KEY")
	c, err := config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_NATS_BACKFILL_PASSWORD": "pA1b2c3d4e5f6g7h8i9", "ITSM_NATS_TLS_CA": "/ca.pem"}))
	require.NoError(t, err)
	require.Equal(t, "pA1b2c3d4e5f6g7h8i9", c.NATSUsers["backfill"])
	require.Equal(t, "/ca.pem", c.NATSTLS.CA)
}

func prodEnv(extra map[string]string) config.Getenv {
	m := map[string]string{
		"ITSM_JIRA_CLIENT_SECRET": "s", "ITSM_JIRA_CLIENT_ID": "id", "ITSM_PUBLIC_URL": "https://itsm.example.com",
		"ITSM_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}
	for k, v := range extra {
		m[k] = v
	}
	return env(m)
}

// Environment API keys cannot be revoked: outside dev mode the process
// refuses to start with them, naming the variable and not the key.
func TestAPIKeysOnlyInDevMode(t *testing.T) {
	_, err := config.Load(prodEnv(map[string]string{"ITSM_API_KEYS": "org-a:aaaaaaaaaaaaaaaaaaaa"}))
	require.ErrorContains(t, err, "ITSM_API_KEYS: only allowed in dev mode")
	require.NotContains(t, err.Error(), "aaaaaaaaaaaaaaaaaaaa")
	c, err := config.Load(prodEnv(nil))
	require.NoError(t, err)
	require.Empty(t, c.APIKeys)
	// Operator tools never serve the API; they may see the variable.
	_, err = config.LoadTool(env(map[string]string{"ITSM_API_KEYS": "org-a:aaaaaaaaaaaaaaaaaaaa"}))
	require.NoError(t, err)
}

func TestMetricsAddrAndQuotas(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ITSM_DEV": "1"}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9102", c.MetricsAddr)
	require.Equal(t, config.DefaultQuotas(), c.Quotas)

	c, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_METRICS_ADDR": "0.0.0.0:9200",
		"ITSM_QUOTA_CONNECTIONS": "5", "ITSM_QUOTA_PROJECT_KEYS": "6", "ITSM_QUOTA_MAPPING_ENTRIES": "7",
		"ITSM_API_RATE": "8", "ITSM_API_BURST": "9"}))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9200", c.MetricsAddr)
	require.Equal(t, config.Quotas{ConnectionsPerOrg: 5, ProjectKeys: 6, MappingEntries: 7, APIRate: 8, APIBurst: 9}, c.Quotas)

	require.Equal(t, "required", c.WebhookTokenSite)
	c, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_WEBHOOK_TOKEN_SITE": "if-present"}))
	require.NoError(t, err)
	require.Equal(t, "if-present", c.WebhookTokenSite)

	_, err = config.Load(env(map[string]string{"ITSM_DEV": "1", "ITSM_METRICS_ADDR": "127.0.0.1:8080",
		"ITSM_QUOTA_CONNECTIONS": "0", "ITSM_API_RATE": "x", "ITSM_WEBHOOK_TOKEN_SITE": "never"}))
	for _, v := range []string{"ITSM_METRICS_ADDR", "ITSM_QUOTA_CONNECTIONS", "ITSM_API_RATE", "ITSM_WEBHOOK_TOKEN_SITE"} {
		require.ErrorContains(t, err, v)
	}
}
