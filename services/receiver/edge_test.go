package receiver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/services/receiver"
)

const (
	edgeKeyA  = "edge-key-a-0123456789"
	edgeKeyB  = "edge-key-b-0123456789"
	cloudAcme = "11111111-2222-3333-4444-555555555555"
)

type edgeFixture struct {
	*fixture
	reg *prometheus.Registry
}

// edgeSetup is setup with connections in every state, a site with a known
// cloud id, an API key and the quotas given.
func edgeSetup(t *testing.T, quotas config.Quotas) *edgeFixture {
	t.Helper()
	ctx := context.Background()
	js := brokertest.Start(t).JetStream()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	for _, c := range []*store.Connection{
		{ID: "conn-1", OrganizationID: "org-a", State: store.StateActive, SiteURL: "https://acme.atlassian.net"},
		{ID: "conn-cloud", OrganizationID: "org-a", State: store.StateActive, SiteURL: "https://acme.atlassian.net", CloudID: cloudAcme},
		{ID: "conn-paused", OrganizationID: "org-a", State: store.StatePaused, SiteURL: "https://acme.atlassian.net"},
		{ID: "conn-pending", OrganizationID: "org-a", State: store.StatePending, SiteURL: "https://acme.atlassian.net"},
	} {
		c.Vendor, c.CreatedAt, c.UpdatedAt = "JIRA", now, now
		require.NoError(t, st.CreateConnection(ctx, c))
	}
	reg := prometheus.NewRegistry()
	srv, err := receiver.New(receiver.Config{Verifiers: jiraVerifier(t, jiraconn.VerifierConfig{}), MaxBody: 64 << 10, PublishTimeout: time.Second, Quotas: quotas},
		js, st, apikey.NewAuthenticator(st, map[string]string{edgeKeyA: "org-a", edgeKeyB: "org-b"}), zaptest.NewLogger(t), reg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Echo())
	t.Cleanup(ts.Close)
	return &edgeFixture{fixture: &fixture{srv: srv, js: js, url: ts.URL}, reg: reg}
}

func signed(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	require.NoError(t, err)
	return "Bearer " + s
}

type delivery struct {
	conn, authz, ctype, encoding, id string
	body                             []byte
}

func (f *edgeFixture) deliver(t *testing.T, d delivery) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+"/webhooks/jira/"+d.conn, bytes.NewReader(d.body))
	require.NoError(t, err)
	if d.authz != "" {
		req.Header.Set("Authorization", d.authz)
	}
	if d.ctype != "" {
		req.Header.Set("Content-Type", d.ctype)
	}
	if d.encoding != "" {
		req.Header.Set("Content-Encoding", d.encoding)
	}
	if d.id == "" {
		d.id = "d-" + t.Name()
	}
	req.Header.Set("X-Atlassian-Webhook-Identifier", d.id)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Finding 5: a delivery token must expire, and soon; it must not be used
// before its nbf; it must be HMAC; and when the connection's site is known,
// the token must name it.
func TestDeliveryTokenClaims(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	now := time.Now()
	exp := now.Add(3 * time.Minute).Unix()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"exp": exp}).SignedString(rsaKey)
	require.NoError(t, err)
	site := func(cloud string) jwt.MapClaims {
		return jwt.MapClaims{"exp": exp, "context": map[string]any{"cloudId": cloud}}
	}
	body := []byte(goodBody)
	cases := []struct {
		name, conn, authz string
		status            int
		msg               string
	}{
		{"no exp", "conn-1", signed(t, jwt.MapClaims{"iat": now.Unix()}), 401, "token has no exp"},
		{"exp a day ahead", "conn-1", signed(t, jwt.MapClaims{"exp": now.Add(24 * time.Hour).Unix()}), 401, "expires more than 1h0m0s ahead"},
		{"exp two hours ahead", "conn-1", signed(t, jwt.MapClaims{"exp": now.Add(2 * time.Hour).Unix()}), 401, "expires more than"},
		{"nbf ahead", "conn-1", signed(t, jwt.MapClaims{"exp": exp, "nbf": now.Add(10 * time.Minute).Unix()}), 401, "not valid yet"},
		{"RS256", "conn-1", "Bearer " + rs256, 401, "bad token signature"},
		{"another site's cloud id", "conn-cloud", signed(t, site("99999999-0000-0000-0000-000000000000")), 403, "token is for another site"},
		{"no cloud id for a known site", "conn-cloud", signed(t, jwt.MapClaims{"exp": exp}), 403, "token names no site"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := f.deliver(t, delivery{conn: tc.conn, authz: tc.authz, ctype: "application/json", body: body})
			require.Equal(t, tc.status, status, resp)
			require.Contains(t, resp, tc.msg)
		})
	}
	require.Zero(t, f.rawCount(t), "a refused delivery must not be published")

	// The token proves the site: a body with no self URL is then accepted
	// for that connection, and a body naming another site still is not.
	status, resp := f.deliver(t, delivery{conn: "conn-cloud", authz: signed(t, site(cloudAcme)), ctype: "application/json",
		body: []byte(`{"webhookEvent":"comment_created","comment":{"id":"5"}}`), id: "cloud-ok"})
	require.Equal(t, http.StatusAccepted, status, resp)
	status, resp = f.deliver(t, delivery{conn: "conn-cloud", authz: signed(t, site(cloudAcme)), ctype: "application/json",
		body: []byte(strings.ReplaceAll(goodBody, "acme", "evil")), id: "cloud-evil"})
	require.Equal(t, http.StatusForbidden, status, resp)
	// A token lasting the whole allowed hour is accepted.
	status, resp = f.deliver(t, delivery{conn: "conn-1", authz: signed(t, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}),
		ctype: "application/json", body: body, id: "hour"})
	require.Equal(t, http.StatusAccepted, status, resp)
	require.EqualValues(t, 2, f.rawCount(t))
}

