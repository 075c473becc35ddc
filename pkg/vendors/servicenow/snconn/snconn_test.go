package snconn_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
)

func basic() *connections.AuthOptions {
	return &connections.AuthOptions{Type: "basic", Username: "itsm.integration", Password: "pw"}
}

func field(t *testing.T, err error) string {
	t.Helper()
	var ve *connections.ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	return ve.Field
}

func TestInstanceURLs(t *testing.T) {
	prod := snconn.New(snconn.Config{})
	dev := snconn.New(snconn.Config{AllowLoopback: true})
	for _, tc := range []struct {
		name string
		x    *snconn.Connector
		o    connections.Options
		want string // the instance URL, or the field of the refusal
		ok   bool
	}{
		{"name", prod, connections.Options{InstanceName: "dev12345"}, "https://dev12345.service-now.com", true},
		{"url", prod, connections.Options{InstanceURL: "https://Acme-Prod.service-now.com/"}, "https://acme-prod.service-now.com", true},
		{"loopback in dev mode", dev, connections.Options{InstanceURL: "http://127.0.0.1:9091"}, "http://127.0.0.1:9091", true},
		{"loopback outside dev mode", prod, connections.Options{InstanceURL: "http://127.0.0.1:9091"}, "options.instance_url", false},
		{"http", prod, connections.Options{InstanceURL: "http://acme.service-now.com"}, "options.instance_url", false},
		{"other domain", dev, connections.Options{InstanceURL: "https://acme.service-now.com.evil.io"}, "options.instance_url", false},
		{"a port", prod, connections.Options{InstanceURL: "https://acme.service-now.com:8443"}, "options.instance_url", false},
		{"user info", prod, connections.Options{InstanceURL: "https://u:p@acme.service-now.com"}, "options.instance_url", false},
		{"a path", prod, connections.Options{InstanceURL: "https://acme.service-now.com/api"}, "options.instance_url", false},
		{"both", prod, connections.Options{InstanceName: "a", InstanceURL: "https://a.service-now.com"}, "options.instance_url", false},
		{"bad name", prod, connections.Options{InstanceName: "acme.service-now.com"}, "options.instance_name", false},
		{"none", prod, connections.Options{}, "options.instance_name", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Auth = basic()
			c := &store.Connection{ID: "c1"}
			cred, err := tc.x.Configure(tc.o, c, true)
			if !tc.ok {
				require.Equal(t, tc.want, field(t, err))
				require.NotContains(t, err.Error(), "pw")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c.SiteURL)
			require.Equal(t, "pw", cred.Password)
			require.Len(t, cred.PushSecret, 64, "a fresh 256-bit push secret")
			require.Equal(t, &store.ConnectionAuth{Type: store.AuthBasic, Username: "itsm.integration"}, c.Options.Auth)
			require.Equal(t, []string{"incident"}, c.Options.Tables)
		})
	}
}

func TestCredentialsAndPatch(t *testing.T) {
	x := snconn.New(snconn.Config{})
	c := &store.Connection{ID: "c1"}
	cred, err := x.Configure(connections.Options{InstanceName: "acme",
		Auth: &connections.AuthOptions{Type: "OAuth", ClientID: "cid", ClientSecret: "cs"}}, c, true)
	require.NoError(t, err)
	require.Equal(t, "cs", cred.ClientSecret)
	require.Equal(t, &store.ConnectionAuth{Type: store.AuthOAuth, ClientID: "cid"}, c.Options.Auth)
	other, err := x.Configure(connections.Options{InstanceName: "acme",
		Auth: &connections.AuthOptions{Type: "oauth", ClientID: "cid", ClientSecret: "cs"}}, &store.Connection{ID: "c2"}, true)
	require.NoError(t, err)
	require.NotEqual(t, cred.PushSecret, other.PushSecret, "each connection its own push secret")

	for _, a := range []*connections.AuthOptions{
		{Type: "oauth", ClientID: "cid", Username: "u"},
		{Type: "basic", Username: "u", ClientSecret: "x", Password: "p"},
		{Type: "basic", Password: "p"},
		{Type: "oauth", ClientSecret: "x"},
	} {
		_, err := x.Configure(connections.Options{InstanceName: "acme", Auth: a}, &store.Connection{ID: "c3"}, true)
		require.Error(t, err, "%+v", a)
		require.Contains(t, field(t, err), "options.auth")
	}

	// A patch may repeat what a GET shows, change tables, and nothing else.
	_, err = x.Configure(connections.Options{InstanceName: "acme", Auth: &connections.AuthOptions{Type: "oauth", ClientID: "cid"}}, c, false)
	require.NoError(t, err)
	next := *c
	next.Options.Tables = []string{"incident", "problem"}
	_, err = x.Configure(connections.Options{}, &next, false)
	require.NoError(t, err)
	next.Options.Tables = []string{"sys_user"}
	_, err = x.Configure(connections.Options{}, &next, false)
	require.Equal(t, "options.tables", field(t, err))
	_, err = x.Configure(connections.Options{InstanceName: "other"}, c, false)
	require.Equal(t, "options.instance_name", field(t, err))
	_, err = x.Configure(connections.Options{Auth: &connections.AuthOptions{Type: "oauth", ClientID: "cid", ClientSecret: "new"}}, c, false)
	require.Equal(t, "options.auth", field(t, err))
}

func TestVerifier(t *testing.T) {
	conn := &store.Connection{ID: "c1"}
	v := snconn.NewVerifier(func(*store.Connection) (*connections.Credentials, error) {
		return &connections.Credentials{PushSecret: "s3cret"}, nil
	})
	_, err := v.Authenticate(http.Header{})
	require.ErrorIs(t, err, connector.ErrUnauthenticated)

	partial := []byte(`{"table":"incident","sys_id":"9ef81de2db0d6090d7055268dc961978","operation":"update","sys_updated_on":"2026-01-15 09:30:00"}`)
	check := func(body []byte, sig string) (connector.Delivery, error) {
		d, err := v.Authenticate(http.Header{servicenow.SignatureHeader: {sig}})
		require.NoError(t, err)
		_, err = d.CheckBody(conn, body)
		return d, err
	}
	_, err = check(partial, servicenow.Sign("other", partial))
	require.ErrorIs(t, err, connector.ErrUnauthenticated)
	require.NotContains(t, err.Error(), "s3cret")
	d, err := check(partial, servicenow.Sign("s3cret", partial))
	require.NoError(t, err)
	require.True(t, d.(connector.SyncHint).WantsSync(), "a push without its record asks for a sync")

	del := []byte(`{"table":"incident","sys_id":"9ef81de2db0d6090d7055268dc961978","operation":"delete","sys_updated_on":"2026-01-15 09:30:00"}`)
	d, err = check(del, servicenow.Sign("s3cret", del))
	require.NoError(t, err)
	require.False(t, d.(connector.SyncHint).WantsSync(), "a deletion needs no re-read")

	notPush := []byte(`{"hello":"world"}`)
	_, err = check(notPush, servicenow.Sign("s3cret", notPush))
	require.ErrorIs(t, err, connector.ErrInvalidBody)
}
