package sweep_test

import (
	"context"
	"io"
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

// consentProbe is one attempt at the OAuth consent flow that must not
// connect anything.
type consentProbe struct {
	name     string
	do       func(t *testing.T) (int, string)
	status   int
	contains string
}

// TestConsentSweep throws the review's consent probes (finding 3) at the
// platform and the Jira simulator: links of other organizations, leaked,
// forged, replayed, superseded and expired states, and confirmations that
// are forged, cross-site, from another browser or reused. None may
// connect anything; the genuine flow still works afterwards.
func TestConsentSweep(t *testing.T) {
	const keyA, keyB = "sweep-consent-a-0123456789", "sweep-consent-b-0123456789"
	clock := jirasim.NewManualClock(time.Now())
	// Two sites, the victim's and an outsider's, and Atlassian's consent
	// screen where the site is chosen.
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 21, Projects: 1, IssuesPerProject: 2, Clock: clock,
		Sites: []jirasim.Site{{}, {}}, ConsentScreen: true})
	victimSite, outsiderSite := sim.Sites()[0], sim.Sites()[1]
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a", keyB: "org-b"}
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	}, app.WithClock(clock.Now))

	var probed []string // connections that must end up not connected
	create := func(key string, options map[string]any) connections.View {
		t.Helper()
		req := map[string]any{"vendor": "JIRA"}
		if options != nil {
			req["options"] = options
		}
		st, body := env.Call(t, http.MethodPost, key, "/v1/connections", req)
		require.Equal(t, http.StatusCreated, st, body)
		var v connections.View
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		probed = append(probed, key+" "+v.ID)
		return v
	}
	// atJira consents on the simulator's screen to one site and returns
	// where Jira sends the browser (the platform's callback).
	atJira := func(t *testing.T, authorizeURL string, site jirasim.Site) string {
		t.Helper()
		u, err := url.Parse(authorizeURL)
		require.NoError(t, err)
		form := u.Query()
		form.Set("site", site.ID)
		form.Set("decision", "accept")
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.PostForm(sim.URL()+"/authorize", form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		return resp.Header.Get("Location")
	}
	open := func(callback string) (int, string) {
		p := apptest.OpenCallback(t, callback)
		return p.Status, p.Body
	}
	withState := func(callback, state string) string {
		u, err := url.Parse(callback)
		require.NoError(t, err)
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
		return u.String()
	}

	// A genuine confirmation page to aim the confirmation probes at, and a
	// second one whose cookie plays another browser's.
	target := create(keyA, map[string]any{"site_url": victimSite.URL})
	page := apptest.OpenCallback(t, atJira(t, target.OAuth2AuthorizeURL, victimSite))
	require.Equal(t, http.StatusOK, page.Status, page.Body)
	require.NotEmpty(t, page.Token, "the callback shows a confirmation form, it does not connect: %s", page.Body)
	otherBrowser := apptest.OpenCallback(t, atJira(t, create(keyA, nil).OAuth2AuthorizeURL, victimSite))
	require.Equal(t, http.StatusOK, otherBrowser.Status, otherBrowser.Body)
	state := func() string { u, _ := url.Parse(page.CallbackURL); return u.Query().Get("state") }()
	confirmWith := func(form url.Values, cookie *http.Cookie, origin string) func(*testing.T) (int, string) {
		return func(t *testing.T) (int, string) {
			if origin == "" {
				return page.Post(t, form, cookie)
			}
			req, err := http.NewRequest(http.MethodPost, env.URL+"/oauth/confirm", strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", origin)
			req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			return doRequest(t, req)
		}
	}
	good := url.Values{"consent_token": {page.Token}, "decision": {"confirm"}}

	probes := []consentProbe{
		{"B's connection naming A's site, A's admin follows the link", func(t *testing.T) (int, string) {
			return open(atJira(t, create(keyB, map[string]any{"site_url": victimSite.URL}).OAuth2AuthorizeURL, victimSite))
		}, http.StatusOK, `<dd id="organization">org-b</dd>`},
		{"leaked authorize URL used with the outsider's site", func(t *testing.T) (int, string) {
			return open(atJira(t, create(keyA, map[string]any{"site_url": victimSite.URL}).OAuth2AuthorizeURL, outsiderSite))
		}, http.StatusConflict, "Wrong Jira site"},
		{"replayed callback", func(*testing.T) (int, string) { return open(page.CallbackURL) }, http.StatusConflict, "already used"},
		{"superseded authorize URL", func(t *testing.T) (int, string) {
			c := create(keyA, nil)
			st, body := env.Call(t, http.MethodPost, keyA, "/v1/connections/"+c.ID+"/authorize", nil)
			require.Equal(t, http.StatusOK, st, body)
			return open(atJira(t, c.OAuth2AuthorizeURL, victimSite))
		}, http.StatusConflict, "already used"},
		{"forged state", func(*testing.T) (int, string) {
			return open(withState(page.CallbackURL, "b3JnLWE.Y29ubg.bm9uY2U.9999999999.c2ln"))
		}, http.StatusBadRequest, "not valid"},
		{"state with its organization swapped", func(t *testing.T) (int, string) {
			c := create(keyB, nil)
			cb := atJira(t, c.OAuth2AuthorizeURL, victimSite)
			u, _ := url.Parse(cb)
			s := u.Query().Get("state")
			return open(withState(cb, "b3JnLWE"+s[strings.IndexByte(s, '.'):])) // base64url("org-a")
		}, http.StatusBadRequest, "not valid"},
		{"callback without a state", func(*testing.T) (int, string) { return open(env.URL + "/oauth/callback?code=x") }, http.StatusBadRequest, "Incomplete authorization"},
		{"free text in the error parameter", func(*testing.T) (int, string) {
			return open(env.URL + "/oauth/callback?error=" + url.QueryEscape("Call support at +1 555 0100"))
		}, http.StatusBadRequest, "unknown error"},
		{"confirmation without a token", confirmWith(url.Values{"decision": {"confirm"}}, page.Cookie, ""), http.StatusBadRequest, "not valid"},
		{"confirmation with a forged token", confirmWith(url.Values{"consent_token": {page.Token[:len(page.Token)-3] + "xyz"}, "decision": {"confirm"}}, page.Cookie, ""), http.StatusBadRequest, "not valid"},
		{"confirmation with the OAuth state as token", confirmWith(url.Values{"consent_token": {state}, "decision": {"confirm"}}, page.Cookie, ""), http.StatusBadRequest, "not valid"},
		{"confirmation without the cookie", confirmWith(good, nil, ""), http.StatusForbidden, "browser that authorized"},
		{"confirmation with another browser's cookie", confirmWith(good, otherBrowser.Cookie, ""), http.StatusForbidden, "browser that authorized"},
		{"confirmation posted from another site", confirmWith(good, page.Cookie, "https://attacker.example"), http.StatusForbidden, "browser that authorized"},
		{"confirmation as JSON", func(t *testing.T) (int, string) {
			req, err := http.NewRequest(http.MethodPost, env.URL+"/oauth/confirm", strings.NewReader(`{"consent_token":"`+page.Token+`","decision":"confirm"}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: page.Cookie.Name, Value: page.Cookie.Value})
			return doRequest(t, req)
		}, http.StatusBadRequest, "Unreadable confirmation"},
		{"oversized confirmation", confirmWith(url.Values{"consent_token": {page.Token}, "decision": {"confirm"}, "pad": {strings.Repeat("x", 32<<10)}}, page.Cookie, ""), http.StatusBadRequest, "Unreadable confirmation"},
		{"confirmation with an unknown decision", confirmWith(url.Values{"consent_token": {page.Token}, "decision": {"yes"}}, page.Cookie, ""), http.StatusBadRequest, "decision"},
		{"confirmation by GET", func(t *testing.T) (int, string) {
			req, err := http.NewRequest(http.MethodGet, env.URL+"/oauth/confirm?consent_token="+url.QueryEscape(page.Token)+"&decision=confirm", nil)
			require.NoError(t, err)
			return doRequest(t, req)
		}, http.StatusMethodNotAllowed, ""},
		{"expired state", func(t *testing.T) (int, string) {
			c := create(keyA, nil)
			clock.Advance(16 * time.Minute) // states live 15 minutes
			return open(atJira(t, c.OAuth2AuthorizeURL, victimSite))
		}, http.StatusBadRequest, "expired"},
		{"confirmation after the consent expired", confirmWith(url.Values{"consent_token": {otherBrowser.Token}, "decision": {"confirm"}}, otherBrowser.Cookie, ""), http.StatusBadRequest, "expired"},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			status, body := p.do(t)
			require.Equal(t, p.status, status, body)
			require.Contains(t, body, p.contains)
		})
	}

	// Nothing the probes touched is connected.
	for _, kc := range probed {
		key, id, _ := strings.Cut(kc, " ")
		var v connections.View
		require.Equal(t, http.StatusOK, env.GetJSON(t, key, "/v1/connections/"+id, &v))
		require.Equal(t, store.StatePending, v.State, "%s after the probes", id)
		_, err := env.Connections().Token(context.Background(), id, "")
		require.ErrorIs(t, err, connections.ErrNotActive)
	}
	for _, s := range sim.Sites() {
		require.Empty(t, sim.Site(s.ID).Webhooks(), "no webhook registered on %s", s.URL)
	}

	// The genuine page's consent expired with the clock; the genuine flow
	// still works end to end, once.
	st, body := page.Submit(t, "confirm")
	require.Equal(t, http.StatusBadRequest, st, body)
	st, body = env.Call(t, http.MethodPost, keyA, "/v1/connections/"+target.ID+"/authorize", nil)
	require.Equal(t, http.StatusOK, st, body)
	var fresh struct {
		URL string `json:"oauth2_authorize_url"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &fresh))
	again := apptest.OpenCallback(t, atJira(t, fresh.URL, victimSite))
	require.Equal(t, http.StatusOK, again.Status, again.Body)
	st, body = again.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	st, body = again.Submit(t, "confirm")
	require.Equal(t, http.StatusConflict, st, "reused confirmation: %s", body)
	var v connections.View
	require.Equal(t, http.StatusOK, env.GetJSON(t, keyA, "/v1/connections/"+target.ID, &v))
	require.Equal(t, store.StateActive, v.State)
	require.Equal(t, victimSite.URL, v.SiteURL)
	t.Logf("consent sweep: %d probes, none connected anything", len(probes)+1)
}

func doRequest(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