// Finding 5: without a token that names the site, the body's self URLs are
// the only proof of it, so a body without any is refused.
func TestDeliveryWithoutSelfURLIsRefused(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	authz := signed(t, jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()})
	for _, b := range []string{`{"webhookEvent":"jira:issue_updated","issue":{"id":"1"}}`, `{}`, `[]`} {
		status, resp := f.deliver(t, delivery{conn: "conn-1", authz: authz, ctype: "application/json", body: []byte(b)})
		require.Equal(t, http.StatusForbidden, status, resp)
		require.Contains(t, resp, "names no site")
	}
	require.Zero(t, f.rawCount(t))
}

// Finding 6: only ACTIVE connections ingest. A PAUSED one answers 2xx so
// that Jira keeps its webhook, drops the delivery and counts it; a PENDING
// one is answered like a missing one.
func TestOnlyActiveConnectionsIngest(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	authz := signed(t, jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()})
	status, resp := f.deliver(t, delivery{conn: "conn-paused", authz: authz, ctype: "application/json", body: []byte(goodBody)})
	require.Equal(t, http.StatusAccepted, status, resp)
	require.Contains(t, resp, `"dropped"`)
	require.Zero(t, f.rawCount(t), "a paused connection's delivery must not be published")
	require.Equal(t, 1.0, testutil.ToFloat64(counter(t, f.reg, "paused")))

	status, resp = f.deliver(t, delivery{conn: "conn-pending", authz: authz, ctype: "application/json", body: []byte(goodBody)})
	require.Equal(t, http.StatusNotFound, status, resp)
	require.Contains(t, resp, "no such connection")
	require.Zero(t, f.rawCount(t), "a pending connection's delivery must not be published")
}

// counter reads itsm_webhooks_total for one result.
func counter(t *testing.T, reg *prometheus.Registry, result string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() != "itsm_webhooks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no itsm_webhooks_total{result=%q}", result)
	return nil
}

// Finding 6: a delivery must say it is JSON, must not be compressed, must
// be UTF-8, and its identifier is bounded.
func TestDeliveryHeadersAndEncoding(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	authz := signed(t, jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()})
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, err := w.Write([]byte(goodBody))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	invalidUTF8 := []byte(strings.Replace(goodBody, `"id":"1"`, "\"id\":\"1\xff\xfe\"", 1))
	cases := []struct {
		name   string
		d      delivery
		status int
		msg    string
	}{
		{"no content type", delivery{ctype: "", body: []byte(goodBody)}, 415, "application/json"},
		{"json prefix of another type", delivery{ctype: "application/jsonx", body: []byte(goodBody)}, 415, "application/json"},
		{"gzip", delivery{ctype: "application/json", encoding: "gzip", body: gz.Bytes()}, 415, "content encoding"},
		{"identifier too long", delivery{ctype: "application/json", id: strings.Repeat("a", 300), body: []byte(goodBody)}, 400, "X-Atlassian-Webhook-Identifier exceeds 256"},
		{"invalid UTF-8", delivery{ctype: "application/json", body: invalidUTF8}, 400, "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.conn, tc.d.authz = "conn-1", authz
			status, resp := f.deliver(t, tc.d)
			require.Equal(t, tc.status, status, resp)
			require.Contains(t, resp, tc.msg)
		})
	}
	require.Zero(t, f.rawCount(t))
	status, resp := f.deliver(t, delivery{conn: "conn-1", authz: authz, ctype: "application/json; charset=utf-8", body: []byte(goodBody), id: strings.Repeat("a", 256)})
	require.Equal(t, http.StatusAccepted, status, resp)
}

func errMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e.Error.Message
}

func (f *edgeFixture) api(t *testing.T, method, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	return f.apiAs(t, edgeKeyA, method, path, body)
}

