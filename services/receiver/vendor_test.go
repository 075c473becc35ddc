package receiver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/services/receiver"
)

// A delivery reaches a connection only through its own vendor's route: a
// genuine Jira delivery posted to a connection of another vendor is refused
// like one to a missing connection, and a vendor without a verifier has no
// route at all.
func TestDeliveriesTakeTheirVendorsRoute(t *testing.T) {
	ctx := context.Background()
	js := brokertest.Start(t).JetStream()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	for _, c := range []*store.Connection{
		{ID: "conn-jira", Vendor: "JIRA"},
		{ID: "conn-sn", Vendor: "SERVICENOW"},
	} {
		c.OrganizationID, c.State, c.SiteURL, c.CreatedAt, c.UpdatedAt = "org-a", store.StateActive, "https://acme.atlassian.net", now, now
		require.NoError(t, st.CreateConnection(ctx, c))
	}
	_, err = receiver.New(receiver.Config{}, js, st, apikey.NewAuthenticator(st, nil), zaptest.NewLogger(t), nil)
	require.ErrorContains(t, err, "verifier")
	_, err = receiver.New(receiver.Config{Verifiers: map[string]receiver.DeliveryVerifier{"jira": jiraVerifier(t, jiraconn.VerifierConfig{})["JIRA"]}},
		js, st, apikey.NewAuthenticator(st, nil), zaptest.NewLogger(t), nil)
	require.ErrorContains(t, err, "upper-case")
	srv, err := receiver.New(receiver.Config{Verifiers: jiraVerifier(t, jiraconn.VerifierConfig{}), PublishTimeout: time.Second},
		js, st, apikey.NewAuthenticator(st, nil), zaptest.NewLogger(t), nil)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Echo())
	t.Cleanup(ts.Close)
	f := &fixture{srv: srv, js: js, url: ts.URL}
	valid := "Bearer " + token(t, jwt.SigningMethodHS256, []byte(secret), time.Now().Add(time.Minute))

	status, body := post(t, f.url, "conn-sn", valid, "application/json", goodBody)
	require.Equal(t, http.StatusNotFound, status, body)
	require.Contains(t, body, "no such connection")
	require.Zero(t, f.rawCount(t))

	resp, err := http.Post(f.url+"/webhooks/servicenow/conn-sn", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	status, body = post(t, f.url, "conn-jira", valid, "application/json", goodBody)
	require.Equal(t, http.StatusAccepted, status, body)
	require.EqualValues(t, 1, f.rawCount(t))
}
