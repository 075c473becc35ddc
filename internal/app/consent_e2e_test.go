package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

// createConnection creates a connection as the API key's organization and
// returns its view (with the authorize URL).
func createConnection(t *testing.T, env *apptest.Env, key string, options map[string]any) connections.View {
	t.Helper()
	req := map[string]any{"vendor": "JIRA"}
	if options != nil {
		req["options"] = options
	}
	st, body := env.Call(t, http.MethodPost, key, "/v1/connections", req)
	require.Equal(t, http.StatusCreated, st, body)
	var v connections.View
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	return v
}

func getConnection(t *testing.T, env *apptest.Env, key, id string) connections.View {
	t.Helper()
	var v connections.View
	require.Equal(t, http.StatusOK, env.GetJSON(t, key, "/v1/connections/"+id, &v))
	return v
}

// requireNotConnected: the connection is PENDING, holds no usable tokens
// and has registered nothing in Jira.
func requireNotConnected(t *testing.T, env *apptest.Env, sim *jirasim.Server, key, id string) connections.View {
	t.Helper()
	v := getConnection(t, env, key, id)
	require.Equal(t, store.StatePending, v.State)
	require.False(t, v.IsActive)
	_, err := env.Connections().Token(context.Background(), id, "")
	require.ErrorIs(t, err, connections.ErrNotActive, "no active tokens")
	require.Empty(t, sim.Default().Webhooks(), "no webhook registered in Jira")
	return v
}

