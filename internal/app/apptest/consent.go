package apptest

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ConsentPage is what the administrator's browser got from the OAuth
// callback: the confirmation page, or an error page.
type ConsentPage struct {
	Status      int
	Header      http.Header
	Body        string
	CallbackURL string
	// Token is the confirmation form's token, empty on an error page.
	Token string
	// Cookie is the consent cookie the callback set, nil if none.
	Cookie *http.Cookie
}

var (
	noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	formToken  = regexp.MustCompile(`name="consent_token" value="([^"]*)"`)
)

// Consent plays the administrator's browser up to the confirmation page:
// open the authorize URL at the (simulated) Jira, which consents and
// redirects to the platform's callback, and open that.
func Consent(t testing.TB, authorizeURL string) *ConsentPage {
	t.Helper()
	resp, err := noRedirect.Get(authorizeURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "Jira's authorize endpoint redirects to the callback")
	return OpenCallback(t, resp.Header.Get("Location"))
}

// OpenCallback opens a callback URL (a replayed one, say) as a browser.
func OpenCallback(t testing.TB, callbackURL string) *ConsentPage {
	t.Helper()
	resp, err := noRedirect.Get(callbackURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := &ConsentPage{Status: resp.StatusCode, Header: resp.Header, Body: string(b), CallbackURL: callbackURL}
	if m := formToken.FindStringSubmatch(p.Body); m != nil {
		p.Token = m[1]
	}
	for _, c := range resp.Cookies() {
		if c.Name == "itsm_consent" {
			p.Cookie = c
		}
	}
	return p
}

// Submit posts the confirmation form with decision (confirm or decline)
// and the page's cookie, as the browser would.
func (p *ConsentPage) Submit(t testing.TB, decision string) (int, string) {
	t.Helper()
	return p.Post(t, url.Values{"consent_token": {p.Token}, "decision": {decision}}, p.Cookie)
}

// Post sends a confirmation form of the caller's making.
func (p *ConsentPage) Post(t testing.TB, form url.Values, cookie *http.Cookie) (int, string) {
	t.Helper()
	u, err := url.Parse(p.CallbackURL)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, u.Scheme+"://"+u.Host+"/oauth/confirm", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	return do(t, req)
}

// Connect completes a consent: confirmation page, then Confirm.
func Connect(t testing.TB, authorizeURL string) {
	t.Helper()
	p := Consent(t, authorizeURL)
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.NotEmpty(t, p.Token, "the confirmation page has a form token")
	st, body := p.Submit(t, "confirm")
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, "Jira connected")
}
