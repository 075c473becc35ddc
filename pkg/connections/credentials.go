package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/store"
)

// A connection's own credentials (store.ConnectionOptions.Auth and the
// sealed store.ConnectionDetail.Credentials): a vendor's Configurer decides
// them at create; the manager seals them, authenticates requests with them
// and tests them with the vendor's Prober.

func credentialsAAD(connID string) []byte { return []byte(connID + "/credentials") }

func (m *Manager) sealCredentials(c *store.Connection, cred *Credentials) error {
	b, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	c.Detail.Credentials = m.vault.Seal(b, credentialsAAD(c.ID))
	return nil
}

// Credentials opens the connection's own secrets; a connection without any
// (a Jira one, or one stored before they existed) has empty ones.
func (m *Manager) Credentials(c *store.Connection) (*Credentials, error) {
	var cred Credentials
	if len(c.Detail.Credentials) == 0 {
		return &cred, nil
	}
	b, err := m.vault.Open(c.Detail.Credentials, credentialsAAD(c.ID))
	if err != nil {
		return nil, fmt.Errorf("connection %s credentials: %w", c.ID, err)
	}
	if err := json.Unmarshal(b, &cred); err != nil {
		return nil, fmt.Errorf("connection %s credentials: %w", c.ID, err)
	}
	return &cred, nil
}

// needsConsent: the connection gets its access by an OAuth consent (the
// platform's app, or the customer's own), not from credentials it brings.
func needsConsent(c *store.Connection) bool {
	return c.Options.Auth == nil || c.Options.Auth.Type == store.AuthOAuth
}

func basicAuth(c *store.Connection) bool {
	return c.Options.Auth != nil && c.Options.Auth.Type == store.AuthBasic
}

// basicTransport authenticates every request with the connection's user
// name and password.
type basicTransport struct {
	user, password string
	base           http.RoundTripper
}

func (t *basicTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.SetBasicAuth(t.user, t.password)
	return t.base.RoundTrip(r)
}

// TestRequest is the body of POST /v1/connections/{id}/test.
type TestRequest struct {
	// Auth, when set, replaces the connection's credentials before the
	// test (the create request's options.auth shape, same type).
	Auth *AuthOptions `json:"auth,omitempty"`
}

// Test runs the vendor's connection test on a connection of the
// organization again, first sealing req.Auth's credentials in place of
// its own if given, and returns the connection as the test left it: a
// connection whose test failed (a wrong password, a missing role, an
// instance that did not answer) need not be created again once the cause
// is fixed. New credentials of a connection still waiting for its OAuth
// consent are only sealed: it is tested once authorized.
func (m *Manager) Test(ctx context.Context, orgID, id string, req TestRequest) (*store.Connection, error) {
	c, v, err := m.liveWithVendor(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if v.Prober == nil {
		return nil, fmt.Errorf("connection %s: %w", id, ErrNoTest)
	}
	if req.Auth != nil {
		if v.Setup == nil {
			return nil, invalid("auth", "%s connections bring no credentials of their own", v.Title)
		}
		c, err = m.update(ctx, orgID, id, func(c *store.Connection) error {
			if c.State == store.StateDeleted {
				return fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
			}
			next, err := v.Setup.NewCredentials(*req.Auth, c)
			if err != nil {
				return err
			}
			return m.replaceCredentials(c, next)
		})
		if err != nil {
			return nil, err
		}
	}
	if needsConsent(c) && len(c.Secret) == 0 {
		if req.Auth == nil {
			return nil, fmt.Errorf("connection %s: %w", id, ErrNotActive)
		}
		// A new client secret for a connection still waiting for its
		// consent: nothing to test until it is authorized.
		return c, nil
	}
	return m.test(ctx, c, v)
}

// replaceCredentials seals next's secrets in place of c's; the ones next
// leaves empty (the push secret) stay.
func (m *Manager) replaceCredentials(c *store.Connection, next *Credentials) error {
	cur, err := m.Credentials(c)
	if err != nil {
		return err
	}
	if next.Password != "" {
		cur.Password = next.Password
	}
	if next.ClientSecret != "" {
		cur.ClientSecret = next.ClientSecret
	}
	if next.PushSecret != "" {
		cur.PushSecret = next.PushSecret
	}
	return m.sealCredentials(c, cur)
}

// test runs the vendor's connection test on c: success makes a PENDING
// connection ACTIVE and asks for a full sync, or asks an ACTIVE one for an
// incremental sync (it catches up at once with credentials that may be
// new; a test must not cost a large tenant a full sync). A failure leaves
// it PENDING with a health that says why, and takes an ACTIVE one back
// there only when the vendor refused its access (AccessError): an instance
// that is down must not stop a connection until someone tests it again.
// It returns the connection as stored.
func (m *Manager) test(ctx context.Context, c *store.Connection, v *Connector) (*store.Connection, error) {
	if v.Prober == nil {
		return c, nil
	}
	hc, err := m.HTTPClient(ctx, c)
	if err == nil {
		err = v.Prober.Probe(ctx, c, hc)
	}
	now := m.cfg.Now().UTC()
	kind := store.SyncIncremental
	var access *AccessError
	refused := errors.As(err, &access)
	out, uerr := m.update(ctx, c.OrganizationID, c.ID, func(s *store.Connection) error {
		if s.State == store.StateDeleted {
			return fmt.Errorf("connection %s: %w", c.ID, store.ErrNotFound)
		}
		if err != nil {
			desc := fmt.Sprintf("the %s connection test failed: %v", v.Title, err)
			if s.State == store.StateActive && !refused {
				// The vendor's trouble, not the connection's: syncs retry.
				desc += "; the connection stays ACTIVE and its syncs retry"
			} else {
				s.State = store.StatePending
			}
			s.Detail.Health = store.Health{Status: store.HealthFailed, ResolutionOwner: store.OwnerCustomer, UpdatedAt: now, Description: desc}
			return nil
		}
		if s.State == store.StatePending {
			s.State, kind = store.StateActive, store.SyncFull
		}
		s.Detail.Health = store.Health{Status: store.HealthHealthy, UpdatedAt: now}
		return nil
	})
	if uerr != nil {
		return nil, uerr
	}
	if err != nil {
		m.log.Info("connection test failed", zap.String("connection_id", c.ID), zap.String("organization_id", c.OrganizationID), zap.Error(err))
		return out, nil
	}
	if m.syncs != nil {
		if err := m.syncs.RequestSync(ctx, c.ID, kind); err != nil {
			m.log.Warn("requesting a sync after a connection test", zap.String("connection_id", c.ID), zap.String("kind", string(kind)), zap.Error(err))
		}
	}
	return out, nil
}
