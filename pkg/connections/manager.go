// Package connections makes a customer's connection real: creation and
// validation, OAuth 2.0 onboarding with a signed single-use state, tokens
// encrypted at rest and refreshed one replica at a time, and the webhooks
// that feed the receiver, kept alive past their expiry. What differs by
// vendor (the OAuth endpoints, the site a grant covers, webhook
// registration, the mapping report) is behind the interfaces of vendor.go,
// which the wiring fills with each vendor's connector.
package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vault"
)

// MaxStateTTL bounds an authorize URL's and a pending consent's lifetime: a
// leaked link must not stay usable for long.
const MaxStateTTL = time.Hour

// Defaults of a new connection (the seed's values).
const (
	DefaultRefreshIntervalSecs = 21600
	DefaultTimeoutSecs         = 1800
)

var (
	// ErrReauthorize: the vendor no longer accepts the grant; the customer
	// must reconnect (the connection's health says so).
	ErrReauthorize = errors.New("the customer must reconnect the site")
	// ErrNotActive: the connection has no working grant yet.
	ErrNotActive = errors.New("connection is not active")
	// ErrVendor: the vendor failed a call made on the caller's behalf.
	ErrVendor = errors.New("vendor call failed")
	// ErrBadState: the OAuth state is forged or names no connection of its
	// organization; ErrStateExpired and ErrStateUsed are kinds of it.
	ErrBadState = errors.New("invalid OAuth state")
	// ErrStateExpired: the state is genuine but older than StateTTL.
	ErrStateExpired = fmt.Errorf("%w: it has expired", ErrBadState)
	// ErrStateUsed: the state was already used, or a newer one replaced it.
	ErrStateUsed = fmt.Errorf("%w: it was already used or replaced by a newer one", ErrBadState)
	// ErrNoConsent: the connection brings its own credentials (basic
	// auth); there is no OAuth consent to authorize.
	ErrNoConsent = errors.New("the connection brings its own credentials and has no OAuth consent")
	// ErrNoTest: the connection's vendor has no connection test of its own
	// (Jira's: the consent is the test).
	ErrNoTest = errors.New("the connection's vendor has no connection test")
)

// Store is what the manager needs from the store.
type Store interface {
	CreateConnection(ctx context.Context, c *store.Connection) error
	GetConnection(ctx context.Context, orgID, id string) (*store.Connection, error)
	LookupConnection(ctx context.Context, id string) (*store.Connection, error)
	ListConnections(ctx context.Context, orgID string) ([]*store.Connection, error)
	UpdateConnection(ctx context.Context, c *store.Connection) error
	FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error)
	PurgeConnection(ctx context.Context, orgID, connectionID string) (int64, error)
}

// SyncRequester starts syncs; the backfill worker provides it.
type SyncRequester interface {
	RequestSync(ctx context.Context, connectionID string, kind store.SyncKind) error
}

// Config of the manager.
type Config struct {
	// PublicURL is where vendors and browsers reach the receiver.
	PublicURL string
	// Connectors are the vendors connections can be made to.
	Connectors []Connector
	// StateKey signs OAuth states and confirmation forms.
	StateKey []byte
	// StateTTL bounds how long an authorize URL works (at most MaxStateTTL).
	StateTTL time.Duration
	// ConsentTTL bounds how long granted tokens wait for the
	// administrator's confirmation before they are discarded (at most
	// MaxStateTTL).
	ConsentTTL time.Duration
	// WebhookRefreshBefore: refresh webhooks expiring within this window.
	WebhookRefreshBefore time.Duration
	// WebhookCheckEvery is how often Run checks the webhooks.
	WebhookCheckEvery time.Duration
	HTTPClient        *http.Client
	Now               func() time.Time
	// Registerer receives the manager's metrics; nil skips them.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.StateTTL <= 0 {
		c.StateTTL = 15 * time.Minute
	}
	if c.ConsentTTL <= 0 {
		c.ConsentTTL = 10 * time.Minute
	}
	if c.WebhookRefreshBefore <= 0 {
		c.WebhookRefreshBefore = 7 * 24 * time.Hour
	}
	if c.WebhookCheckEvery <= 0 {
		c.WebhookCheckEvery = time.Hour
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Manager owns connections' lifecycle.
type Manager struct {
	cfg    Config
	store  Store
	vault  *vault.Vault
	leases *lease.Leases
	vendor connectors
	syncs  SyncRequester
	log    *zap.Logger
	// refreshes counts token refreshes by result (ok, invalid_grant, error).
	refreshes *prometheus.CounterVec
}

// New builds a manager. leases serialize token refreshes and webhook upkeep
// across replicas; syncs may be nil until a backfill worker exists.
func New(cfg Config, st Store, v *vault.Vault, leases *lease.Leases, syncs SyncRequester, log *zap.Logger) (*Manager, error) {
	cfg.setDefaults()
	if len(cfg.StateKey) < 16 {
		return nil, errors.New("connections: a state signing key of at least 16 bytes is required")
	}
	if cfg.PublicURL == "" {
		return nil, errors.New("connections: ITSM_PUBLIC_URL is required for OAuth callbacks and webhooks")
	}
	if cfg.StateTTL > MaxStateTTL || cfg.ConsentTTL > MaxStateTTL {
		return nil, fmt.Errorf("connections: OAuth states and pending consents must expire within %v", MaxStateTTL)
	}
	vendors, err := newConnectors(cfg.Connectors)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, store: st, vault: v, leases: leases, syncs: syncs, log: log, vendor: vendors,
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_token_refreshes_total", Help: "OAuth token refreshes by result.",
		}, []string{"result"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(m.refreshes); err != nil {
			return nil, fmt.Errorf("register connection metrics: %w", err)
		}
	}
	return m, nil
}

