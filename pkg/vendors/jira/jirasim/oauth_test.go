package jirasim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestAuthorizeRedirectsWithCodeAndState(t *testing.T) {
	s, _ := testSim(t, nil)
	loc := authorize(t, s, nil)
	require.Equal(t, "app.example.com", loc.Host)
	require.Equal(t, "/oauth/callback", loc.Path)
	require.NotEmpty(t, loc.Query().Get("code"))
	require.Equal(t, "st-123", loc.Query().Get("state"))
}

func TestAuthorizeDenied(t *testing.T) {
	s, _ := testSim(t, nil)
	loc := authorize(t, s, url.Values{"jirasim_consent": {"deny"}})
	require.Equal(t, "access_denied", loc.Query().Get("error"))
	require.Equal(t, "st-123", loc.Query().Get("state"))
	require.Empty(t, loc.Query().Get("code"))

	s.SetDenyConsent(true)
	loc = authorize(t, s, nil)
	require.Equal(t, "access_denied", loc.Query().Get("error"))

	denied, _ := testSim(t, func(o *Options) { o.DenyConsent = true })
	require.Equal(t, "access_denied", authorize(t, denied, nil).Query().Get("error"))
}

func TestAuthorizationCodeIsSingleUseAndBoundToRedirect(t *testing.T) {
	s, _ := testSim(t, nil)
	code := authorize(t, s, nil).Query().Get("code")
	req := map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(), "client_secret": s.ClientSecret(),
		"code": code, "redirect_uri": "https://evil.example.com/cb"}
	status, raw := tokenCall(t, s, req)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, string(raw), "invalid_grant")

	req["redirect_uri"] = testRedirect
	status, raw = tokenCall(t, s, req)
	require.Equal(t, http.StatusOK, status, string(raw))
	var tr tokenResp
	require.NoError(t, json.Unmarshal(raw, &tr))
	require.Equal(t, "Bearer", tr.TokenType)
	require.Equal(t, 3600, tr.ExpiresIn)
	require.Equal(t, allScopes, tr.Scope)
	require.NotEmpty(t, tr.AccessToken)
	require.NotEmpty(t, tr.RefreshToken)

	status, raw = tokenCall(t, s, req)
	require.Equal(t, http.StatusForbidden, status, "a code works once")
	require.Contains(t, string(raw), "invalid_grant")
}

func TestTokenWrongSecretIsInvalidClient(t *testing.T) {
	s, _ := testSim(t, nil)
	code := authorize(t, s, nil).Query().Get("code")
	status, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": "wrong", "code": code, "redirect_uri": testRedirect})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, string(raw), `"error":"invalid_client"`)
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	s, _ := testSim(t, nil)
	loc := authorize(t, s, url.Values{"scope": {"read:jira-work"}})
	status, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "code": loc.Query().Get("code"), "redirect_uri": testRedirect})
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, string(raw), "refresh_token")
}

func TestRefreshRotationAndGrace(t *testing.T) {
	s, clk := testSim(t, nil)
	tr0 := login(t, s)

	status, raw := refresh(t, s, tr0.RefreshToken)
	require.Equal(t, http.StatusOK, status, string(raw))
	var tr1 tokenResp
	require.NoError(t, json.Unmarshal(raw, &tr1))
	require.NotEqual(t, tr0.RefreshToken, tr1.RefreshToken, "each refresh rotates the refresh token")
	require.NotEqual(t, tr0.AccessToken, tr1.AccessToken)

	// Within the 10-minute grace the rotated token and its access token still work.
	clk.Advance(9 * time.Minute)
	st, _, _ := api(t, s, tr0.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusOK, st, "old access token works during the grace")
	status, raw = refresh(t, s, tr0.RefreshToken)
	require.Equal(t, http.StatusOK, status, "old refresh token works during the grace: %s", raw)

	// After the grace both are dead; the new ones live on.
	clk.Advance(2 * time.Minute)
	status, raw = refresh(t, s, tr0.RefreshToken)
	require.Equal(t, http.StatusForbidden, status)
	require.JSONEq(t, `{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}`, string(raw))
	st, _, _ = api(t, s, tr0.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusUnauthorized, st, "the old access token is revoked at the end of the grace")
	st, _, _ = api(t, s, tr1.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusOK, st)
	status, raw = refresh(t, s, tr1.RefreshToken)
	require.Equal(t, http.StatusOK, status, string(raw))

	status, _ = refresh(t, s, "never-issued")
	require.Equal(t, http.StatusForbidden, status)
}

func TestRefreshTokenInactivityExpiry(t *testing.T) {
	s, clk := testSim(t, nil)
	tr := login(t, s)
	clk.Advance(91 * 24 * time.Hour)
	status, raw := refresh(t, s, tr.RefreshToken)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, string(raw), "invalid_grant")
}

func TestAccessTokenExpiresByClock(t *testing.T) {
	s, clk := testSim(t, nil)
	tr := login(t, s)
	st, _, _ := api(t, s, tr.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusOK, st)
	clk.Advance(59 * time.Minute)
	st, _, _ = api(t, s, tr.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusOK, st)
	clk.Advance(time.Minute)
	st, _, raw := api(t, s, tr.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusUnauthorized, st)
	require.JSONEq(t, `{"code":401,"message":"Unauthorized"}`, string(raw))

	st, _, _ = api(t, s, "", "GET", "myself", nil)
	require.Equal(t, http.StatusUnauthorized, st)
	st, _, _ = api(t, s, "garbage", "GET", "myself", nil)
	require.Equal(t, http.StatusUnauthorized, st)
}

