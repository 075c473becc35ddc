package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
)

func TestRefuseTemplateNATSPasswords(t *testing.T) {
	cfg := config.Config{EncryptionKey: []byte("0123456789abcdef0123456789abcdef"), JiraClientID: "id", JiraClientSecret: "s",
		NATSUsers: broker.Users{broker.UserReceiver: "replace-with-a-random-receiver-password"}}
	err := refuseTemplateSecrets(cfg)
	require.ErrorContains(t, err, "ITSM_NATS_RECEIVER_PASSWORD")
	require.NotContains(t, err.Error(), "replace-with-a-random", "the value is not echoed")
	cfg.NATSUsers[broker.UserReceiver] = broker.NewPassword()
	require.NoError(t, refuseTemplateSecrets(cfg))
}