// SetSyncRequester wires the backfill worker in after construction.
func (m *Manager) SetSyncRequester(s SyncRequester) { m.syncs = s }

// CreateRequest is the body of POST /v1/connections.
type CreateRequest struct {
	Vendor              string  `json:"vendor"`
	Options             Options `json:"options"`
	RefreshIntervalSecs *int    `json:"refresh_interval_secs,omitempty"`
	TimeoutSecs         *int    `json:"timeout_secs,omitempty"`
}

// ParseCreate decodes and validates a create request.
func ParseCreate(body []byte) (CreateRequest, error) {
	var req CreateRequest
	if err := DecodeStrict(body, &req); err != nil {
		return req, err
	}
	return req, nil
}

func intervals(refresh, timeout *int, c *store.Connection) error {
	if refresh != nil {
		if *refresh < 300 || *refresh > 7*24*3600 {
			return invalid("refresh_interval_secs", "want 300 to 604800 seconds")
		}
		c.RefreshIntervalSecs = *refresh
	}
	if timeout != nil {
		if *timeout < 60 || *timeout > 24*3600 {
			return invalid("timeout_secs", "want 60 to 86400 seconds")
		}
		c.TimeoutSecs = *timeout
	}
	return nil
}

// Create stores a PENDING connection and returns it with the URL where the
// customer consents.
func (m *Manager) Create(ctx context.Context, orgID string, req CreateRequest) (*store.Connection, string, error) {
	vendor, err := m.vendor.parse(req.Vendor)
	if err != nil {
		return nil, "", err
	}
	if err := vendor.accepts(req.Options); err != nil {
		return nil, "", err
	}
	opts, err := req.Options.toStore()
	if err != nil {
		return nil, "", err
	}
	now := m.cfg.Now().UTC()
	c := &store.Connection{
		ID: uuid.NewString(), OrganizationID: orgID, Vendor: vendor.Vendor, State: store.StatePending, Options: opts,
		RefreshIntervalSecs: DefaultRefreshIntervalSecs, TimeoutSecs: DefaultTimeoutSecs,
		Detail: store.ConnectionDetail{Health: store.Health{Status: store.HealthDegraded, ResolutionOwner: store.OwnerCustomer,
			Description: "waiting for the customer to authorize access to " + vendor.Title, UpdatedAt: now},
			ModelVersion: itsm.ModelVersion},
		CreatedAt: now, UpdatedAt: now,
	}
	if err := intervals(req.RefreshIntervalSecs, req.TimeoutSecs, c); err != nil {
		return nil, "", err
	}
	if vendor.Setup != nil {
		cred, err := vendor.Setup.Configure(req.Options, c, true)
		if err != nil {
			return nil, "", err
		}
		if cred != nil {
			if err := m.sealCredentials(c, cred); err != nil {
				return nil, "", err
			}
		}
	}
	var authURL string
	if needsConsent(c) {
		if authURL, err = m.issueState(c); err != nil {
			return nil, "", err
		}
	} else {
		c.Detail.Health.Description = "testing access to " + vendor.Title
	}
	if err := m.store.CreateConnection(ctx, c); err != nil {
		return nil, "", fmt.Errorf("create connection: %w", err)
	}
	if !needsConsent(c) {
		// Credentials the customer brings are tested at once.
		if c, err = m.test(ctx, c, vendor); err != nil {
			return nil, "", err
		}
	}
	return c, authURL, nil
}

