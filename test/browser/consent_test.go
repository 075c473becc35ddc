package browser_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

const apiKey = "key-browser-org-0123456789"

// chromiumPath finds the browser: ITSM_CHROMIUM, else Debian's chromium or
// another Chromium-family binary on PATH.
func chromiumPath() string {
	if p := os.Getenv("ITSM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needChromium skips the test, saying why, when no browser is installed.
func needChromium(t *testing.T) string {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("browser tier skipped: no Chromium binary found (apt-get install chromium, or set ITSM_CHROMIUM)")
	}
	return path
}

// browser starts a fresh headless Chromium (own profile, no background
// traffic) for one test. Start it after the platform: cleanups run in
// reverse, so the browser and its open connections go first and the
// platform's graceful shutdown does not wait for them.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// Start the browser now, so a broken installation fails here, clearly.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")), "starting %s", path)
	return bctx
}

func start(t *testing.T) (*apptest.Env, *jirasim.Server) {
	t.Helper()
	// Two sites and Atlassian's consent step, where the browser picks one.
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 11, Projects: 1, IssuesPerProject: 2,
		Sites: []jirasim.Site{{}, {}}, ConsentScreen: true})
	env := apptest.StartWith(t, func(c *config.Config) {
		c.APIKeys = map[string]string{apiKey: "acme-org"}
		c.JiraAuthURL, c.JiraAPIURL = sim.URL(), sim.URL()
		c.JiraClientID, c.JiraClientSecret = sim.ClientID(), sim.ClientSecret()
	})
	return env, sim
}

func create(t *testing.T, env *apptest.Env, options map[string]any) connections.View {
	t.Helper()
	body := map[string]any{"vendor": "JIRA"}
	if options != nil {
		body["options"] = options
	}
	return createWith(t, env, body)
}

// createWith creates a connection from a whole create request.
func createWith(t *testing.T, env *apptest.Env, body map[string]any) connections.View {
	t.Helper()
	st, resp := env.Call(t, http.MethodPost, apiKey, "/v1/connections", body)
	require.Equal(t, http.StatusCreated, st, resp)
	var v connections.View
	require.NoError(t, json.Unmarshal([]byte(resp), &v))
	return v
}

func connection(t *testing.T, env *apptest.Env, id string) connections.View {
	t.Helper()
	var v connections.View
	require.Equal(t, http.StatusOK, env.GetJSON(t, apiKey, "/v1/connections/"+id, &v))
	return v
}

// jiraConsent opens the authorize URL, and on the simulator's consent
// screen picks the site (its radio button's id) and clicks accept or deny;
// it returns the response the browser lands on (the platform's page).
func jiraConsent(t *testing.T, ctx context.Context, authorizeURL, siteRadio, button string) *network.Response {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(authorizeURL))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.Contains(t, eval[string](t, ctx, "document.querySelector('h1').textContent"), "is requesting access to your Atlassian account")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID(siteRadio))))
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID(button)))
	require.NoError(t, err)
	return resp
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	require.NoError(t, err, "#%s", id)
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

