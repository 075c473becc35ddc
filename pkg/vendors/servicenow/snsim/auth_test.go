package snsim

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testRedirect = "https://app.example.com/oauth/servicenow/callback"

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// authorize runs /oauth_auth.do and returns the redirect.
func authorize(t *testing.T, s *Server, extra url.Values) *url.URL {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {"snsim-client"}, "redirect_uri": {testRedirect}, "state": {"st-1"}}
	for k, v := range extra {
		q[k] = v
	}
	res, err := noRedirect().Get(s.BaseURL("") + "/oauth_auth.do?" + q.Encode())
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

type tokenResp struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func tokenCall(t *testing.T, s *Server, form url.Values) (int, []byte) {
	t.Helper()
	res, err := http.PostForm(s.BaseURL("")+"/oauth_token.do", form)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func login(t *testing.T, s *Server) tokenResp {
	t.Helper()
	loc := authorize(t, s, nil)
	require.Equal(t, "st-1", loc.Query().Get("state"))
	status, b := tokenCall(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {testRedirect}, "client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, 200, status, string(b))
	return decode[tokenResp](t, b)
}

func TestBasicAuth(t *testing.T) {
	s, _ := testSim(t, nil)
	for _, c := range []cred{{}, {user: "admin", pass: "wrong"}, {user: "nobody", pass: "x"}, {bearer: "not-a-token"}} {
		r := call(t, s, c, "/api/now/table/incident?sysparm_limit=1")
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.JSONEq(t, `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`, string(r.body))
		require.NotEmpty(t, r.header.Get("WWW-Authenticate"))
		require.NotContains(t, string(r.body), "wrong")
	}
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)

	// A deactivated account can no longer sign in.
	in := s.Default()
	me := mustRecords(t, in, "sys_user")[1]
	require.Equal(t, "itsm.integration", me["user_name"])
	_, err := in.Update("sys_user", me["sys_id"], Record{"active": "false"}, WriteOptions{})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
}

func TestOAuthAuthorizationCode(t *testing.T) {
	s, clk := testSim(t, nil)
	tr := login(t, s)
	require.Equal(t, 1799, tr.ExpiresIn)
	require.Equal(t, "Bearer", tr.TokenType)
	require.Equal(t, "useraccount", tr.Scope)
	require.Len(t, tr.AccessToken, 86)
	require.NotEmpty(t, tr.RefreshToken)

	bearer := cred{bearer: tr.AccessToken}
	r := call(t, s, bearer, "/api/now/table/sys_journal_field?sysparm_limit=1")
	require.Equal(t, 200, r.status, "the consenting account is the itil integration user")
	_, total := s.Default().Requests()
	require.Positive(t, total)

	// 30 minutes later the access token is dead; the refresh token works.
	clk.Advance(30 * time.Minute)
	require.Equal(t, http.StatusUnauthorized, call(t, s, bearer, "/api/now/table/incident?sysparm_limit=1").status)
	status, b := tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
		"client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, 200, status, string(b))
	tr2 := decode[tokenResp](t, b)
	require.NotEqual(t, tr.AccessToken, tr2.AccessToken)
	require.Equal(t, 200, call(t, s, cred{bearer: tr2.AccessToken}, "/api/now/table/incident?sysparm_limit=1").status)

	// The refresh token dies after 100 days.
	clk.Advance(100 * 24 * time.Hour)
	status, b = tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
		"client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, http.StatusUnauthorized, status)
	require.JSONEq(t, `{"error_description":"access_denied","error":"server_error"}`, string(b))
}

func TestOAuthRefusals(t *testing.T) {
	s, _ := testSim(t, nil)
	loc := authorize(t, s, url.Values{"snsim_consent": {"deny"}})
	require.Equal(t, "access_denied", loc.Query().Get("error"))
	require.Empty(t, loc.Query().Get("code"))

	loc = authorize(t, s, nil)
	code := loc.Query().Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect},
		"client_id": {"snsim-client"}, "client_secret": {"wrong"}}
	status, b := tokenCall(t, s, form)
	require.Equal(t, http.StatusUnauthorized, status)
	require.NotContains(t, string(b), "wrong")
	form.Set("client_secret", "snsim-secret")
	form.Set("redirect_uri", "https://elsewhere.example.com/")
	status, _ = tokenCall(t, s, form)
	require.Equal(t, http.StatusUnauthorized, status, "redirect_uri must match the authorize call")
	form.Set("redirect_uri", testRedirect)
	status, _ = tokenCall(t, s, form)
	require.Equal(t, 200, status)
	status, _ = tokenCall(t, s, form)
	require.Equal(t, http.StatusUnauthorized, status, "a code is single use")
	form.Set("grant_type", "client_credentials")
	status, _ = tokenCall(t, s, form)
	require.Equal(t, http.StatusBadRequest, status)

	res, err := noRedirect().Get(s.BaseURL("") + "/oauth_auth.do?response_type=code&client_id=unknown&redirect_uri=" + url.QueryEscape(testRedirect))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusBadRequest, res.StatusCode)

	// A chosen account: the role-less one cannot read the journal.
	loc = authorize(t, s, url.Values{"snsim_user": {"no.roles"}})
	status, b = tokenCall(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {testRedirect}, "client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, 200, status)
	require.Equal(t, http.StatusForbidden, call(t, s, cred{bearer: decode[tokenResp](t, b).AccessToken}, "/api/now/table/sys_journal_field").status)
}

func TestOAuthRevocation(t *testing.T) {
	s, _ := testSim(t, nil)
	tr := login(t, s)
	res, err := http.PostForm(s.BaseURL("")+"/oauth_revoke_token.do", url.Values{"token": {tr.RefreshToken},
		"client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, http.StatusUnauthorized, call(t, s, cred{bearer: tr.AccessToken}, "/api/now/table/incident").status,
		"access tokens of a revoked refresh token stop working")
	status, _ := tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
		"client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, http.StatusUnauthorized, status)

	tr = login(t, s)
	require.Equal(t, 1, s.Default().RevokeTokens("itsm.integration"))
	require.Equal(t, http.StatusUnauthorized, call(t, s, cred{bearer: tr.AccessToken}, "/api/now/table/incident").status)

	// The password grant also exists on instances.
	status, b := tokenCall(t, s, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"admin-password"},
		"client_id": {"snsim-client"}, "client_secret": {"snsim-secret"}})
	require.Equal(t, 200, status)
	require.False(t, strings.Contains(string(b), "admin-password"))
}