// Authorize issues a new consent URL: the previous state stops working and
// a consent still waiting for confirmation is discarded.
func (m *Manager) Authorize(ctx context.Context, orgID, id string) (string, error) {
	var url string
	_, err := m.update(ctx, orgID, id, func(c *store.Connection) error {
		if c.State == store.StateDeleted {
			return fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
		}
		if !needsConsent(c) {
			return fmt.Errorf("connection %s: %w", id, ErrNoConsent)
		}
		var err error
		url, err = m.issueState(c)
		c.Detail.Consent = nil
		return err
	})
	return url, err
}

func (m *Manager) issueState(c *store.Connection) (string, error) {
	v, err := m.vendor.of(c)
	if err != nil {
		return "", err
	}
	state, hash := signState(m.cfg.StateKey, c.OrganizationID, c.ID, m.cfg.Now().Add(m.cfg.StateTTL))
	c.Detail.OAuthStateHash = hash
	return v.Authorizer.AuthCodeURL(c, m.redirectURL(), state), nil
}

// redirectURL is where the vendor sends the customer back after consent.
func (m *Manager) redirectURL() string { return m.cfg.PublicURL + "/oauth/callback" }

// Get reads a connection of the organization.
func (m *Manager) Get(ctx context.Context, orgID, id string) (*store.Connection, error) {
	return m.store.GetConnection(ctx, orgID, id)
}