func (f *edgeFixture) apiAs(t *testing.T, key, method, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// Finding 6: a query Go's parser would partly drop is a 400 naming the
// parameter, not an unfiltered answer; a time filter is bounded.
func TestStrictQueryParsing(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	for _, tc := range []struct{ query, msg string }{
		{"status=CLOSED;x", `"status"`},
		{"status=CLOSED%3Bx", `status`},
		{"status=CLOSED&status=OPEN", `"status" is given more than once`},
		{"priority=%zz", `"priority": malformed value`},
		{"%zz=1", `malformed query parameter name`},
		{"updated_since=2300-01-01T00:00:00Z", "updated_since: want a time from 1970"},
		{"updated_since=1969-12-31T23:59:59Z", "updated_since: want a time from 1970"},
		{"updated_since=yesterday", "updated_since: want an RFC 3339 time"},
		{"limit=100000", "limit"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := f.api(t, http.MethodGet, "/v1/itsm/tickets?"+tc.query, nil)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
			require.Contains(t, errMessage(t, body), tc.msg)
		})
	}
	resp, body := f.api(t, http.MethodGet, "/v1/itsm/tickets?status=CLOSED&updated_since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
}

// Finding 6: API answers carry a tenant's data: never sniffed, never cached.
func TestSecurityHeaders(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	for _, path := range []string{"/v1/itsm/tickets", "/v1/itsm/tickets/nope", "/v1/nowhere", "/healthz"} {
		resp, body := f.api(t, http.MethodGet, path, nil)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "%s: %s", path, body)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
	}
}

// Finding 1: every API request's body is bounded, also where the handler
// reads none, and compressed bodies are refused rather than expanded.
func TestAPIBodiesBounded(t *testing.T) {
	f := edgeSetup(t, config.Quotas{})
	resp, body := f.api(t, http.MethodGet, "/v1/itsm/tickets", bytes.NewReader(make([]byte, 65<<10)))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	req, err := http.NewRequest(http.MethodGet, f.url+"/v1/itsm/tickets", strings.NewReader("x"))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", edgeKeyA)
	req.Header.Set("Content-Encoding", "gzip")
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, r.StatusCode)
}

// Finding 1: an organization's API calls are rate limited with a token
// bucket; past the burst it gets 429 and when to retry.
func TestAPIRateLimitPerOrganization(t *testing.T) {
	f := edgeSetup(t, config.Quotas{ConnectionsPerOrg: 10, ProjectKeys: 10, MappingEntries: 10, APIRate: 1, APIBurst: 3})
	for i := range 3 {
		resp, body := f.api(t, http.MethodGet, "/v1/itsm/tickets", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "call %d: %s", i, body)
	}
	// One token a second refills the bucket: a slow machine may earn one or
	// two more calls, never many.
	var resp *http.Response
	var body string
	for range 4 {
		if resp, body = f.api(t, http.MethodGet, "/v1/itsm/tickets", nil); resp.StatusCode != http.StatusOK {
			break
		}
	}
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After must be whole seconds")
	require.GreaterOrEqual(t, secs, 1)
	require.Contains(t, body, "rate_limited")
	// Another organization has a bucket of its own.
	resp, body = f.apiAs(t, edgeKeyB, http.MethodGet, "/v1/itsm/tickets", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	// Webhooks are not the API: Jira's deliveries are never rate limited.
	authz := signed(t, jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()})
	status, resp2 := f.deliver(t, delivery{conn: "conn-1", authz: authz, ctype: "application/json", body: []byte(goodBody)})
	require.Equal(t, http.StatusAccepted, status, resp2)
}

// Jira's token claims are undocumented: an operator may accept tokens that
// name no site, which then leave the site to the body's self URLs. A token
// naming another site is refused either way.
func TestDeliveryTokenSiteOptional(t *testing.T) {
	ctx := context.Background()
	js := brokertest.Start(t).JetStream()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	require.NoError(t, st.CreateConnection(ctx, &store.Connection{ID: "conn-cloud", OrganizationID: "org-a", Vendor: "JIRA",
		State: store.StateActive, SiteURL: "https://acme.atlassian.net", CloudID: cloudAcme, CreatedAt: now, UpdatedAt: now}))
	srv, err := receiver.New(receiver.Config{Verifiers: jiraVerifier(t, jiraconn.VerifierConfig{SiteOptional: true}), PublishTimeout: time.Second},
		js, st, apikey.NewAuthenticator(st, nil), zaptest.NewLogger(t), nil)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Echo())
	t.Cleanup(ts.Close)
	f := &edgeFixture{fixture: &fixture{srv: srv, js: js, url: ts.URL}}
	exp := now.Add(time.Minute).Unix()

	status, resp := f.deliver(t, delivery{conn: "conn-cloud", authz: signed(t, jwt.MapClaims{"exp": exp}), ctype: "application/json", body: []byte(goodBody), id: "no-site"})
	require.Equal(t, http.StatusAccepted, status, resp)
	status, resp = f.deliver(t, delivery{conn: "conn-cloud", authz: signed(t, jwt.MapClaims{"exp": exp}), ctype: "application/json",
		body: []byte(`{"webhookEvent":"comment_created","comment":{"id":"5"}}`), id: "no-site-no-self"})
	require.Equal(t, http.StatusForbidden, status, resp)
	require.Contains(t, resp, "names no site")
	status, resp = f.deliver(t, delivery{conn: "conn-cloud", authz: signed(t, jwt.MapClaims{"exp": exp, "context": map[string]any{"cloudId": "other"}}),
		ctype: "application/json", body: []byte(goodBody), id: "other-site"})
	require.Equal(t, http.StatusForbidden, status, resp)
	require.EqualValues(t, 1, f.rawCount(t))
}
