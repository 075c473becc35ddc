package snsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Authentication (SERVICENOW.md §5): basic auth with an account's user name
// and password, or a Bearer token from the OAuth 2.0 authorization code
// flow (/oauth_auth.do, /oauth_token.do). Access tokens live 30 minutes
// (expires_in 1799), refresh tokens 100 days; /oauth_revoke_token.do and
// Inst.RevokeTokens revoke them.

// principal is the signed-in user of a request.
type principal struct {
	userName string
	userID   string // sys_user sys_id
	roles    map[string]bool
	groups   map[string]bool // sys_user_group sys_ids
	tz       *time.Location
}

func (p *principal) has(role string) bool { return p.roles["admin"] || p.roles[role] }

type token struct {
	value    string
	user     string // user_name
	client   string
	expires  time.Time
	refresh  string // for an access token: the refresh token it came from
	redirect string // for a code
	revoked  bool
}

type oauthState struct {
	mu      sync.Mutex
	codes   map[string]*token
	access  map[string]*token
	refresh map[string]*token
}

func newOAuthState() *oauthState {
	return &oauthState{codes: map[string]*token{}, access: map[string]*token{}, refresh: map[string]*token{}}
}

// randomToken is 86 URL-safe characters, the length of a real instance's.
func randomToken() string {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:86]
}

func (in *Inst) account(userName string) *Account {
	for i := range in.cfg.Accounts {
		if in.cfg.Accounts[i].UserName == userName {
			return &in.cfg.Accounts[i]
		}
	}
	return nil
}

// principalOf loads a signed-in account's sys_user, roles and groups; nil
// when the account's sys_user is gone, inactive or locked out. Caller holds
// in.mu.
func (in *Inst) principalOf(a *Account) *principal {
	ut := in.d.tbl("sys_user")
	un := ut.sc.col("user_name")
	var u *record
	for _, r := range ut.rows {
		if r.get(un) == a.UserName {
			u = r
			break
		}
	}
	if u == nil || u.get(ut.sc.col("active")) != "true" || u.get(ut.sc.col("locked_out")) == "true" {
		return nil
	}
	p := &principal{userName: a.UserName, userID: u.id, roles: map[string]bool{}, groups: map[string]bool{}, tz: time.UTC}
	if tz := u.get(ut.sc.col("time_zone")); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			p.tz = loc
		}
	}
	hr, rt := in.d.tbl("sys_user_has_role"), in.d.tbl("sys_user_role")
	for _, r := range hr.rows {
		if r.get(hr.sc.col("user")) == u.id {
			if role := rt.byID[r.get(hr.sc.col("role"))]; role != nil {
				p.roles[role.get(rt.sc.col("name"))] = true
			}
		}
	}
	gm := in.d.tbl("sys_user_grmember")
	for _, r := range gm.rows {
		if r.get(gm.sc.col("user")) == u.id {
			p.groups[r.get(gm.sc.col("group"))] = true
		}
	}
	return p
}

// authenticate resolves Basic or Bearer credentials; nil = 401.
func (in *Inst) authenticate(r *http.Request) *principal {
	var a *Account
	if user, pass, ok := r.BasicAuth(); ok {
		a = in.account(user)
		if a == nil || a.Password == "" || subtle.ConstantTimeCompare([]byte(a.Password), []byte(pass)) != 1 {
			return nil
		}
	} else if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		now := in.sim.Now()
		in.oauth.mu.Lock()
		t := in.oauth.access[v]
		valid := t != nil && !t.revoked && now.Before(t.expires)
		if valid && t.refresh != "" {
			rt := in.oauth.refresh[t.refresh]
			valid = rt != nil && !rt.revoked
		}
		in.oauth.mu.Unlock()
		if !valid {
			return nil
		}
		a = in.account(t.user)
	}
	if a == nil {
		return nil
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.principalOf(a)
}

func notAuthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `BASIC realm="Service-now"`)
	snError(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
}

// oauthClient is a copy of the registered application id, or nil: its
// secret may be regenerated meanwhile (SetClientSecret).
func (in *Inst) oauthClient(id string) *OAuthClient {
	in.oauth.mu.Lock()
	defer in.oauth.mu.Unlock()
	for _, c := range in.cfg.OAuthClients {
		if c.ClientID == id {
			return &c
		}
	}
	return nil
}

// SetClientSecret regenerates an OAuth application's client secret, as an
// admin does on the instance's oauth_entity record: token requests with the
// old one fail from now on; tokens issued before stay valid.
func (in *Inst) SetClientSecret(clientID, secret string) error {
	in.oauth.mu.Lock()
	defer in.oauth.mu.Unlock()
	for i := range in.cfg.OAuthClients {
		if in.cfg.OAuthClients[i].ClientID == clientID {
			in.cfg.OAuthClients[i].ClientSecret = secret
			return nil
		}
	}
	return fmt.Errorf("snsim: no OAuth application %q", clientID)
}

// defaultConsenter is the account that signs in at /oauth_auth.do unless
// the request names one with snsim_user: the first account with itil, else
// the first account.
func (in *Inst) defaultConsenter() string {
	for _, a := range in.cfg.Accounts {
		for _, r := range a.Roles {
			if r == "itil" {
				return a.UserName
			}
		}
	}
	return in.cfg.Accounts[0].UserName
}

