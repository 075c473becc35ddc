package connections

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/itsmhub/itsm/pkg/store"
)

// Consent in two steps. The OAuth callback only proves that someone holding
// a fresh authorize URL granted access to some site; it does not make
// the connection ACTIVE. It keeps the granted tokens sealed in a pending
// consent and returns a confirmation naming the organization and the site.
// Only a confirmation carrying both halves the callback handed out (a
// signed single-use form token and a browser key meant for a SameSite=Strict
// cookie) activates the connection.

var (
	// ErrConsentMissing: the confirmation carries no form token.
	ErrConsentMissing = errors.New("the confirmation form token is missing")
	// ErrConsentForged: the form token is malformed or not ours.
	ErrConsentForged = errors.New("the confirmation form token is not valid")
	// ErrConsentExpired: the pending consent outlived ConsentTTL and its
	// tokens were discarded.
	ErrConsentExpired = errors.New("the confirmation has expired")
	// ErrConsentUsed: the consent was already confirmed, declined or
	// replaced by a newer authorization.
	ErrConsentUsed = errors.New("the confirmation was already used or replaced by a newer authorization")
	// ErrConsentBrowser: the confirmation does not come from the browser
	// that completed the authorization (the cookie is missing or differs).
	ErrConsentBrowser = errors.New("the confirmation does not come from the browser that completed the authorization")
)

// SiteMismatchError: the site the vendor granted is not the one the
// connection declares (options.site_url) or already uses.
type SiteMismatchError struct {
	Vendor    string   // the vendor's title ("Jira")
	Consented []string // the sites of the grant
	Want      string   // the declared or current site
}

func (e *SiteMismatchError) Error() string {
	return fmt.Sprintf("the %s consent covers %s, not the connection's site %s; authorize again and choose that site",
		e.Vendor, strings.Join(e.Consented, ", "), e.Want)
}

// VendorError is a refused or failed consent step on a connection whose
// vendor is known, so that the page the browser gets can name it.
type VendorError struct {
	Vendor string // the vendor's title ("ServiceNow")
	Err    error
}

func (e *VendorError) Error() string { return e.Err.Error() }
func (e *VendorError) Unwrap() error { return e.Err }

// Consent is a completed OAuth exchange waiting for confirmation.
type Consent struct {
	// Vendor is the vendor's title ("Jira"), for the pages people read.
	Vendor         string
	OrganizationID string
	ConnectionID   string
	SiteURL        string
	SiteName       string
	ExpiresAt      time.Time
	// FormToken goes into the confirmation form.
	FormToken string
	// BrowserKey goes into an HttpOnly SameSite=Strict cookie; only its
	// hash is in the form token, so neither half confirms alone.
	BrowserKey string
}