// requireErrorPage: an HTML error page with the status and the words.
// authorizeAgain asks for a new authorization link of a connection.
func authorizeAgain(t *testing.T, env *apptest.Env, key, id string) string {
	t.Helper()
	st, body := env.Call(t, http.MethodPost, key, "/v1/connections/"+id+"/authorize", nil)
	require.Equal(t, http.StatusOK, st, body)
	var fresh struct {
		URL string `json:"oauth2_authorize_url"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &fresh))
	return fresh.URL
}

func requireErrorPage(t *testing.T, status int, body string, wantStatus int, words ...string) {
	t.Helper()
	require.Equal(t, wantStatus, status, body)
	require.Contains(t, body, `<html lang="en">`)
	for _, w := range words {
		require.Contains(t, body, w)
	}
	require.NotContains(t, body, "<form", "an error page offers nothing to confirm")
}

// The review's finding: organization B creates a connection naming the
// victim's site and gets the victim's admin to follow the link. The
// callback no longer activates anything: the admin sees which organization
// asks, and declining leaves B with nothing.
func TestConsentNamesTheOrganizationAndWaitsForConfirmation(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	victimSite := sim.Default().Info().URL
	created := createConnection(t, env, keyB, map[string]any{"site_url": victimSite})

	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.Contains(t, page.Body, `<dd id="organization">org-b</dd>`, "the page names the asking organization")
	require.Contains(t, page.Body, victimSite, "and the granted site")
	require.Contains(t, page.Body, `value="confirm"`)
	require.Contains(t, page.Body, `value="decline"`)

	// Until someone confirms, nothing is active; the API shows what waits.
	v := requireNotConnected(t, env, sim, keyB, created.ID)
	require.NotNil(t, v.PendingConsent)
	require.Equal(t, victimSite, v.PendingConsent.SiteURL)
	require.Contains(t, v.Health.Description, "waiting for the administrator to confirm")

	st, body := page.Submit(t, "decline")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "Connection declined")
	require.Contains(t, body, "the access Jira granted was discarded")
	v = requireNotConnected(t, env, sim, keyB, created.ID)
	require.Nil(t, v.PendingConsent, "declining discards the granted tokens")
	require.Contains(t, v.Health.Description, "declined")

	// The spent form cannot be confirmed afterwards.
	st, body = page.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusConflict, "already used")
	requireNotConnected(t, env, sim, keyB, created.ID)
}

func TestConsentStateExpires(t *testing.T) {
	env, sim, clock := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	clock.Advance(16 * time.Minute) // the state lives 15 minutes
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	requireErrorPage(t, page.Status, page.Body, http.StatusBadRequest, "This authorization link has expired")
	require.Empty(t, page.Token)
	requireNotConnected(t, env, sim, keyA, created.ID)

	// A fresh link works.
	freshURL := authorizeAgain(t, env, keyA, created.ID)
	apptest.Connect(t, freshURL)
	require.Equal(t, store.StateActive, getConnection(t, env, keyA, created.ID).State)
}

func TestConsentStateIsSingleUse(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)

	replay := apptest.OpenCallback(t, page.CallbackURL)
	requireErrorPage(t, replay.Status, replay.Body, http.StatusConflict, "This authorization link was already used")
	require.Nil(t, replay.Cookie)

	// A newer authorize URL replaces an older, unused one.
	created2 := createConnection(t, env, keyA, nil)
	st, body := env.Call(t, http.MethodPost, keyA, "/v1/connections/"+created2.ID+"/authorize", nil)
	require.Equal(t, http.StatusOK, st, body)
	old := apptest.Consent(t, created2.OAuth2AuthorizeURL)
	requireErrorPage(t, old.Status, old.Body, http.StatusConflict, "already used")
	requireNotConnected(t, env, sim, keyA, created2.ID)

	// Forged and denied callbacks get error pages too.
	forged := apptest.OpenCallback(t, env.URL+"/oauth/callback?code=x&state=forged.state.123.sig")
	requireErrorPage(t, forged.Status, forged.Body, http.StatusBadRequest, "This authorization link is not valid")
	denied := apptest.Consent(t, createConnection(t, env, keyA, nil).OAuth2AuthorizeURL+"&jirasim_consent=deny")
	requireErrorPage(t, denied.Status, denied.Body, http.StatusBadRequest, "Jira access was not granted", "access_denied", "Jira&#39;s consent screen")
	// A state that is not live learns no vendor.
	unknown := apptest.OpenCallback(t, env.URL+"/oauth/callback?error=access_denied&state=x")
	requireErrorPage(t, unknown.Status, unknown.Body, http.StatusBadRequest, "Access was not granted", "access_denied")
	require.NotContains(t, unknown.Body, "Jira")
	// Free text in the link never becomes a message on the page.
	spoof := apptest.OpenCallback(t, env.URL+"/oauth/callback?error="+url.QueryEscape("Your account is locked, call +1 555 0100"))
	requireErrorPage(t, spoof.Status, spoof.Body, http.StatusBadRequest, "unknown error")
	require.NotContains(t, spoof.Body, "555 0100")

	// The first page still confirms: single-use states do not break the
	// flow that used them.
	st, body = page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	require.Equal(t, store.StateActive, getConnection(t, env, keyA, created.ID).State)
}

func TestConsentConfirmationIsCSRFProtected(t *testing.T) {
	env, sim, clock := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.NotEmpty(t, page.Token)
	require.NotNil(t, page.Cookie)
	require.True(t, page.Cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, page.Cookie.SameSite)
	require.Equal(t, "/oauth/confirm", page.Cookie.Path)

	// A second, independent consent supplies another browser's cookie.
	other := createConnection(t, env, keyA, nil)
	otherPage := apptest.Consent(t, other.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, otherPage.Status, otherPage.Body)

	forged := page.Token[:len(page.Token)-4] + "AAAA"
	state := func() string {
		u, err := url.Parse(page.CallbackURL)
		require.NoError(t, err)
		return u.Query().Get("state")
	}()
	cases := []struct {
		name   string
		form   url.Values
		cookie *http.Cookie
		status int
		words  string
	}{
		{"token missing", url.Values{"decision": {"confirm"}}, page.Cookie, http.StatusBadRequest, "This confirmation is not valid"},
		{"token forged", url.Values{"consent_token": {forged}, "decision": {"confirm"}}, page.Cookie, http.StatusBadRequest, "This confirmation is not valid"},
		{"the OAuth state as token", url.Values{"consent_token": {state}, "decision": {"confirm"}}, page.Cookie, http.StatusBadRequest, "This confirmation is not valid"},
		{"cookie missing", url.Values{"consent_token": {page.Token}, "decision": {"confirm"}}, nil, http.StatusForbidden, "Confirm from the browser that authorized"},
		{"another browser's cookie", url.Values{"consent_token": {page.Token}, "decision": {"confirm"}}, otherPage.Cookie, http.StatusForbidden, "Confirm from the browser that authorized"},
		{"no decision", url.Values{"consent_token": {page.Token}}, page.Cookie, http.StatusBadRequest, "decision: want confirm or decline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := page.Post(t, tc.form, tc.cookie)
			requireErrorPage(t, st, body, tc.status, tc.words)
			requireNotConnected(t, env, sim, keyA, created.ID)
		})
	}

	t.Run("posted from another site", func(t *testing.T) {
		form := url.Values{"consent_token": {page.Token}, "decision": {"confirm"}}
		req, err := http.NewRequest(http.MethodPost, env.URL+"/oauth/confirm", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://attacker.example")
		req.AddCookie(&http.Cookie{Name: page.Cookie.Name, Value: page.Cookie.Value})
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Empty(t, resp.Cookies(), "a forged post cannot clear the administrator's cookie")
		requireNotConnected(t, env, sim, keyA, created.ID)
	})

	// None of those spent the form: the real one confirms once.
	st, body := page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "Jira connected")
	require.Equal(t, store.StateActive, getConnection(t, env, keyA, created.ID).State)
	st, body = page.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusConflict, "This confirmation was already used")

	// An unconfirmed consent expires: its tokens are discarded, and the
	// form is refused.
	clock.Advance(11 * time.Minute) // pending consents live 10 minutes
	st, body = otherPage.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusBadRequest, "This confirmation has expired", "The access Jira granted was discarded")
	v := getConnection(t, env, keyA, other.ID)
	require.Equal(t, store.StatePending, v.State)
	require.Nil(t, v.PendingConsent)
	require.Contains(t, v.Health.Description, "expired")
}

func TestConsentExpiredPendingIsDiscardedByUpkeep(t *testing.T) {
	env, sim, clock := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.NoError(t, env.Connections().DiscardExpiredConsents(context.Background()))
	require.NotNil(t, getConnection(t, env, keyA, created.ID).PendingConsent, "not expired yet")
	clock.Advance(11 * time.Minute)
	require.NoError(t, env.Connections().DiscardExpiredConsents(context.Background()))
	v := requireNotConnected(t, env, sim, keyA, created.ID)
	require.Nil(t, v.PendingConsent)
	st, body := page.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusBadRequest, "expired")
}

func TestConsentSiteMustMatchTheDeclaredSite(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	declared := "https://customer-site.atlassian.net"
	created := createConnection(t, env, keyA, map[string]any{"site_url": declared})
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	requireErrorPage(t, page.Status, page.Body, http.StatusConflict, "Wrong Jira site", sim.Default().Info().URL, "stays PENDING")
	require.NotContains(t, page.Body, declared, "whoever holds the link does not learn the declared site")
	require.Nil(t, page.Cookie)

	v := requireNotConnected(t, env, sim, keyA, created.ID)
	require.Nil(t, v.PendingConsent, "the granted tokens were not kept")
	require.Equal(t, store.HealthFailed, v.Health.Status)
	require.Equal(t, store.OwnerCustomer, v.Health.ResolutionOwner)
	require.Contains(t, v.Health.Description, declared)
	require.Contains(t, v.Health.Description, sim.Default().Info().URL)
}

func TestConsentPagesAreStrictPlainHTML(t *testing.T) {
	const keyC = "key-org-c-0123456789abcdef"
	const orgC = `org-<script>alert(1)</script>&"c"`
	clock := jirasim.NewManualClock(time.Now())
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1, Clock: clock})
	env := platformWithOrg(t, sim, clock, keyC, orgC)
	created := createConnection(t, env, keyC, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	st, success := page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, success)
	replay := apptest.OpenCallback(t, page.CallbackURL)
	tok, err := env.Connections().Token(context.Background(), created.ID, "")
	require.NoError(t, err)

	for name, p := range map[string]struct {
		header http.Header
		body   string
	}{"confirmation": {page.Header, page.Body}, "error": {replay.Header, replay.Body}} {
		h := p.header
		require.Equal(t, "text/html; charset=UTF-8", h.Get("Content-Type"), name)
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
			require.Contains(t, csp, d, name)
		}
		require.NotContains(t, csp, "unsafe-inline", name)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), name)
		require.Equal(t, "no-store", h.Get("Cache-Control"), name)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), name)
		require.Equal(t, "same-origin", h.Get("Referrer-Policy"), name)
	}
	for name, body := range map[string]string{"confirmation": page.Body, "success": success, "error": replay.Body} {
		require.True(t, strings.HasPrefix(body, "<!doctype html>\n<html lang=\"en\">"), name)
		require.Contains(t, body, "<title>", name)
		require.Contains(t, body, "<h1>", name)
		require.NotContains(t, body, "<script", name)
		require.NotContains(t, body, "src=", name)
		require.NotContains(t, body, "http-equiv", name)
		for _, secret := range []string{tok.AccessToken, tok.RefreshToken, sim.ClientSecret(), keyC} {
			require.NotContains(t, body, secret, name)
		}
	}
	require.Contains(t, page.Body, "org-&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#34;c&#34;", "the organization is escaped")
	require.Contains(t, success, "Jira connected")
	require.Contains(t, success, `<dd id="state">ACTIVE</dd>`)
}

// platformWithOrg runs the platform against sim with one API key of
// the organization orgID.
func platformWithOrg(t *testing.T, sim *jirasim.Server, clock *jirasim.ManualClock, key, orgID string) *apptest.Env {
	return apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{key: orgID}
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	}, app.WithClock(clock.Now))
}

// Two confirmations of one form at once: exactly one activates.
func TestConsentConcurrentConfirmationsActivateOnce(t *testing.T) {
	env, _, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	form := url.Values{"consent_token": {page.Token}, "decision": {"confirm"}}.Encode()
	statuses := make(chan int, 4)
	for range 4 {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/oauth/confirm", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: page.Cookie.Name, Value: page.Cookie.Value})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	ok := 0
	for range 4 {
		if st := <-statuses; st == http.StatusOK {
			ok++
		} else {
			require.Equal(t, http.StatusConflict, st)
		}
	}
	require.Equal(t, 1, ok)
	require.Equal(t, store.StateActive, getConnection(t, env, keyA, created.ID).State)
}

// A grant covering several sites: the declared one is used, on the page and
// after confirmation.
func TestConsentPicksTheDeclaredSiteOfSeveral(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1, Sites: []jirasim.Site{{}, {}}})
	second := sim.Sites()[1]
	created := createConnection(t, env, keyA, map[string]any{"site_url": second.URL})
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.Contains(t, page.Body, `<dd id="site">`+second.Name+" ("+second.URL+")</dd>")
	st, body := page.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	v := getConnection(t, env, keyA, created.ID)
	require.Equal(t, store.StateActive, v.State)
	require.Equal(t, second.URL, v.SiteURL)
	require.Len(t, v.Sites, 2, "the grant's sites are recorded")
}

// The declared site changed between the callback and the confirmation:
// the confirmation checks again and activates nothing.
func TestConsentConfirmationChecksTheSiteAgain(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	st, body := env.Call(t, http.MethodPatch, keyA, "/v1/connections/"+created.ID,
		map[string]any{"options": map[string]any{"site_url": "https://elsewhere.atlassian.net"}})
	require.Equal(t, http.StatusOK, st, body)
	st, body = page.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusConflict, "Wrong Jira site")
	v := requireNotConnected(t, env, sim, keyA, created.ID)
	require.Nil(t, v.PendingConsent)
	require.Equal(t, store.HealthFailed, v.Health.Status)
	require.Contains(t, v.Health.Description, "https://elsewhere.atlassian.net")
}

// Asking for a new authorize URL abandons a consent waiting for
// confirmation: its tokens are discarded and its form is refused.
func TestConsentNewAuthorizationDiscardsThePendingOne(t *testing.T) {
	env, sim, _ := startWithSim(t, jirasim.Options{Seed: 3, Projects: 1, IssuesPerProject: 1})
	created := createConnection(t, env, keyA, nil)
	page := apptest.Consent(t, created.OAuth2AuthorizeURL)
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.NotNil(t, getConnection(t, env, keyA, created.ID).PendingConsent)
	st, body := env.Call(t, http.MethodPost, keyA, "/v1/connections/"+created.ID+"/authorize", nil)
	require.Equal(t, http.StatusOK, st, body)
	v := requireNotConnected(t, env, sim, keyA, created.ID)
	require.Nil(t, v.PendingConsent)
	st, body = page.Submit(t, "confirm")
	requireErrorPage(t, st, body, http.StatusConflict, "This confirmation was already used")
}