// handleAuthorize is /oauth_auth.do. A real instance shows a login page and
// a consent page; the simulator signs in the account named by snsim_user
// (default: the integration account) and consents, or refuses with
// snsim_consent=deny.
func (in *Inst) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := in.oauthClient(q.Get("client_id"))
	if c == nil {
		http.Error(w, "OAuth client_id is not registered on this instance", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	if c.RedirectURL != "" && redirect != "" && redirect != c.RedirectURL {
		http.Error(w, "redirect_uri does not match the OAuth application's redirect URL", http.StatusBadRequest)
		return
	}
	if redirect == "" {
		redirect = c.RedirectURL
	}
	ru, err := url.Parse(redirect)
	if err != nil || ru.Scheme == "" || ru.Host == "" {
		http.Error(w, "redirect_uri must be an absolute URL", http.StatusBadRequest)
		return
	}
	back := ru.Query()
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case q.Get("snsim_consent") == "deny":
		back.Set("error", "access_denied")
	default:
		user := q.Get("snsim_user")
		if user == "" {
			user = in.defaultConsenter()
		}
		if in.account(user) == nil {
			http.Error(w, "snsim_user is not an account of this instance", http.StatusBadRequest)
			return
		}
		code := randomToken()
		in.oauth.mu.Lock()
		in.oauth.codes[code] = &token{value: code, user: user, client: c.ClientID, redirect: q.Get("redirect_uri"),
			expires: in.sim.Now().Add(in.sim.opts.AuthCodeTTL)}
		in.oauth.mu.Unlock()
		back.Set("code", code)
	}
	ru.RawQuery = back.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

// tokenError is the token endpoint's refusal. UNCONFIRMED: the body real
// instances send for every bad client, code or refresh token.
func tokenError(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error_description": "access_denied", "error": "server_error"})
}

// handleToken is /oauth_token.do (form encoded): grant_type
// authorization_code, refresh_token or password. A refresh returns a new
// access token and the same refresh token (UNCONFIRMED: no rotation).
func (in *Inst) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form body", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	c := in.oauthClient(id)
	if c == nil || subtle.ConstantTimeCompare([]byte(c.ClientSecret), []byte(secret)) != 1 {
		tokenError(w)
		return
	}
	now := in.sim.Now()
	in.oauth.mu.Lock()
	defer in.oauth.mu.Unlock()
	var user, refresh string
	switch f.Get("grant_type") {
	case "authorization_code":
		code := in.oauth.codes[f.Get("code")]
		if code == nil || code.client != c.ClientID || !now.Before(code.expires) ||
			(code.redirect != "" && f.Get("redirect_uri") != code.redirect) {
			tokenError(w)
			return
		}
		delete(in.oauth.codes, code.value) // single use
		user = code.user
	case "refresh_token":
		rt := in.oauth.refresh[f.Get("refresh_token")]
		if rt == nil || rt.revoked || rt.client != c.ClientID || !now.Before(rt.expires) {
			tokenError(w)
			return
		}
		user, refresh = rt.user, rt.value
	case "password":
		a := in.account(f.Get("username"))
		if a == nil || a.Password == "" || subtle.ConstantTimeCompare([]byte(a.Password), []byte(f.Get("password"))) != 1 {
			tokenError(w)
			return
		}
		user = a.UserName
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error_description": "unsupported grant_type", "error": "unsupported_grant_type"})
		return
	}
	if refresh == "" {
		refresh = randomToken()
		in.oauth.refresh[refresh] = &token{value: refresh, user: user, client: c.ClientID, expires: now.Add(in.sim.opts.RefreshTokenTTL)}
	}
	at := &token{value: randomToken(), user: user, client: c.ClientID, expires: now.Add(in.sim.opts.AccessTokenTTL), refresh: refresh}
	in.oauth.access[at.value] = at
	writeJSON(w, http.StatusOK, map[string]any{"access_token": at.value, "refresh_token": refresh, "scope": "useraccount",
		"token_type": "Bearer", "expires_in": int(in.sim.opts.AccessTokenTTL.Seconds()) - 1})
}

// handleRevoke is /oauth_revoke_token.do: token=<access or refresh token>,
// with the client's credentials. Revoking a refresh token ends every access
// token issued from it.
func (in *Inst) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form body", http.StatusBadRequest)
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	c := in.oauthClient(id)
	if c == nil || subtle.ConstantTimeCompare([]byte(c.ClientSecret), []byte(secret)) != 1 {
		tokenError(w)
		return
	}
	tok := r.PostForm.Get("token")
	in.oauth.mu.Lock()
	if t := in.oauth.refresh[tok]; t != nil {
		t.revoked = true
	}
	if t := in.oauth.access[tok]; t != nil {
		t.revoked = true
	}
	in.oauth.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{})
}

// RevokeTokens revokes every token issued to a user (an admin revoking the
// integration's access); it returns how many refresh tokens it revoked.
func (in *Inst) RevokeTokens(userName string) int {
	in.oauth.mu.Lock()
	defer in.oauth.mu.Unlock()
	n := 0
	for _, t := range in.oauth.refresh {
		if t.user == userName && !t.revoked {
			t.revoked = true
			n++
		}
	}
	for _, t := range in.oauth.access {
		if t.user == userName {
			t.revoked = true
		}
	}
	return n
}