// Callback completes the OAuth exchange: it checks and consumes the state
// (signed, unexpired, of a connection of the organization it names, not
// used before), exchanges the code, resolves the granted site, checks it
// against the connection's declared or current site, and holds the tokens,
// encrypted, in a pending consent until Confirm.
func (m *Manager) Callback(ctx context.Context, code, state string) (*Consent, error) {
	orgID, connID, nonceHash, err := verifyState(m.cfg.StateKey, state, m.cfg.Now())
	if err != nil {
		return nil, err
	}
	// Consuming the state first, under optimistic concurrency, makes it
	// single-use even against two simultaneous callbacks. The lookup is
	// scoped to the state's organization.
	c, err := m.update(ctx, orgID, connID, func(c *store.Connection) error {
		if err := liveState(c, nonceHash); err != nil {
			return err
		}
		c.Detail.OAuthStateHash = ""
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadState
	}
	if err != nil {
		return nil, err
	}
	v, err := m.vendor.of(c)
	if err != nil {
		return nil, err
	}
	consent, err := m.completeGrant(ctx, c, v, code)
	if err != nil {
		return nil, &VendorError{Vendor: v.Title, Err: err}
	}
	return consent, nil
}

// completeGrant is Callback once the state is spent: the exchange, the
// site, and the pending consent.
func (m *Manager) completeGrant(ctx context.Context, c *store.Connection, v *Connector, code string) (*Consent, error) {
	orgID := c.OrganizationID
	hctx := context.WithValue(ctx, oauth2.HTTPClient, m.cfg.HTTPClient)
	tok, err := v.Authorizer.Exchange(hctx, c, m.redirectURL(), code)
	if err != nil {
		m.consentFailed(ctx, c, v.Title+" refused the authorization code; start the authorization again")
		return nil, fmt.Errorf("exchange code: %w", safeOAuthError(err))
	}
	m.stampExpiry(tok)
	sites, err := v.Authorizer.Sites(hctx, c, tok)
	if err != nil {
		return nil, fmt.Errorf("resolve %s site: %w", v.Title, err)
	}
	site, err := pickSite(v.Title, sites, c)
	if err != nil {
		// The tokens are dropped here: never stored, they die with the request.
		m.consentFailed(ctx, c, err.Error())
		return nil, err
	}
	secret, err := m.seal(tok, pendingAAD(c.ID))
	if err != nil {
		return nil, err
	}
	nonce, browserKey := newNonce(16), newNonce(32)
	exp := m.cfg.Now().Add(m.cfg.ConsentTTL).UTC().Truncate(time.Second)
	pending := &store.PendingConsent{CloudID: site.CloudID, SiteURL: site.URL, SiteName: site.Name,
		Secret: secret, NonceHash: hashNonce(nonce), ExpiresAt: exp}
	if len(sites) > 1 {
		pending.Sites = sites
	}
	c, err = m.update(ctx, orgID, c.ID, func(c *store.Connection) error {
		if c.State == store.StateDeleted {
			return ErrBadState
		}
		c.Detail.Consent = pending
		if c.State == store.StatePending {
			c.Detail.Health = store.Health{Status: store.HealthDegraded, ResolutionOwner: store.OwnerCustomer, UpdatedAt: m.cfg.Now().UTC(),
				Description: fmt.Sprintf("%s access to %s was granted; waiting for the administrator to confirm it on the consent page before %s",
					v.Title, site.URL, exp.Format(time.RFC3339))}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Consent{Vendor: v.Title, OrganizationID: c.OrganizationID, ConnectionID: c.ID, SiteURL: site.URL, SiteName: site.Name, ExpiresAt: exp,
		FormToken:  signToken(m.cfg.StateKey, purposeConsent, exp, c.OrganizationID, c.ID, nonce, hashNonce(browserKey)),
		BrowserKey: browserKey}, nil
}

// StateVendor names the vendor of the connection a live state belongs to
// ("ServiceNow"), for the page of a callback that carries no code (the
// vendor refused, or the address was cut). It does not spend the state. A
// state that is not live (forged, expired, spent, replaced, of a deleted
// connection) gets "", so that its page names no vendor and whoever holds
// it learns nothing.
func (m *Manager) StateVendor(ctx context.Context, state string) string {
	orgID, connID, nonceHash, err := verifyState(m.cfg.StateKey, state, m.cfg.Now())
	if err != nil {
		return ""
	}
	c, err := m.store.GetConnection(ctx, orgID, connID)
	if err != nil || liveState(c, nonceHash) != nil {
		return ""
	}
	return m.vendor.title(c)
}

// liveState checks that the state whose nonce hashes to nonceHash is the
// connection's current one: ErrBadState for a deleted connection,
// ErrStateUsed for a state spent or replaced by a newer one.
func liveState(c *store.Connection, nonceHash string) error {
	if c.State == store.StateDeleted {
		return ErrBadState
	}
	if c.Detail.OAuthStateHash == "" || subtle.ConstantTimeCompare([]byte(c.Detail.OAuthStateHash), []byte(nonceHash)) != 1 {
		return ErrStateUsed
	}
	return nil
}

// PublicURL is where browsers reach the receiver.
func (m *Manager) PublicURL() string { return m.cfg.PublicURL }

// Title names a connection's vendor in pages people read ("Jira").
func (m *Manager) Title(c *store.Connection) string { return m.vendor.title(c) }

func pendingAAD(connID string) []byte { return []byte(connID + "/pending-consent") }

// consentFailed records why a consent failed on a connection that is not
// working yet; a working connection keeps its health and its grant.
func (m *Manager) consentFailed(ctx context.Context, c *store.Connection, desc string) {
	if c.State == store.StatePending {
		m.setHealth(ctx, c.ID, store.HealthFailed, store.OwnerCustomer, desc)
	}
}

func (m *Manager) verifyConsent(formToken string) ([]string, error) {
	if formToken == "" {
		return nil, ErrConsentMissing
	}
	f, err := verifyToken(m.cfg.StateKey, purposeConsent, formToken, 4, m.cfg.Now())
	switch {
	case err == nil && (f[0] == "" || f[1] == ""):
		return nil, ErrConsentForged
	case errors.Is(err, errTokenExpired):
		return f, ErrConsentExpired
	case err != nil:
		return nil, ErrConsentForged
	}
	return f, nil
}

// Confirm spends the form token and, if accept, activates the connection
// with the pending tokens, registers its webhooks and asks for the first
// full sync; otherwise the pending tokens are discarded. browserKey must be
// the key the callback handed to the same browser.
func (m *Manager) Confirm(ctx context.Context, formToken, browserKey string, accept bool) (*store.Connection, error) {
	f, err := m.verifyConsent(formToken)
	if errors.Is(err, ErrConsentExpired) {
		if vendor := m.discardConsent(ctx, f[0], f[1], hashNonce(f[2]), "the confirmation expired"); vendor != "" {
			return nil, &VendorError{Vendor: vendor, Err: err}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	orgID, connID, nonceHash, keyHash := f[0], f[1], hashNonce(f[2]), f[3]
	if browserKey == "" || subtle.ConstantTimeCompare([]byte(hashNonce(browserKey)), []byte(keyHash)) != 1 {
		return nil, ErrConsentBrowser
	}
	var outcome error
	activated := false
	c, err := m.update(ctx, orgID, connID, func(c *store.Connection) error {
		outcome, activated = nil, false
		p := c.Detail.Consent
		if p == nil || subtle.ConstantTimeCompare([]byte(p.NonceHash), []byte(nonceHash)) != 1 {
			return ErrConsentUsed
		}
		c.Detail.Consent = nil // spent, whatever happens next
		now := m.cfg.Now().UTC()
		switch {
		case c.State == store.StateDeleted:
			outcome = ErrConsentUsed
			return nil
		case !now.Before(p.ExpiresAt):
			outcome = &VendorError{Vendor: m.vendor.title(c), Err: ErrConsentExpired}
			m.pendingHealth(c, store.HealthDegraded, "the confirmation of the "+m.vendor.title(c)+" site "+p.SiteURL+" expired; authorize again")
			return nil
		case !accept:
			m.pendingHealth(c, store.HealthDegraded, "the administrator declined the "+m.vendor.title(c)+" site "+p.SiteURL+"; authorize again to connect")
			return nil
		}
		// Options may have changed since the callback.
		if want := wantSite(c); want != "" && !sameSite(want, p.SiteURL, p.CloudID, c) {
			outcome = &SiteMismatchError{Vendor: m.vendor.title(c), Consented: []string{p.SiteURL}, Want: want}
			m.pendingHealth(c, store.HealthFailed, outcome.Error())
			return nil
		}
		tok, err := m.open(c.ID, p.Secret, pendingAAD(c.ID))
		if err != nil {
			return err
		}
		if err := m.sealTokens(c, tok); err != nil {
			return err
		}
		c.CloudID, c.SiteURL, c.Detail.Sites = p.CloudID, p.SiteURL, p.Sites
		if c.State == store.StatePending {
			c.State = store.StateActive
		}
		c.Detail.Health = store.Health{Status: store.HealthHealthy, UpdatedAt: now}
		activated = true
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrConsentUsed
	}
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		return nil, outcome
	}
	if !activated {
		return c, nil
	}
	tested := false
	if v, err := m.vendor.of(c); err == nil && v.Prober != nil {
		// The grant works only if the account behind it may read; the
		// test asks for the first sync when it passes.
		if c, err = m.test(ctx, c, v); err != nil {
			return nil, err
		}
		if c.State != store.StateActive {
			return c, nil
		}
		tested = true
	}
	if err := m.replaceWebhooks(ctx, c.ID); err != nil {
		// Syncs still keep data current; the upkeep loop retries.
		m.log.Warn("registering webhooks", zap.String("connection_id", c.ID), zap.String("organization_id", c.OrganizationID), zap.Error(err))
	}
	if m.syncs != nil && !tested {
		if err := m.syncs.RequestSync(ctx, c.ID, store.SyncFull); err != nil {
			m.log.Warn("requesting the first sync", zap.String("connection_id", c.ID), zap.Error(err))
		}
	}
	return m.store.GetConnection(ctx, orgID, c.ID)
}

// pendingHealth records the outcome of a consent on a connection that is
// not working yet.
func (m *Manager) pendingHealth(c *store.Connection, status store.HealthStatus, desc string) {
	if c.State == store.StatePending {
		c.Detail.Health = store.Health{Status: status, ResolutionOwner: store.OwnerCustomer, Description: desc, UpdatedAt: m.cfg.Now().UTC()}
	}
}

// discardConsent drops a pending consent if it is still the one nonceHash
// names, and returns the title of the connection's vendor ("" if there is
// no such connection).
func (m *Manager) discardConsent(ctx context.Context, orgID, connID, nonceHash, why string) string {
	var vendor string
	_, err := m.update(ctx, orgID, connID, func(c *store.Connection) error {
		vendor = m.vendor.title(c)
		p := c.Detail.Consent
		if p == nil || p.NonceHash != nonceHash {
			return errNothingToDo
		}
		c.Detail.Consent = nil
		m.pendingHealth(c, store.HealthDegraded, why+" for the "+m.vendor.title(c)+" site "+p.SiteURL+"; authorize again")
		return nil
	})
	if err != nil && !errors.Is(err, errNothingToDo) && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("discarding a pending consent", zap.String("connection_id", connID), zap.Error(err))
	}
	return vendor
}

var errNothingToDo = errors.New("nothing to do")

// DiscardExpiredConsents drops the tokens of consents nobody confirmed in
// time (Run calls it with each upkeep pass; Confirm also refuses them).
func (m *Manager) DiscardExpiredConsents(ctx context.Context) error {
	now := m.cfg.Now()
	for _, state := range []store.ConnectionState{store.StatePending, store.StateActive, store.StatePaused} {
		conns, err := m.store.FindConnections(ctx, store.ConnectionQuery{State: state})
		if err != nil {
			return err
		}
		for _, c := range conns {
			if p := c.Detail.Consent; p != nil && !now.Before(p.ExpiresAt) {
				m.discardConsent(ctx, c.OrganizationID, c.ID, p.NonceHash, "nobody confirmed the consent in time")
			}
		}
	}
	return nil
}

// wantSite is the site a consent must grant: the connection's current one
// once it has one, else the declared options.site_url (may be empty).
func wantSite(c *store.Connection) string {
	if c.SiteURL != "" {
		return c.SiteURL
	}
	return c.Options.SiteURL
}

func sameSite(want, url, cloudID string, c *store.Connection) bool {
	if c.CloudID != "" {
		return cloudID == c.CloudID
	}
	return strings.EqualFold(strings.TrimRight(want, "/"), strings.TrimRight(url, "/"))
}

// pickSite chooses the granted site the connection uses: the one it
// already has or declares, else the first one. vendor titles the messages.
func pickSite(vendor string, sites []store.Site, c *store.Connection) (store.Site, error) {
	if len(sites) == 0 {
		return store.Site{}, fmt.Errorf("the grant covers no %s site", vendor)
	}
	want := wantSite(c)
	if want == "" {
		return sites[0], nil
	}
	urls := make([]string, 0, len(sites))
	for _, s := range sites {
		if sameSite(want, s.URL, s.CloudID, c) {
			return s, nil
		}
		urls = append(urls, s.URL)
	}
	return store.Site{}, &SiteMismatchError{Vendor: vendor, Consented: urls, Want: want}
}