func TestScopeIsChecked(t *testing.T) {
	s, _ := testSim(t, nil)
	loc := authorize(t, s, url.Values{"scope": {"read:jira-work offline_access"}})
	_, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "code": loc.Query().Get("code"), "redirect_uri": testRedirect})
	var tr tokenResp
	require.NoError(t, json.Unmarshal(raw, &tr))
	st, _, _ := api(t, s, tr.AccessToken, "GET", "status", nil)
	require.Equal(t, http.StatusOK, st)
	st, _, body := api(t, s, tr.AccessToken, "GET", "users/search", nil)
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, string(body), "scope does not match")
}

func TestAccessibleResourcesSeveralSites(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Sites = []Site{{Name: "acme"}, {Name: "globex", URL: "https://globex.atlassian.net"}}
	})
	tr := login(t, s)
	req, _ := http.NewRequest("GET", s.ResourcesURL(), nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var res []struct {
		ID, Name, URL, AvatarURL string
		Scopes                   []string
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	require.Len(t, res, 2)
	require.Equal(t, "acme", res[0].Name)
	require.Equal(t, "https://acme.atlassian.net", res[0].URL)
	require.Equal(t, "https://globex.atlassian.net", res[1].URL)
	require.Len(t, res[0].ID, 36)
	require.Contains(t, res[0].Scopes, "read:jira-work")
	require.NotEmpty(t, res[0].AvatarURL)

	// Each site answers under its own cloud id, and unknown ids are 404.
	for _, r := range res {
		st, _, _ := apiSite(t, s, r.ID, tr.AccessToken, "GET", "project/search", nil)
		require.Equal(t, http.StatusOK, st)
	}
	st, _, _ := apiSite(t, s, "00000000-0000-4000-8000-000000000000", tr.AccessToken, "GET", "project/search", nil)
	require.Equal(t, http.StatusNotFound, st)

	req, _ = http.NewRequest("GET", s.ResourcesURL(), nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestGolangOAuth2Client checks the simulator against the client library
// the platform uses: form-encoded requests and automatic refresh.
func TestGolangOAuth2Client(t *testing.T) {
	s, clk := testSim(t, nil)
	cfg := &oauth2.Config{ClientID: s.ClientID(), ClientSecret: s.ClientSecret(), RedirectURL: testRedirect,
		Scopes: strings.Fields(allScopes), Endpoint: oauth2.Endpoint{AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	authURL := cfg.AuthCodeURL("xyz", oauth2.SetAuthURLParam("audience", "api.atlassian.com"), oauth2.SetAuthURLParam("prompt", "consent"))
	resp, err := noRedirect().Get(authURL)
	require.NoError(t, err)
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	require.Equal(t, "xyz", loc.Query().Get("state"))

	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, http.DefaultClient)
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)

	// The oauth2 library judges expiry by the wall clock, so mark the token
	// expired by hand after moving the simulator's clock past its TTL.
	clk.Advance(time.Hour + time.Minute)
	tok.Expiry = time.Now().Add(-time.Second)
	ts := cfg.TokenSource(ctx, tok)
	fresh, err := ts.Token()
	require.NoError(t, err)
	require.NotEqual(t, tok.AccessToken, fresh.AccessToken)
	require.NotEqual(t, tok.RefreshToken, fresh.RefreshToken)
	st, _, _ := api(t, s, fresh.AccessToken, "GET", "myself", nil)
	require.Equal(t, http.StatusOK, st)

	// Basic-auth client credentials are accepted too.
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Second)}).Token()
	require.NoError(t, err)
}

func TestAuthorizeRejectsUnknownClient(t *testing.T) {
	s, _ := testSim(t, nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/authorize?client_id=nope&redirect_uri="+url.QueryEscape(testRedirect)+"&response_type=code&scope=x", nil))
	require.Equal(t, http.StatusBadRequest, rec.Code)
}

// The consent screen: the authorize parameters ride in the form, the grant
// covers the chosen site only, Deny redirects with access_denied.
func TestConsentScreen(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.ConsentScreen = true; o.Sites = []Site{{}, {}} })
	q := url.Values{"audience": {"api.atlassian.com"}, "client_id": {s.ClientID()}, "scope": {allScopes},
		"redirect_uri": {testRedirect}, "state": {"st-<9>"}, "response_type": {"code"}, "prompt": {"consent"}}
	resp, err := noRedirect().Get(s.AuthURL() + "?" + q.Encode())
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	page := string(body)
	second := s.Sites()[1]
	require.Contains(t, page, `<form method="post" action="/authorize">`)
	require.Contains(t, page, `value="`+second.ID+`"`)
	require.Contains(t, page, second.URL)
	require.Contains(t, page, `name="state" value="st-&lt;9&gt;"`, "escaped")

	post := func(extra url.Values) *url.URL {
		form := url.Values{}
		for k, v := range q {
			form[k] = v
		}
		for k, v := range extra {
			form[k] = v
		}
		resp, err := noRedirect().PostForm(s.AuthURL(), form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return loc
	}
	loc := post(url.Values{"decision": {"accept"}, "site": {second.ID}})
	require.Equal(t, "st-<9>", loc.Query().Get("state"))
	status, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "code": loc.Query().Get("code"), "redirect_uri": testRedirect})
	require.Equal(t, http.StatusOK, status, string(raw))
	var tr tokenResp
	require.NoError(t, json.Unmarshal(raw, &tr))
	req, err := http.NewRequest(http.MethodGet, s.ResourcesURL(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var sites []struct{ ID, URL string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&sites))
	res.Body.Close()
	require.Len(t, sites, 1, "only the chosen site")
	require.Equal(t, second.ID, sites[0].ID)

	denied := post(url.Values{"decision": {"deny"}, "site": {second.ID}})
	require.Equal(t, "access_denied", denied.Query().Get("error"))
	require.Empty(t, denied.Query().Get("code"))
}
