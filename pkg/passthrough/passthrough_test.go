package passthrough_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

const base = "https://api.atlassian.com/ex/jira/11111111-2222-3333-4444-555555555555/rest/api/3"

// SSRFAttempts are paths that must never leave the vendor API base.
var SSRFAttempts = []string{
	"https://evil.com/x",
	"http://169.254.169.254/latest/meta-data/",
	"HTTP://evil.com",
	"//evil.com/x",
	"///evil.com",
	"http:evil.com",
	"evil.com:443/x",
	"@evil.com",
	"user@evil.com/x",
	"issue/x@evil.com",
	"..",
	"../../oauth/token",
	"issue/../../../admin",
	"issue/./x",
	"%2e%2e/%2e%2e/oauth/token",
	"%2E%2E/x",
	".%2e/x",
	"%252e%252e/x",
	"%25252e%25252e/x",
	"%2525252e/x",
	"issue%2f..%2f..%2fadmin",
	"issue%2F..",
	"issue%252f..",
	"issue%5c..%5cadmin",
	"issue\\..\\admin",
	"%2f%2fevil.com",
	"%40evil.com",
	"issue%3a80",
	"169.254.169.254/latest/meta-data",
	"%31%36%39.254.169.254/latest",
	"[::1]/x",
	"[fd00:ec2::254]/latest",
	"::ffff:169.254.169.254",
	"[::ffff:a9fe:a9fe]/latest",
	// IPv4 in inet_aton's other notations, and with a trailing dot.
	"0251.0376.0251.0376/latest",
	"0xa9.0xfe.0xa9.0xfe/latest",
	"0XA9.0XFE.43518/latest",
	"169.254.43518/latest",
	"169.16689662/latest",
	"%30251.0376.0251.0376/latest",
	"169.254.169.254./latest",
	// Encoded characters that normalize to dots or separators.
	"%EF%BC%8E%EF%BC%8E/admin",
	"%E3%80%82%E3%80%82/admin",
	"%EF%BD%A1%EF%BD%A1/admin",
	"%E2%80%A4%E2%80%A4/admin",
	"issue%EF%BC%8F..%EF%BC%8Fadmin",
	"issue%EF%BC%BC..",
	"%EF%BC%A0evil.com",
	"issue/SUP-1?redirect=https://evil.com",
	"issue/SUP-1#x",
	"issue/%00",
	"issue/a b",
	"issue/\n",
	"issue/é",
	"issue//comment",
	"",
	"/",
	"%",
	"issue/%zz",
}

func TestBuildRefusesEveryWayOut(t *testing.T) {
	ctx := context.Background()
	for _, p := range SSRFAttempts {
		req, err := passthrough.Build(ctx, base, passthrough.Request{Method: "GET", Path: p}, passthrough.Limits{})
		require.ErrorIs(t, err, passthrough.ErrRefused, "path %q built %v", p, req)
	}
}

func TestBuildRefusesMethodsBodiesAndSizes(t *testing.T) {
	ctx := context.Background()
	for _, m := range []string{"TRACE", "CONNECT", "OPTIONS", "HEAD", "PROPFIND", ""} {
		_, err := passthrough.Build(ctx, base, passthrough.Request{Method: m, Path: "myself"}, passthrough.Limits{})
		require.ErrorIs(t, err, passthrough.ErrRefused, m)
		require.Contains(t, err.Error(), "GET, POST, PUT, PATCH, DELETE")
	}
	_, err := passthrough.Build(ctx, base, passthrough.Request{Method: "GET", Path: "myself", Body: json.RawMessage(`{"a":1}`)}, passthrough.Limits{})
	require.ErrorIs(t, err, passthrough.ErrRefused)
	_, err = passthrough.Build(ctx, base, passthrough.Request{Method: "POST", Path: "search/jql", Body: json.RawMessage(`{"jql":"` + strings.Repeat("x", 2000) + `"}`)},
		passthrough.Limits{MaxBody: 1000})
	require.ErrorContains(t, err, "body exceeds 1000 bytes")
	_, err = passthrough.Build(ctx, base, passthrough.Request{Method: "GET", Path: strings.Repeat("a/", 600)}, passthrough.Limits{})
	require.ErrorContains(t, err, "path exceeds")
	_, err = passthrough.Build(ctx, base, passthrough.Request{Method: "GET", Path: "x", Query: map[string]any{"a": map[string]any{}}}, passthrough.Limits{})
	require.ErrorContains(t, err, `query "a"`)
}

