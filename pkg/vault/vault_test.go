package vault_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/vault"
)

func TestSealOpen(t *testing.T) {
	v, err := vault.New(vault.NewKey())
	require.NoError(t, err)
	secret := []byte(`{"refresh_token":"r-123"}`)
	sealed := v.Seal(secret, []byte("conn-1"))
	require.False(t, bytes.Contains(sealed, []byte("r-123")), "ciphertext must not contain the secret")
	require.NotEqual(t, sealed, v.Seal(secret, []byte("conn-1")), "nonces are random")

	got, err := v.Open(sealed, []byte("conn-1"))
	require.NoError(t, err)
	require.Equal(t, secret, got)

	_, err = v.Open(sealed, []byte("conn-2"))
	require.ErrorIs(t, err, vault.ErrDecrypt, "a ciphertext moved to another connection must not open")
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err = v.Open(tampered, []byte("conn-1"))
	require.ErrorIs(t, err, vault.ErrDecrypt)
	other, _ := vault.New(vault.NewKey())
	_, err = other.Open(sealed, []byte("conn-1"))
	require.ErrorIs(t, err, vault.ErrDecrypt, "another key must not open it")
	_, err = v.Open([]byte{1, 2}, nil)
	require.ErrorIs(t, err, vault.ErrDecrypt)
}

func TestParseKey(t *testing.T) {
	k := vault.NewKey()
	for _, s := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
		got, err := vault.ParseKey(s)
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	_, err := vault.ParseKey(base64.StdEncoding.EncodeToString(k[:16]))
	require.ErrorContains(t, err, "32 bytes")
	_, err = vault.ParseKey("not base64 at all!!")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "not base64 at all!!")
}
