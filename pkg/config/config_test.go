package config_test

import (
	"testing"

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

func TestProductionNeedsClientSecret(t *testing.T) {
	_, err := config.Load(env(nil))
	require.ErrorContains(t, err, "ITSM_JIRA_CLIENT_SECRET")
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
