package jirasim

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// OAuth 2.0 (3LO) as auth.atlassian.com / api.atlassian.com behave per
// JIRA.md §1: authorization codes, rotating refresh tokens with a grace
// period, 1-hour access tokens, accessible-resources.

type grant struct {
	scope   string
	scopes  map[string]bool
	sites   []bool // by tenant index
	user    string // consenting account (jirasim_user); "" = each site's admin
	created time.Time
}

type authCode struct {
	grant       *grant
	redirectURI string
	expires     time.Time
	used        bool
}

type refreshToken struct {
	grant     *grant
	issued    time.Time
	rotatedAt time.Time // zero while current
	access    *accessToken
}

type accessToken struct {
	grant    *grant
	expires  time.Time
	revokeAt time.Time // zero = not scheduled
}

type authServer struct {
	s       *Sim
	mu      sync.Mutex
	codes   map[string]*authCode
	refresh map[string]*refreshToken
	access  map[string]*accessToken
}

func newAuthServer(s *Sim) *authServer {
	return &authServer{s: s, codes: map[string]*authCode{}, refresh: map[string]*refreshToken{}, access: map[string]*accessToken{}}
}

func randomToken(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func redirectWith(w http.ResponseWriter, r *http.Request, target *url.URL, params url.Values) {
	q := target.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// handleAuthorize consents immediately (no UI) unless consent is denied by
// Options.DenyConsent, SetDenyConsent or ?jirasim_consent=deny. The optional
// ?jirasim_user=<accountId> consents as that user instead of the site admin.
// With Options.ConsentScreen it shows a consent page instead, where a
// browser picks the site and accepts or denies (POST /authorize).
func (a *authServer) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req, ok := a.authorizeRequest(w, r, q)
	if !ok {
		return
	}
	a.s.mu.Lock()
	deny := a.s.denyConsent
	a.s.mu.Unlock()
	if deny || q.Get("jirasim_consent") == "deny" {
		req.fail("access_denied", "User did not authorize the request")
		return
	}
	if a.s.opts.ConsentScreen {
		a.consentScreen(w, q)
		return
	}
	a.grant(w, r, req, nil)
}

// handleConsent is the consent screen's answer: the site chosen and
// accept or deny.
func (a *authServer) handleConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "unreadable form", http.StatusBadRequest)
		return
	}
	req, ok := a.authorizeRequest(w, r, r.PostForm)
	if !ok {
		return
	}
	if r.PostForm.Get("decision") != "accept" {
		req.fail("access_denied", "User did not authorize the request")
		return
	}
	site := -1
	for i, t := range a.s.tenants {
		if t.info.ID == r.PostForm.Get("site") {
			site = i
		}
	}
	if site < 0 {
		http.Error(w, "choose a site", http.StatusBadRequest)
		return
	}
	a.grant(w, r, req, &site)
}

type authorizeReq struct {
	q      url.Values
	target *url.URL
	scope  string
	fail   func(code, desc string)
}

