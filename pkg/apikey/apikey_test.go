package apikey_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
)

func TestCreateAuthenticateRevoke(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	require.NoError(t, err)
	defer st.Close()
	k, plain, err := apikey.Create(ctx, st, "org-a", "ci", time.Now())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(plain, "itsm_"))
	require.NotContains(t, string(k.Hash), plain, "only the hash is kept")

	a := apikey.NewAuthenticator(st, map[string]string{"static-dev-key-0123456789": "org-dev"})
	org, err := a.Authenticate(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, "org-a", org)
	org, err = a.Authenticate(ctx, "static-dev-key-0123456789")
	require.NoError(t, err)
	require.Equal(t, "org-dev", org)
	_, err = a.Authenticate(ctx, plain+"x")
	require.ErrorIs(t, err, apikey.ErrUnknown)

	require.NoError(t, st.RevokeAPIKey(ctx, "org-a", k.ID, time.Now()))
	_, err = a.Authenticate(ctx, plain)
	require.ErrorIs(t, err, apikey.ErrUnknown, "revoked keys stop working at once")

	_, _, err = apikey.Create(ctx, st, " ", "x", time.Now())
	require.Error(t, err)
}
