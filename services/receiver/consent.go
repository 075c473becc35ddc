package receiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
)

// The consent pages are what a customer's administrator sees in a browser
// between the vendor's consent screen and an ACTIVE connection: a
// confirmation naming the organization and the granted site, then a success
// or an error page. They are plain HTML with no script and no external
// asset, served under a CSP that allows nothing but their own inline style
// and form posts to this origin.

// ConsentService completes OAuth consent in two steps.
type ConsentService interface {
	Callback(ctx context.Context, code, state string) (*connections.Consent, error)
	Confirm(ctx context.Context, formToken, browserKey string, accept bool) (*store.Connection, error)
	// PublicURL is where browsers reach the receiver.
	PublicURL() string
	// Title names a connection's vendor ("Jira").
	Title(c *store.Connection) string
	// StateVendor names the vendor of a live state's connection without
	// spending the state; "" for any other state.
	StateVendor(ctx context.Context, state string) string
}

// consentCookie carries the browser key: HttpOnly, SameSite=Strict, scoped
// to the confirm path. A cross-site form post never carries it, and a
// confirmation page's token alone (copied, logged, or posted from another
// browser) cannot confirm.
const consentCookie = "itsm_consent"

//go:embed pages/page.html
var pageFiles embed.FS

const pageStyle = `body{font-family:system-ui,sans-serif;line-height:1.5;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}` +
	`dt{font-weight:bold}dd{margin:0 0 .5rem 0;overflow-wrap:anywhere}fieldset{border:1px solid #767676;padding:1rem}` +
	`button{font:inherit;padding:.4rem 1rem;margin-right:.5rem}`

var (
	pageTemplate = template.Must(template.ParseFS(pageFiles, "pages/page.html"))
	pageCSP      = func() string {
		sum := sha256.Sum256([]byte(pageStyle))
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	}()
)

var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

type page struct {
	Status int
	Title  string
	Lead   string
	Facts  []fact
	Form   *confirmForm
	Next   string
	Style  template.CSS
}

type fact struct{ ID, Term, Value string }

type confirmForm struct{ Action, Token, OrganizationID, SiteURL string }