func TestBuildStaysUnderTheBase(t *testing.T) {
	ctx := context.Background()
	for p, want := range map[string]string{
		"search/jql":            base + "/search/jql?jql=project+%3D+SUP&maxResults=2",
		"/issue/SUP-1/comment":  base + "/issue/SUP-1/comment?jql=project+%3D+SUP&maxResults=2",
		"issue/10001":           base + "/issue/10001?jql=project+%3D+SUP&maxResults=2",
		"issue/2852039166":      base + "/issue/2852039166?jql=project+%3D+SUP&maxResults=2",
		"field/cf.10001":        base + "/field/cf.10001?jql=project+%3D+SUP&maxResults=2",
		"project/%C3%A9t%C3%A9": base + "/project/%C3%A9t%C3%A9?jql=project+%3D+SUP&maxResults=2",
		"project/A~B_c.d%20e":   base + "/project/A~B_c.d%20e?jql=project+%3D+SUP&maxResults=2",
	} {
		req, err := passthrough.Build(ctx, base, passthrough.Request{Method: "get", Path: p,
			Query: map[string]any{"jql": "project = SUP", "maxResults": 2.0}}, passthrough.Limits{})
		require.NoError(t, err, p)
		require.Equal(t, want, req.URL.String())
		require.Equal(t, http.MethodGet, req.Method)
		require.Equal(t, "api.atlassian.com", req.URL.Host)
	}
	req, err := passthrough.Build(ctx, base, passthrough.Request{Method: "DELETE", Path: "webhook", Query: map[string]any{"x": []any{"1", true}},
		Body: json.RawMessage(`{"webhookIds":[1]}`)}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, "x=1&x=true", req.URL.RawQuery)
	require.Equal(t, "application/json", req.Header.Get("Content-Type"))
}

// simHTTPClient is an HTTP client authenticated at the simulator by the
// real 3LO flow, and the REST base of its first site.
func simHTTPClient(t *testing.T) (*jirasim.Server, *http.Client, string) {
	t.Helper()
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 9, Projects: 2, IssuesPerProject: 5})
	ep := jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()}
	cfg := jiracloud.OAuthConfig(ep, sim.ClientID(), sim.ClientSecret(), "https://app.example.com/cb")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(jiracloud.AuthCodeURL(cfg, "s"))
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"))
	require.NoError(t, err)
	return sim, cfg.Client(context.Background(), tok), sim.APIBase(sim.Default().ID()) + "/rest/api/3"
}

func TestDoReturnsTheVendorAnswerAsItIs(t *testing.T) {
	sim, hc, apiBase := simHTTPClient(t)
	ctx := context.Background()
	key := sim.Default().ProjectKeys()[0]

	r, err := passthrough.Do(ctx, hc, apiBase, passthrough.Request{Method: "GET", Path: "issue/" + key + "-1", Query: map[string]any{"fields": "summary"}}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status)
	require.True(t, r.JSON())
	require.Contains(t, string(r.Body), `"key":"`+key+`-1"`)

	r, err = passthrough.Do(ctx, hc, apiBase, passthrough.Request{Method: "GET", Path: "issue/NOPE-1"}, passthrough.Limits{})
	require.NoError(t, err, "a vendor error is an answer, not a failure")
	require.Equal(t, http.StatusNotFound, r.Status)
	require.Contains(t, string(r.Body), "does not exist")

	r, err = passthrough.Do(ctx, hc, apiBase, passthrough.Request{Method: "POST", Path: "search/jql",
		Body: json.RawMessage(`{"jql":"project = ` + key + `","maxResults":2}`)}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, string(r.Body), "nextPageToken")

	_, err = passthrough.Do(ctx, hc, apiBase, passthrough.Request{Method: "POST", Path: "search/jql",
		Body: json.RawMessage(`{"jql":"project = ` + key + `","maxResults":50,"fields":["*all"]}`)}, passthrough.Limits{MaxResponse: 512})
	require.ErrorIs(t, err, passthrough.ErrTooLarge)
}

// A redirect is handed back, never followed: the connection's credentials
// would go wherever it points.
func TestDoDoesNotFollowRedirects(t *testing.T) {
	var leaked bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("Authorization") != ""
	}))
	defer elsewhere.Close()
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusSeeOther)
	}))
	defer vendor.Close()
	hc := &http.Client{Transport: bearer{http.DefaultTransport}}
	r, err := passthrough.Do(context.Background(), hc, vendor.URL+"/rest/api/3", passthrough.Request{Method: "GET", Path: "attachment/content/1"}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, r.Status)
	require.Equal(t, elsewhere.URL+"/steal", r.Header.Get("Location"))
	require.False(t, leaked)
	require.False(t, errors.Is(err, passthrough.ErrRefused))
}

type bearer struct{ base http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer secret")
	return b.base.RoundTrip(r)
}