// The administrator's whole journey in a real browser: the authorize URL,
// Jira's consent (the simulator's), the platform's confirmation page naming
// the organization and the site, Confirm, the success page, and the
// connection ACTIVE through the API.
func TestBrowserConsentConfirmFlow(t *testing.T) {
	chromium := needChromium(t)
	env, sim := start(t)
	ctx := browser(t, chromium)
	site := sim.Sites()[1]
	created := create(t, env, map[string]any{"site_url": site.URL})

	resp := jiraConsent(t, ctx, created.OAuth2AuthorizeURL, "site-1", "accept")
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.True(t, strings.HasPrefix(resp.URL, env.URL+"/oauth/callback?"), "landed on the callback: %s", resp.URL)
	callback := resp.URL
	require.Contains(t, resp.Headers["Content-Security-Policy"], "frame-ancestors 'none'")
	require.Equal(t, "DENY", resp.Headers["X-Frame-Options"])
	require.Equal(t, "no-store", resp.Headers["Cache-Control"])

	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("confirm"))))
	require.Equal(t, "Confirm the Jira connection · ITSM platform", eval[string](t, ctx, "document.title"))
	require.Equal(t, "en", eval[string](t, ctx, "document.documentElement.lang"))
	require.Equal(t, "Confirm the Jira connection", eval[string](t, ctx, "document.querySelector('h1').textContent"))
	require.Equal(t, "acme-org", text(t, ctx, "organization"))
	require.Equal(t, site.Name+" ("+site.URL+")", text(t, ctx, "site"))
	require.Equal(t, created.ID, text(t, ctx, "connection"))
	require.Contains(t, eval[string](t, ctx, "document.querySelector('legend').textContent"), "to organization acme-org")
	require.Equal(t, "Confirm and connect", text(t, ctx, "confirm"))
	require.Equal(t, "Decline", text(t, ctx, "decline"))
	require.Zero(t, eval[int](t, ctx, "document.scripts.length"), "no script")
	// The page's one inline style passed the CSP (a wrong hash would block it).
	require.Equal(t, "640px", eval[string](t, ctx, "getComputedStyle(document.body).maxWidth"))

	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{env.URL + "/oauth/confirm"}})
	require.NoError(t, err)
	require.Len(t, cookies.Cookies, 1)
	ck := cookies.Cookies[0]
	require.Equal(t, "itsm_consent", ck.Name)
	require.True(t, ck.HTTPOnly)
	require.Equal(t, network.CookieSameSiteStrict, ck.SameSite)
	require.Equal(t, "/oauth/confirm", ck.Path)

	require.Equal(t, store.StatePending, connection(t, env, created.ID).State, "nothing is active before Confirm")

	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("confirm")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.Equal(t, env.URL+"/oauth/confirm", resp.URL)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("state"))))
	require.Equal(t, "Jira connected · ITSM platform", eval[string](t, ctx, "document.title"))
	require.Equal(t, "ACTIVE", text(t, ctx, "state"))
	cookies, err = chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{env.URL + "/oauth/confirm"}})
	require.NoError(t, err)
	require.Empty(t, cookies.Cookies, "the spent consent's cookie is cleared")
	require.Equal(t, "acme-org", text(t, ctx, "organization"))
	require.Equal(t, site.URL, text(t, ctx, "site"))

	v := connection(t, env, created.ID)
	require.Equal(t, store.StateActive, v.State)
	require.Equal(t, site.URL, v.SiteURL)
	require.Equal(t, store.HealthHealthy, v.Health.Status)
	require.Len(t, v.Webhooks, 1)
	require.Len(t, sim.Site(site.ID).Webhooks(), 1, "registered on the chosen site")

	// Opening the confirmation page's address again shows an error page,
	// not a form: the state was spent.
	resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(callback))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusConflict, resp.Status)
	require.Equal(t, "This authorization link was already used", eval[string](t, ctx, "document.querySelector('h1').textContent"))
	require.Zero(t, eval[int](t, ctx, "document.forms.length"))
}

// The error flows in a real browser: a site other than the declared one
// leaves the connection PENDING with the reason on the page and in the API;
// a replayed callback and a declined consent show their own pages.
func TestBrowserConsentErrorFlows(t *testing.T) {
	chromium := needChromium(t)
	env, sim := start(t)
	ctx := browser(t, chromium)
	declared := sim.Sites()[0].URL
	created := create(t, env, map[string]any{"site_url": declared})

	// At Jira the administrator picks the other site.
	resp := jiraConsent(t, ctx, created.OAuth2AuthorizeURL, "site-1", "accept")
	require.EqualValues(t, http.StatusConflict, resp.Status)
	callback := resp.URL
	require.Equal(t, "Wrong Jira site · ITSM platform", eval[string](t, ctx, "document.title"))
	lead := text(t, ctx, "lead")
	require.Contains(t, lead, sim.Sites()[1].URL)
	require.Contains(t, lead, "stays PENDING")
	require.NotContains(t, eval[string](t, ctx, "document.body.textContent"), declared)
	require.Zero(t, eval[int](t, ctx, "document.forms.length"), "nothing to confirm")

	v := connection(t, env, created.ID)
	require.Equal(t, store.StatePending, v.State)
	require.Equal(t, store.HealthFailed, v.Health.Status)
	require.Contains(t, v.Health.Description, declared)
	require.Nil(t, v.PendingConsent)

	// The same callback again: the state was spent.
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(callback))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusConflict, resp.Status)
	require.Equal(t, "This authorization link was already used", eval[string](t, ctx, "document.querySelector('h1').textContent"))

	// Denying at Jira.
	denied := create(t, env, nil)
	resp = jiraConsent(t, ctx, denied.OAuth2AuthorizeURL, "site-0", "deny")
	require.EqualValues(t, http.StatusBadRequest, resp.Status)
	require.Equal(t, "Jira access was not granted", eval[string](t, ctx, "document.querySelector('h1').textContent"))
	require.Contains(t, text(t, ctx, "lead"), "access_denied")
	require.Equal(t, store.StatePending, connection(t, env, denied.ID).State)

	// Declining on the confirmation page.
	other := create(t, env, nil)
	resp = jiraConsent(t, ctx, other.OAuth2AuthorizeURL, "site-0", "accept")
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("decline"))))
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("decline")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.Equal(t, "Connection declined", eval[string](t, ctx, "document.querySelector('h1').textContent"))
	v = connection(t, env, other.ID)
	require.Equal(t, store.StatePending, v.State)
	require.Nil(t, v.PendingConsent)
	for _, s := range sim.Sites() {
		require.Empty(t, sim.Site(s.ID).Webhooks())
	}
}