// mountConsent adds the OAuth callback and the confirmation.
func (s *Server) mountConsent(svc ConsentService) {
	origin, confirmPath, secure := publicEndpoints(svc.PublicURL())
	s.echo.GET("/oauth/callback", func(c echo.Context) error {
		if e := c.QueryParam("error"); e != "" {
			// Only an OAuth error code is echoed: free text in a link must
			// not become a message on our page.
			if !oauthErrorCode.MatchString(e) {
				e = "unknown error"
			}
			vendor := stateVendor(c, svc)
			title := "Access was not granted"
			if vendor != "" {
				title = vendor + " access was not granted"
			}
			name := named(vendor)
			return s.renderPage(c, page{Status: http.StatusBadRequest, Title: title,
				Lead: capitalize(name + " reports that access was not granted (" + e + "). Nothing was connected."),
				Next: "To connect the site, ask for a new authorization link (POST /v1/connections/{id}/authorize) and accept on " + name + "'s consent screen."})
		}
		code, state := c.QueryParam("code"), c.QueryParam("state")
		if code == "" || state == "" {
			return s.renderPage(c, page{Status: http.StatusBadRequest, Title: "Incomplete authorization",
				Lead: "This address lacks the code or the state " + named(stateVendor(c, svc)) + " sends back. Nothing was connected.",
				Next: "Start again from a new authorization link."})
		}
		consent, err := svc.Callback(c.Request().Context(), code, state)
		if err != nil {
			return s.consentError(c, err)
		}
		http.SetCookie(c.Response(), &http.Cookie{Name: consentCookie, Value: consent.BrowserKey, Path: confirmPath,
			Expires: consent.ExpiresAt, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		site := consent.SiteURL
		if consent.SiteName != "" {
			site = consent.SiteName + " (" + consent.SiteURL + ")"
		}
		vendor := consent.Vendor
		return s.renderPage(c, page{Status: http.StatusOK, Title: "Confirm the " + vendor + " connection",
			Lead: vendor + " granted access to the site below. The connection is not active until you confirm here.",
			Facts: []fact{{"organization", "Organization", consent.OrganizationID}, {"site", vendor + " site", site},
				{"connection", "Connection", consent.ConnectionID},
				{"expires", "Confirm before", consent.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC")}},
			Form: &confirmForm{Action: confirmPath, Token: consent.FormToken, OrganizationID: consent.OrganizationID, SiteURL: consent.SiteURL}})
	})
	s.echo.POST("/oauth/confirm", func(c echo.Context) error {
		r := c.Request()
		if o := r.Header.Get("Origin"); o != "" && o != origin {
			return s.consentError(c, connections.ErrConsentBrowser)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, 16<<10)
		ct := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0])
		if ct != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
			return s.renderPage(c, page{Status: http.StatusBadRequest, Title: "Unreadable confirmation",
				Lead: "The confirmation must be the consent page's form (application/x-www-form-urlencoded, at most 16 KiB). Nothing was changed."})
		}
		decision := r.PostForm.Get("decision")
		if decision != "confirm" && decision != "decline" {
			return s.renderPage(c, page{Status: http.StatusBadRequest, Title: "Unreadable confirmation",
				Lead: "decision: want confirm or decline. Nothing was changed."})
		}
		var key string
		if ck, err := r.Cookie(consentCookie); err == nil {
			key = ck.Value
		}
		conn, err := svc.Confirm(r.Context(), r.PostForm.Get("consent_token"), key, decision == "confirm")
		var mismatch *connections.SiteMismatchError
		if err == nil || errors.Is(err, connections.ErrConsentUsed) || errors.Is(err, connections.ErrConsentExpired) || errors.As(err, &mismatch) {
			// The consent is spent, so is the cookie. Not before: a forged
			// post from another site must not be able to clear it.
			http.SetCookie(c.Response(), &http.Cookie{Name: consentCookie, Value: "", Path: confirmPath, MaxAge: -1,
				HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		}
		if err != nil {
			return s.consentError(c, err)
		}
		facts := []fact{{"organization", "Organization", conn.OrganizationID}, {"connection", "Connection", conn.ID}}
		if decision == "decline" {
			return s.renderPage(c, page{Status: http.StatusOK, Title: "Connection declined", Facts: facts,
				Lead: "Nothing was connected, and the access " + svc.Title(conn) + " granted was discarded.",
				Next: "If this was a mistake, ask for a new authorization link (POST /v1/connections/" + conn.ID + "/authorize)."})
		}
		vendor := svc.Title(conn)
		facts = append(facts, fact{"site", vendor + " site", conn.SiteURL}, fact{"state", "State", string(conn.State)})
		if conn.State == store.StatePending {
			// The vendor's connection test failed after the grant.
			return s.renderPage(c, page{Status: http.StatusConflict, Title: vendor + " connection test failed", Facts: facts,
				Lead: "Access was granted, but " + conn.Detail.Health.Description + ". The connection stays PENDING.",
				Next: "Fix the account's access, then ask for a new authorization link (POST /v1/connections/" + conn.ID + "/authorize)."})
		}
		lead := "The " + vendor + " site is connected to the organization. "
		if len(conn.Detail.Webhooks) > 0 {
			lead += "Its webhook is registered and the first full sync has been requested."
		} else {
			lead += "The first full sync has been requested."
		}
		return s.renderPage(c, page{Status: http.StatusOK, Title: vendor + " connected", Facts: facts,
			Lead: lead,
			Next: "You can close this page. The connection's health and sync progress are in GET /v1/connections/" + conn.ID + "."})
	})
}

// named names the vendor on a page: its title, or "the service" when the
// platform cannot know which vendor the request concerns.
func named(title string) string {
	if title == "" {
		return "the service"
	}
	return title
}

// capitalize starts a sentence that begins with the vendor's name.
func capitalize(sentence string) string {
	return strings.ToUpper(sentence[:1]) + sentence[1:]
}

// stateVendor is the title of the vendor of the callback's state, if it is
// live; "" otherwise.
func stateVendor(c echo.Context, svc ConsentService) string {
	if state := c.QueryParam("state"); state != "" {
		return svc.StateVendor(c.Request().Context(), state)
	}
	return ""
}

// errorVendor is the title of the vendor a refused consent step concerns;
// "" when unknown.
func errorVendor(err error) string {
	var ve *connections.VendorError
	if errors.As(err, &ve) {
		return ve.Vendor
	}
	var mismatch *connections.SiteMismatchError
	if errors.As(err, &mismatch) {
		return mismatch.Vendor
	}
	return ""
}

// publicEndpoints derives from the public URL the Origin a browser sends
// (no default port), the confirm path (behind a proxy that mounts the
// service under a path, the form and the cookie follow it) and whether
// the cookie must be Secure.
func publicEndpoints(publicURL string) (origin, confirmPath string, secure bool) {
	u, err := url.Parse(publicURL)
	if err != nil {
		u = &url.URL{}
	}
	secure = u.Scheme == "https"
	host := u.Host
	if p := u.Port(); (secure && p == "443") || (u.Scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host, strings.TrimRight(u.Path, "/") + "/oauth/confirm", secure
}

// consentError renders the error page of a refused consent step: a title
// and an explanation a person can act on, and never an internal detail.
func (s *Server) consentError(c echo.Context, err error) error {
	restart := "Ask for a new authorization link (POST /v1/connections/{id}/authorize with an API key of the organization) and open it in this browser."
	p := page{Status: http.StatusBadRequest, Next: restart}
	name := named(errorVendor(err))
	var mismatch *connections.SiteMismatchError
	switch {
	case errors.As(err, &mismatch):
		// The declared site is not shown: whoever holds the link need not
		// learn it. The API's health names both.
		p.Status, p.Title = http.StatusConflict, "Wrong "+name+" site"
		p.Lead = capitalize(name+" granted access to "+strings.Join(mismatch.Consented, ", ")+", which is not the site this connection is for. ") +
			"Nothing was connected, and the access " + name + " granted was discarded; the connection stays PENDING."
		p.Next = "Authorize again and choose the connection's site on " + name + "'s consent screen. The connection's health (GET /v1/connections/{id}) names the site it expects."
	case errors.Is(err, connections.ErrStateExpired):
		p.Title, p.Lead = "This authorization link has expired", "Authorization links work for a limited time. Nothing was connected."
	case errors.Is(err, connections.ErrStateUsed):
		p.Status, p.Title = http.StatusConflict, "This authorization link was already used"
		p.Lead = "Each authorization link works once, and a newer link replaces older ones. Nothing was changed."
	case errors.Is(err, connections.ErrBadState):
		p.Title, p.Lead = "This authorization link is not valid", "The link is damaged or not one this platform issued. Nothing was connected."
	case errors.Is(err, connections.ErrConsentMissing), errors.Is(err, connections.ErrConsentForged):
		p.Title, p.Lead = "This confirmation is not valid", "The confirmation form is missing its token or the token is not one this platform issued. Nothing was changed."
	case errors.Is(err, connections.ErrConsentExpired):
		p.Title, p.Lead = "This confirmation has expired", "The access "+name+" granted was discarded because nobody confirmed it in time. Nothing was connected."
	case errors.Is(err, connections.ErrConsentUsed):
		p.Status, p.Title = http.StatusConflict, "This confirmation was already used"
		p.Lead = "The connection was already confirmed or declined with this form, or a newer authorization replaced it. Nothing was changed."
		p.Next = "GET /v1/connections/{id} shows the connection's state."
	case errors.Is(err, connections.ErrConsentBrowser):
		p.Status, p.Title = http.StatusForbidden, "Confirm from the browser that authorized"
		p.Lead = "This confirmation does not come from the page and the browser that completed the authorization (its cookie is missing, or the form was posted from another site). Nothing was changed."
	default:
		s.log.Error("oauth consent failed", zap.String("path", c.Path()), zap.Error(err))
		p.Status, p.Title = http.StatusBadGateway, "The connection could not be completed"
		p.Lead = "Completing the authorization with " + name + " failed. Nothing was connected."
		p.Next = "Try again in a few minutes with a new authorization link. " + restart
	}
	return s.renderPage(c, p)
}

func (s *Server) renderPage(c echo.Context, p page) error {
	p.Style = template.CSS(pageStyle)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "same-origin")
	return c.HTMLBlob(p.Status, buf.Bytes())
}
