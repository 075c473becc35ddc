package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/config"
)

func TestRefuseTemplateSecrets(t *testing.T) {
	tmpl := config.Config{EncryptionKey: make([]byte, 32), JiraClientID: "replace-with-x", JiraClientSecret: "replace-with-y"}
	err := refuseTemplateSecrets(tmpl)
	for _, v := range []string{"ITSM_ENCRYPTION_KEY", "ITSM_JIRA_CLIENT_ID", "ITSM_JIRA_CLIENT_SECRET"} {
		require.ErrorContains(t, err, v)
	}
	require.NoError(t, refuseTemplateSecrets(config.Config{Dev: true, EncryptionKey: make([]byte, 32)}))
	real := config.Config{EncryptionKey: []byte("0123456789abcdef0123456789abcdef"), JiraClientID: "id", JiraClientSecret: "s"}
	require.NoError(t, refuseTemplateSecrets(real))
}
