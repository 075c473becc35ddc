package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/itsmhub/itsm/pkg/store"
)

// refreshMargin: refresh this long before expiry, so a call never starts
// with a token about to die.
const refreshMargin = time.Minute

type sealedTokens struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	Expiry       time.Time `json:"expiry"`
}

func (m *Manager) sealTokens(c *store.Connection, t *oauth2.Token) error {
	b, err := m.seal(t, []byte(c.ID))
	c.Secret = b
	return err
}

func (m *Manager) seal(t *oauth2.Token, aad []byte) ([]byte, error) {
	b, err := json.Marshal(sealedTokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, Expiry: t.Expiry})
	if err != nil {
		return nil, fmt.Errorf("encode tokens: %w", err)
	}
	return m.vault.Seal(b, aad), nil
}

func (m *Manager) openTokens(c *store.Connection) (*oauth2.Token, error) {
	if len(c.Secret) == 0 {
		return nil, fmt.Errorf("connection %s: %w", c.ID, ErrNotActive)
	}
	return m.open(c.ID, c.Secret, []byte(c.ID))
}

func (m *Manager) open(connID string, sealed, aad []byte) (*oauth2.Token, error) {
	b, err := m.vault.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("connection %s tokens: %w", connID, err)
	}
	var st sealedTokens
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("connection %s tokens: %w", connID, err)
	}
	return &oauth2.Token{AccessToken: st.AccessToken, RefreshToken: st.RefreshToken, Expiry: st.Expiry, TokenType: "Bearer"}, nil
}

// safeOAuthError drops the token endpoint's response body, which
// golang.org/x/oauth2 would otherwise put into the error text.
func safeOAuthError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = "unknown"
		}
		return fmt.Errorf("oauth token endpoint: HTTP %d %s", re.Response.StatusCode, code)
	}
	return err
}

// clientRefused: the token endpoint refused the request itself (RFC 6749's
// 400 and 401, and 403), which for a refresh means the application's
// credentials: ServiceNow answers 401 to a wrong client secret. The vendor
// failing (5xx, no answer) or rate limiting (429) is not a refusal.
func clientRefused(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return false
	}
	switch re.Response.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

// Token returns a usable access token of the connection, refreshing it if
// needed. stale, when set, is a token the vendor just refused: it is
// refreshed even if its expiry says otherwise (Atlassian revokes access
// tokens early).
//
// Vendors may rotate refresh tokens (Atlassian does), so two replicas
// refreshing at once would leave one holding a dead token: refreshes are
// serialized per connection by a lease, each re-reads the stored tokens
// once it holds it, and the new tokens are stored before anyone uses them.
func (m *Manager) Token(ctx context.Context, connID string, stale string) (*oauth2.Token, error) {
	c, err := m.store.LookupConnection(ctx, connID)
	if err != nil {
		return nil, err
	}
	tok, err := m.openTokens(c)
	if err != nil {
		return nil, err
	}
	if fresh(tok, stale, m.cfg.Now()) {
		return tok, nil
	}
	l, err := m.leases.AcquireWait(ctx, "token-"+connID, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("token refresh lease: %w", err)
	}
	defer func() {
		if err := l.Release(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("releasing token lease", zap.String("connection_id", connID), zap.Error(err))
		}
	}()
	if c, err = m.store.LookupConnection(ctx, connID); err != nil {
		return nil, err
	}
	if tok, err = m.openTokens(c); err != nil {
		return nil, err
	}
	if fresh(tok, stale, m.cfg.Now()) {
		return tok, nil // another replica refreshed while we waited
	}
	v, err := m.vendor.of(c)
	if err != nil {
		return nil, err
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, m.cfg.HTTPClient)
	next, err := v.Authorizer.RefreshToken(hctx, c, tok.RefreshToken)
	if isInvalidGrant(err) {
		m.refreshes.WithLabelValues("invalid_grant").Inc()
		m.setHealth(ctx, connID, store.HealthFailed, store.OwnerCustomer, v.Title+" no longer accepts this connection's grant; the customer must reconnect")
		return nil, &AccessError{Reason: v.Title + " no longer accepts this connection's grant; authorize it again", Err: ErrReauthorize}
	}
	if err != nil {
		m.refreshes.WithLabelValues("error").Inc()
		if clientRefused(err) {
			return nil, &AccessError{Reason: fmt.Sprintf("%s refused the OAuth application's credentials (%v); check its client secret", v.Title, safeOAuthError(err))}
		}
		return nil, fmt.Errorf("refresh token: %w", safeOAuthError(err))
	}
	m.refreshes.WithLabelValues("ok").Inc()
	if next.RefreshToken == "" {
		next.RefreshToken = tok.RefreshToken // seen in the wild: keep the old one
	}
	m.stampExpiry(next)
	if _, err := m.update(ctx, "", connID, func(c *store.Connection) error {
		return m.sealTokens(c, next)
	}); err != nil {
		// The old refresh token is now dead: failing to store the new one
		// loses the grant, so say so loudly.
		m.log.Error("storing rotated tokens failed; the connection may need reauthorization",
			zap.String("connection_id", connID), zap.Error(err))
		return nil, fmt.Errorf("store rotated tokens: %w", err)
	}
	return next, nil
}

// stampExpiry computes expiry from expires_in on the manager's clock, the
// one every freshness check uses (golang.org/x/oauth2 uses the wall clock).
func (m *Manager) stampExpiry(t *oauth2.Token) {
	if t.ExpiresIn > 0 {
		t.Expiry = m.cfg.Now().Add(time.Duration(t.ExpiresIn) * time.Second)
	}
}

func fresh(t *oauth2.Token, stale string, now time.Time) bool {
	if stale != "" && t.AccessToken == stale {
		return false
	}
	return t.AccessToken != "" && now.Add(refreshMargin).Before(t.Expiry)
}

// HTTPClient is an HTTP client whose requests authenticate as the
// connection, with a valid token, refreshing (once) when the vendor answers
// 401: a vendor connector builds its API client on it.
func (m *Manager) HTTPClient(_ context.Context, c *store.Connection) (*http.Client, error) {
	if basicAuth(c) {
		cred, err := m.Credentials(c)
		if err != nil {
			return nil, err
		}
		return &http.Client{Timeout: m.cfg.HTTPClient.Timeout, Transport: &basicTransport{user: c.Options.Auth.Username,
			password: cred.Password, base: transportOf(m.cfg.HTTPClient)}}, nil
	}
	return &http.Client{Timeout: m.cfg.HTTPClient.Timeout, Transport: &authTransport{m: m, connID: c.ID, base: transportOf(m.cfg.HTTPClient)}}, nil
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

type authTransport struct {
	m      *Manager
	connID string
	base   http.RoundTripper
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.m.Token(req.Context(), t.connID, "")
	if err != nil {
		return nil, err
	}
	resp, err := t.send(req, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || (req.Body != nil && req.GetBody == nil) {
		return resp, err
	}
	resp.Body.Close()
	if tok, err = t.m.Token(req.Context(), t.connID, tok.AccessToken); err != nil {
		return nil, err
	}
	if req.GetBody != nil {
		if req.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.send(req, tok)
}

func (t *authTransport) send(req *http.Request, tok *oauth2.Token) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return t.base.RoundTrip(r)
}