// authorizeRequest validates the authorize parameters; on failure it has
// answered (an error page for a bad client or redirect URI, a redirect
// with the error otherwise).
func (a *authServer) authorizeRequest(w http.ResponseWriter, r *http.Request, q url.Values) (authorizeReq, bool) {
	if q.Get("client_id") != a.s.opts.ClientID {
		// Atlassian shows an error page rather than redirecting for an
		// unknown client.
		http.Error(w, "invalid client_id", http.StatusBadRequest)
		return authorizeReq{}, false
	}
	target, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !target.IsAbs() {
		http.Error(w, "invalid redirect_uri", http.StatusBadRequest)
		return authorizeReq{}, false
	}
	state := q.Get("state")
	req := authorizeReq{q: q, target: target, fail: func(code, desc string) {
		redirectWith(w, r, target, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
	}}
	if q.Get("response_type") != "code" {
		req.fail("unsupported_response_type", "response_type must be code")
		return req, false
	}
	if aud := q.Get("audience"); aud != "" && aud != "api.atlassian.com" {
		req.fail("invalid_request", "unknown audience")
		return req, false
	}
	req.scope = strings.Join(strings.Fields(q.Get("scope")), " ")
	if req.scope == "" {
		req.fail("invalid_scope", "scope is required")
		return req, false
	}
	return req, true
}

// grant issues a code for every site, or only for *site.
func (a *authServer) grant(w http.ResponseWriter, r *http.Request, req authorizeReq, site *int) {
	g := &grant{scope: req.scope, scopes: map[string]bool{}, sites: make([]bool, len(a.s.tenants)), user: req.q.Get("jirasim_user")}
	for _, sc := range strings.Fields(req.scope) {
		g.scopes[sc] = true
	}
	for i := range g.sites {
		g.sites[i] = site == nil || *site == i
	}
	code := randomToken("")
	a.mu.Lock()
	a.codes[code] = &authCode{grant: g, redirectURI: req.q.Get("redirect_uri"), expires: a.s.Now().Add(a.s.opts.AuthCodeTTL)}
	a.mu.Unlock()
	redirectWith(w, r, req.target, url.Values{"code": {code}, "state": {req.q.Get("state")}})
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorize access · jirasim</title></head>
<body>
<main>
<h1>{{.Client}} is requesting access to your Atlassian account</h1>
<form method="post" action="/authorize">
{{- range .Hidden}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<fieldset>
<legend>Use app on</legend>
{{- range $i, $s := .Sites}}
<p><label><input type="radio" name="site" id="site-{{$i}}" value="{{$s.ID}}"{{if eq $i 0}} checked{{end}}> {{$s.Name}} ({{$s.URL}})</label></p>
{{- end}}
</fieldset>
<p>Scopes: {{.Scope}}</p>
<button type="submit" id="accept" name="decision" value="accept">Accept</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form>
</main>
</body>
</html>
`))

// consentScreen renders Atlassian's consent step: the sites to choose
// from and Accept or Deny; the form carries the authorize parameters.
func (a *authServer) consentScreen(w http.ResponseWriter, q url.Values) {
	type field struct{ Name, Value string }
	data := struct {
		Client, Scope string
		Hidden        []field
		Sites         []Site
	}{Client: q.Get("client_id"), Scope: q.Get("scope")}
	for _, k := range []string{"audience", "client_id", "scope", "redirect_uri", "state", "response_type", "prompt", "jirasim_user"} {
		if v := q.Get(k); v != "" {
			data.Hidden = append(data.Hidden, field{k, v})
		}
	}
	for _, t := range a.s.tenants {
		data.Sites = append(data.Sites, t.info)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := consentPage.Execute(w, data); err != nil {
		http.Error(w, "render consent page", http.StatusInternalServerError)
	}
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, obj{"error": code, "error_description": desc})
}

// tokenParams reads the token request: JSON (what Atlassian documents) or a
// form (what golang.org/x/oauth2 sends), client credentials in the body or
// in HTTP Basic auth.
func tokenParams(r *http.Request) (map[string]string, error) {
	p := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return nil, err
		}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				p[k] = s
			}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k := range r.PostForm {
			p[k] = r.PostForm.Get(k)
		}
	}
	if id, secret, ok := r.BasicAuth(); ok && p["client_id"] == "" {
		p["client_id"], _ = url.QueryUnescape(id)
		p["client_secret"], _ = url.QueryUnescape(secret)
	}
	return p, nil
}

func (a *authServer) handleToken(w http.ResponseWriter, r *http.Request) {
	p, err := tokenParams(r)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed request body")
		return
	}
	if p["client_id"] != a.s.opts.ClientID || p["client_secret"] != a.s.opts.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	now := a.s.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch p["grant_type"] {
	case "authorization_code":
		c := a.codes[p["code"]]
		if c == nil || c.used || !now.Before(c.expires) {
			oauthError(w, http.StatusForbidden, "invalid_grant", "Invalid authorization code")
			return
		}
		if p["redirect_uri"] != c.redirectURI {
			oauthError(w, http.StatusForbidden, "invalid_grant", "redirect_uri does not match the authorization request")
			return
		}
		c.used = true
		c.grant.created = now
		a.issue(w, c.grant, now)
	case "refresh_token":
		rt := a.refresh[p["refresh_token"]]
		if rt == nil || !a.refreshUsable(rt, now) {
			oauthError(w, http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")
			return
		}
		if rt.rotatedAt.IsZero() {
			// Rotation: the sent token and its access token live on for the
			// grace period only (JIRA.md §1 "Leeway").
			rt.rotatedAt = now
			if rt.access != nil {
				rt.access.revokeAt = now.Add(a.s.opts.RefreshGrace)
			}
		}
		a.issue(w, rt.grant, now)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (a *authServer) refreshUsable(rt *refreshToken, now time.Time) bool {
	o := &a.s.opts
	if !rt.rotatedAt.IsZero() && !now.Before(rt.rotatedAt.Add(o.RefreshGrace)) {
		return false
	}
	if !now.Before(rt.issued.Add(o.RefreshInactivity)) {
		return false
	}
	return now.Before(rt.grant.created.Add(o.GrantLifetime))
}

// issue mints an access token and, with offline_access, a refresh token.
// Caller holds a.mu.
func (a *authServer) issue(w http.ResponseWriter, g *grant, now time.Time) {
	at := &accessToken{grant: g, expires: now.Add(a.s.opts.AccessTokenTTL)}
	atS := randomToken("simat_")
	a.access[atS] = at
	resp := obj{"access_token": atS, "expires_in": int(a.s.opts.AccessTokenTTL / time.Second), "scope": g.scope, "token_type": "Bearer"}
	if g.scopes["offline_access"] {
		rtS := randomToken("simrt_")
		a.refresh[rtS] = &refreshToken{grant: g, issued: now, access: at}
		resp["refresh_token"] = rtS
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// validate checks the Bearer token of a request against the sim clock.
func (a *authServer) validate(r *http.Request) (*accessToken, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return nil, false
	}
	now := a.s.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	at := a.access[strings.TrimSpace(h[7:])]
	if at == nil || !now.Before(at.expires) || !at.revokeAt.IsZero() && !now.Before(at.revokeAt) {
		return nil, false
	}
	return at, true
}

func (a *authServer) handleResources(w http.ResponseWriter, r *http.Request) {
	at, ok := a.validate(r)
	if !ok {
		gatewayError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	var scopes []string
	for sc := range at.grant.scopes {
		if sc != "offline_access" {
			scopes = append(scopes, sc)
		}
	}
	slices.Sort(scopes)
	out := []any{}
	for i, t := range a.s.tenants {
		if at.grant.sites[i] {
			out = append(out, obj{
				"id": t.info.ID, "name": t.info.Name, "url": t.info.URL, "scopes": scopes,
				"avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// userFor returns the account a token acts as on a site.
func (t *Tenant) userFor(g *grant) *user {
	if g.user != "" {
		if i, ok := t.userByID[g.user]; ok {
			return t.users[i]
		}
	}
	return t.users[0]
}
