package receiver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/services/receiver"
)

const secret = "test-client-secret"

type fixture struct {
	srv *receiver.Server
	js  jetstream.JetStream
	url string
}

func setup(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	js := brokertest.Start(t).JetStream()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	for _, c := range []*store.Connection{
		{ID: "conn-1", OrganizationID: "org-a", Vendor: "JIRA", State: store.StateActive, SiteURL: "https://acme.atlassian.net", CreatedAt: now, UpdatedAt: now},
		{ID: "conn-gone", OrganizationID: "org-a", Vendor: "JIRA", State: store.StateDeleted, CreatedAt: now, UpdatedAt: now},
	} {
		require.NoError(t, st.CreateConnection(ctx, c))
	}
	srv, err := receiver.New(receiver.Config{Verifiers: jiraVerifier(t, jiraconn.VerifierConfig{}), MaxBody: 64 << 10, PublishTimeout: time.Second},
		js, st, apikey.NewAuthenticator(st, nil), zaptest.NewLogger(t), nil)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Echo())
	t.Cleanup(ts.Close)
	return &fixture{srv: srv, js: js, url: ts.URL}
}

// jiraVerifier is Jira's delivery verifier as the wiring passes it, with
// the test's client secret.
func jiraVerifier(t testing.TB, cfg jiraconn.VerifierConfig) map[string]receiver.DeliveryVerifier {
	t.Helper()
	cfg.ClientSecret = []byte(secret)
	v, err := jiraconn.NewVerifier(cfg)
	require.NoError(t, err)
	return map[string]receiver.DeliveryVerifier{jira.VendorName: v}
}

func (f *fixture) rawCount(t testing.TB) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), broker.StreamRaw)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func token(t *testing.T, method jwt.SigningMethod, key any, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, jwt.MapClaims{"exp": exp.Unix()}).SignedString(key)
	require.NoError(t, err)
	return s
}

const goodBody = `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","self":"https://acme.atlassian.net/rest/api/2/issue/1","fields":{"updated":"2024-01-01T00:00:00.000+0000"}}}`

func post(t *testing.T, url, connID, authz, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/jira/"+connID, strings.NewReader(body))
	require.NoError(t, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Atlassian-Webhook-Identifier", "d-"+t.Name())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestBadDeliveriesAreRejectedAndNothingIsPublished(t *testing.T) {
	f := setup(t)
	valid := "Bearer " + token(t, jwt.SigningMethodHS256, []byte(secret), time.Now().Add(time.Minute))
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	cases := []struct {
		name, conn, authz, ctype, body string
		status                         int
		msg                            string
	}{
		{"unsigned", "conn-1", "", "application/json", goodBody, 401, "missing Bearer token"},
		{"wrong secret", "conn-1", "Bearer " + token(t, jwt.SigningMethodHS256, []byte("other"), time.Now().Add(time.Minute)), "application/json", goodBody, 401, "bad token signature"},
		{"expired", "conn-1", "Bearer " + token(t, jwt.SigningMethodHS256, []byte(secret), time.Now().Add(-time.Hour)), "application/json", goodBody, 401, "token expired"},
		{"alg none", "conn-1", "Bearer " + noneTok, "application/json", goodBody, 401, "bad token signature"},
		{"garbage token", "conn-1", "Bearer abc.def", "application/json", goodBody, 401, "invalid token"},
		{"unknown connection", "conn-404", valid, "application/json", goodBody, 404, "no such connection"},
		{"deleted connection", "conn-gone", valid, "application/json", goodBody, 404, "no such connection"},
		{"oversized", "conn-1", valid, "application/json", `{"a":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "body exceeds"},
		{"truncated json", "conn-1", valid, "application/json", goodBody[:40], 400, "not valid JSON"},
		{"wrong content type", "conn-1", valid, "text/plain", goodBody, 415, "application/json"},
		{"another site", "conn-1", valid, "application/json", strings.ReplaceAll(goodBody, "acme", "evil"), 403, "another site"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, f.url, tc.conn, tc.authz, tc.ctype, tc.body)
			require.Equal(t, tc.status, status, body)
			require.Contains(t, body, tc.msg)
			require.NotContains(t, body, secret)
		})
	}
	require.Zero(t, f.rawCount(t), "a rejected delivery must not be published")

	status, body := post(t, f.url, "conn-1", valid, "application/json", goodBody)
	require.Equal(t, http.StatusAccepted, status, body)
	require.JSONEq(t, `{"status":"accepted","sequence":1,"connections":1}`, body)
	require.EqualValues(t, 1, f.rawCount(t))
	// Jira's retry, under the same identifier.
	status, body = post(t, f.url, "conn-1", valid, "application/json", goodBody)
	require.Equal(t, http.StatusAccepted, status, body)
	require.JSONEq(t, `{"status":"duplicate","sequence":1,"connections":1}`, body)
	require.EqualValues(t, 1, f.rawCount(t))
}

func TestOversizedChunkedBodyIsRejected(t *testing.T) {
	f := setup(t)
	// No Content-Length: the limit must hold while reading, too.
	req, err := http.NewRequest(http.MethodPost, f.url+"/webhooks/jira/conn-1",
		struct{ *strings.Reader }{strings.NewReader(`{"a":"` + strings.Repeat("x", 70<<10) + `"}`)})
	require.NoError(t, err)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token(t, jwt.SigningMethodHS256, []byte(secret), time.Now().Add(time.Minute)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Zero(t, f.rawCount(t))
}

func TestJetStreamUnavailableAnswers503(t *testing.T) {
	f := setup(t)
	// Without the RAW stream nothing can be stored: Jira must be told to retry.
	require.NoError(t, f.js.DeleteStream(context.Background(), broker.StreamRaw))
	status, body := post(t, f.url, "conn-1", "Bearer "+token(t, jwt.SigningMethodHS256, []byte(secret), time.Now().Add(time.Minute)), "application/json", goodBody)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body, "retry later")
}