// The pages refuse to be framed (clickjacking the Confirm button): a page
// of another origin that frames one gets Chromium's error document, while
// the simulator's consent page, which sets no such header, loads framed.
func TestBrowserConsentPagesRefuseFraming(t *testing.T) {
	chromium := needChromium(t)
	env, _ := start(t)
	ctx := browser(t, chromium)
	created := create(t, env, nil)

	// The other site: a page of another origin that frames its ?src=.
	framer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>framer</title><iframe src="%s"></iframe>`, html.EscapeString(r.URL.Query().Get("src")))
	}))
	t.Cleanup(framer.Close)
	// framed loads src in an iframe of the other site's page and returns
	// what the frame committed: its URL, and the URL that could not be
	// shown when Chromium refused it.
	framed := func(src string) (committed, unreachable string) {
		t.Helper()
		tab, closeTab := chromedp.NewContext(ctx)
		defer closeTab()
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(framer.URL+"/?src="+url.QueryEscape(src))))
		deadline := time.Now().Add(15 * time.Second)
		for {
			require.True(t, time.Now().Before(deadline), "the frame of %s never committed", src)
			tree, err := chromedp.Call(tab, page.GetFrameTree, cdp.Empty{})
			require.NoError(t, err)
			if kids := tree.FrameTree.ChildFrames; len(kids) == 1 {
				if f := kids[0].Frame; f.URL != "" && f.URL != "about:blank" {
					return f.URL, f.UnreachableURL
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	committed, unreachable := framed(env.URL + "/oauth/callback?error=access_denied")
	require.True(t, strings.HasPrefix(committed, "chrome-error://"), "the platform's page was shown in a frame: %s", committed)
	require.Equal(t, env.URL+"/oauth/callback?error=access_denied", unreachable)
	committed, unreachable = framed(created.OAuth2AuthorizeURL)
	require.Equal(t, created.OAuth2AuthorizeURL, committed, "the control page loads framed")
	require.Empty(t, unreachable)
}

// A ServiceNow connection's consent in a real browser: the instance's
// /oauth_auth.do (the simulator's, which signs in and consents, or refuses
// with snsim_consent=deny) sends the browser back to pages that name
// ServiceNow, never Jira.
func TestBrowserServiceNowConsentPages(t *testing.T) {
	chromium := needChromium(t)
	sim := snsim.NewTestServer(t, snsim.Options{Seed: 11, Instances: []snsim.Instance{{LinksFromRequest: true,
		Sizes: snsim.Sizes{Incidents: 3, Users: 2, Groups: 1}}}})
	env := apptest.StartWith(t, func(c *config.Config) { c.APIKeys = map[string]string{apiKey: "acme-org"} })
	ctx := browser(t, chromium)
	created := createWith(t, env, map[string]any{"vendor": "SERVICENOW", "options": map[string]any{"instance_url": sim.BaseURL(""),
		"auth": map[string]any{"type": "oauth", "client_id": "snsim-client", "client_secret": "snsim-secret"}}})
	namesServiceNow := func() {
		t.Helper()
		body := eval[string](t, ctx, "document.body.textContent")
		require.Contains(t, body, "ServiceNow")
		require.NotContains(t, body, "Jira")
	}

	// Refused at the instance.
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(created.OAuth2AuthorizeURL+"&snsim_consent=deny"))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusBadRequest, resp.Status)
	require.Equal(t, "ServiceNow access was not granted · ITSM platform", eval[string](t, ctx, "document.title"))
	require.Contains(t, text(t, ctx, "next"), "ServiceNow's consent screen")
	namesServiceNow()

	// Granted, then declined on the confirmation page.
	resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(created.OAuth2AuthorizeURL))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("decline"))))
	require.Equal(t, "Confirm the ServiceNow connection", eval[string](t, ctx, "document.querySelector('h1').textContent"))
	require.Contains(t, text(t, ctx, "site"), sim.BaseURL(""))
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("decline")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.Equal(t, "Connection declined", eval[string](t, ctx, "document.querySelector('h1').textContent"))
	require.Contains(t, text(t, ctx, "lead"), "the access ServiceNow granted was discarded")
	namesServiceNow()
	require.Equal(t, store.StatePending, connection(t, env, created.ID).State)
}