// live reads a connection of the organization that is not deleted: a
// deleted one is not found.
func (m *Manager) live(ctx context.Context, orgID, id string) (*store.Connection, error) {
	c, err := m.store.GetConnection(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if c.State == store.StateDeleted {
		return nil, fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	}
	return c, nil
}

// liveWithVendor is live's connection with its vendor's connector.
func (m *Manager) liveWithVendor(ctx context.Context, orgID, id string) (*store.Connection, *Connector, error) {
	c, err := m.live(ctx, orgID, id)
	if err != nil {
		return nil, nil, err
	}
	v, err := m.vendor.of(c)
	if err != nil {
		return nil, nil, err
	}
	return c, v, nil
}

// List lists the organization's connections.
func (m *Manager) List(ctx context.Context, orgID string) ([]*store.Connection, error) {
	return m.store.ListConnections(ctx, orgID)
}

// PatchRequest is the body of PATCH /v1/connections/{id}.
type PatchRequest struct {
	Options             *Options `json:"options,omitempty"`
	RefreshIntervalSecs *int     `json:"refresh_interval_secs,omitempty"`
	TimeoutSecs         *int     `json:"timeout_secs,omitempty"`
	// State pauses (PAUSED) or resumes (ACTIVE) a connection.
	State *store.ConnectionState `json:"state,omitempty"`
}

// Patch changes options; a changed project filter re-registers webhooks.
func (m *Manager) Patch(ctx context.Context, orgID, id string, req PatchRequest) (*store.Connection, error) {
	var filterChanged bool
	c, err := m.update(ctx, orgID, id, func(c *store.Connection) error {
		if c.State == store.StateDeleted {
			return fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
		}
		if req.Options != nil {
			v, err := m.vendor.of(c)
			if err != nil {
				return err
			}
			if err := v.accepts(*req.Options); err != nil {
				return err
			}
			opts, err := req.Options.toStore()
			if err != nil {
				return err
			}
			// What a vendor's Configurer decided at create stays.
			opts.Auth = c.Options.Auth
			if v.Setup != nil {
				next := *c
				next.Options = opts
				if _, err := v.Setup.Configure(*req.Options, &next, false); err != nil {
					return err
				}
				opts = next.Options
			}
			filterChanged = !slices.Equal(opts.ProjectKeysFilter, c.Options.ProjectKeysFilter)
			if !slices.Equal(opts.StatusMapping, c.Options.StatusMapping) || !slices.Equal(opts.PriorityMapping, c.Options.PriorityMapping) {
				// Stored tickets are re-mapped by the normalizer.
				c.Detail.MappingRevision++
			}
			c.Options = opts
		}
		if req.State != nil {
			switch {
			case *req.State == store.StatePaused && c.State == store.StateActive:
				c.State = store.StatePaused
			case *req.State == store.StateActive && c.State == store.StatePaused:
				c.State = store.StateActive
			case *req.State == c.State:
			default:
				return invalid("state", "can only pause an ACTIVE connection or resume a PAUSED one")
			}
		}
		return intervals(req.RefreshIntervalSecs, req.TimeoutSecs, c)
	})
	if err != nil {
		return nil, err
	}
	if filterChanged && c.State == store.StateActive {
		if err := m.replaceWebhooks(ctx, c.ID); err != nil {
			m.log.Warn("re-registering webhooks after a filter change", zap.String("connection_id", c.ID),
				zap.String("organization_id", c.OrganizationID), zap.Error(err))
		}
		return m.store.GetConnection(ctx, orgID, id)
	}
	return c, nil
}

// Delete unregisters the connection's webhooks at the vendor (best effort:
// a revoked grant cannot), drops its tokens and marks it DELETED; syncs and
// deliveries stop. Normalized data is kept, unless purge removes it too.
func (m *Manager) Delete(ctx context.Context, orgID, id string, purge bool) error {
	c, err := m.live(ctx, orgID, id)
	if err != nil {
		return err
	}
	if v, err := m.vendor.of(c); err == nil && v.Webhooks != nil && len(c.Detail.Webhooks) > 0 {
		hc, err := m.HTTPClient(ctx, c)
		if err == nil {
			err = v.Webhooks.DeleteWebhooks(ctx, c, hc)
		}
		if err != nil {
			m.log.Warn("could not unregister webhooks of a deleted connection; they expire on their own",
				zap.String("connection_id", c.ID), zap.String("organization_id", c.OrganizationID), zap.Error(err))
		}
	}
	_, err = m.update(ctx, orgID, id, func(c *store.Connection) error {
		c.State, c.Secret, c.Detail.Credentials = store.StateDeleted, nil, nil
		c.Detail.Webhooks, c.Detail.OAuthStateHash, c.Detail.Consent = nil, "", nil
		c.Detail.Health = store.Health{Status: store.HealthFailed, ResolutionOwner: store.OwnerCustomer,
			Description: "connection deleted", UpdatedAt: m.cfg.Now().UTC()}
		return nil
	})
	if err != nil || !purge {
		return err
	}
	// After the state change, so that no sync or delivery writes again.
	n, err := m.store.PurgeConnection(ctx, orgID, id)
	if err != nil {
		return fmt.Errorf("purge connection data: %w", err)
	}
	m.log.Info("connection data purged", zap.String("connection_id", id), zap.String("organization_id", orgID), zap.Int64("documents", n))
	return nil
}

// update applies fn to the stored connection with optimistic concurrency,
// retrying on conflicts so that concurrent writers (token refresh, webhook
// upkeep, API calls) never lose each other's changes.
func (m *Manager) update(ctx context.Context, orgID, id string, fn func(c *store.Connection) error) (*store.Connection, error) {
	for attempt := 0; ; attempt++ {
		var c *store.Connection
		var err error
		if orgID == "" {
			c, err = m.store.LookupConnection(ctx, id)
		} else {
			c, err = m.store.GetConnection(ctx, orgID, id)
		}
		if err != nil {
			return nil, err
		}
		if err := fn(c); err != nil {
			return nil, err
		}
		c.UpdatedAt = m.cfg.Now().UTC()
		err = m.store.UpdateConnection(ctx, c)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= 10 {
			return nil, err
		}
	}
}

func (m *Manager) setHealth(ctx context.Context, id string, status store.HealthStatus, owner store.ResolutionOwner, desc string) {
	_, err := m.update(ctx, "", id, func(c *store.Connection) error {
		c.Detail.Health = store.Health{Status: status, ResolutionOwner: owner, Description: desc, UpdatedAt: m.cfg.Now().UTC()}
		return nil
	})
	if err != nil {
		m.log.Warn("recording connection health", zap.String("connection_id", id), zap.Error(err))
	}
}
