package broker_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
)

func TestEmbeddedServerTLS(t *testing.T) {
	files := brokertest.TLSFiles(t)
	ca, cert, key := files.CA, files.Cert, files.Key
	users := broker.NewUsers()
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: users,
		TLS: broker.TLSFiles{Cert: cert, Key: key, CA: ca}})
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	creds := broker.ClientOptions(broker.UserSubscriber, users[broker.UserSubscriber])

	_, err = nats.Connect(e.ClientURL(), creds...)
	require.Error(t, err, "plain text is refused")
	_, err = nats.Connect(e.ClientURL(), append(creds, nats.RootCAs(ca))...)
	require.Error(t, err, "with a CA set, a client certificate is required")
	nc, err := nats.Connect(e.ClientURL(), append(creds, nats.RootCAs(ca), nats.ClientCert(cert, key))...)
	require.NoError(t, err)
	nc.Close()
	_, err = nats.Connect(e.ClientURL(), nats.RootCAs(ca), nats.ClientCert(cert, key))
	require.ErrorIs(t, err, nats.ErrAuthorization, "a certificate does not replace the password")

	in, err := e.Connect(broker.UserNormalizer, "in-process")
	require.NoError(t, err, "in-process connections need no TLS")
	in.Close()

	_, err = broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: users,
		TLS: broker.TLSFiles{CA: ca}})
	require.ErrorContains(t, err, "certificate and its key")
}
