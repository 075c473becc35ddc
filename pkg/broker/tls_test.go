package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
)

// selfSigned writes a CA and a certificate for 127.0.0.1 signed by it.
func selfSigned(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "itsm test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

func TestEmbeddedServerTLS(t *testing.T) {
	ca, cert, key := selfSigned(t)
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
