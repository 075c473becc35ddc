package connections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
)

// webhookURL is the one URL of the app for the connection's site: Jira
// allows a single URL per app per site (JIRA.md §2), so connections sharing
// a site share the URL of the first one, and the receiver fans deliveries
// out to all of them. A connection without a site id has a URL of its own.
func (m *Manager) webhookURL(ctx context.Context, c *store.Connection) (string, error) {
	if c.Detail.WebhookURL != "" {
		return c.Detail.WebhookURL, nil
	}
	if c.CloudID != "" {
		peers, err := m.store.FindConnections(ctx, store.ConnectionQuery{CloudID: c.CloudID})
		if err != nil {
			return "", err
		}
		for _, p := range peers {
			if p.ID != c.ID && p.Detail.WebhookURL != "" {
				return p.Detail.WebhookURL, nil
			}
		}
	}
	return m.cfg.PublicURL + "/webhooks/" + broker.VendorToken(c.Vendor) + "/" + c.ID, nil
}

// replaceWebhooks (re-)registers the connection's webhook, replacing any it
// had, under a lease so that replicas do not register twice.
func (m *Manager) replaceWebhooks(ctx context.Context, connID string) error {
	l, err := m.leases.AcquireWait(ctx, "webhooks-"+connID, 50*time.Millisecond)
	if err != nil {
		return err
	}
	defer func() { _ = l.Release(context.WithoutCancel(ctx)) }()
	c, err := m.store.LookupConnection(ctx, connID)
	if err != nil {
		return err
	}
	v, err := m.vendor.of(c)
	if err != nil || v.Webhooks == nil {
		return err
	}
	return m.register(ctx, v, c)
}

func (m *Manager) register(ctx context.Context, v *Connector, c *store.Connection) error {
	url, err := m.webhookURL(ctx, c)
	if err != nil {
		return err
	}
	hc, err := m.HTTPClient(ctx, c)
	if err != nil {
		return err
	}
	regs, err := v.Webhooks.RegisterWebhooks(ctx, c, hc, url)
	switch {
	case errors.Is(err, connector.ErrWebhookRefused):
		m.setHealth(ctx, c.ID, store.HealthDegraded, store.OwnerPlatform, err.Error()+"; changes arrive by incremental sync only")
		return fmt.Errorf("register webhooks: %w", err)
	case errors.Is(err, connector.ErrWebhookFailed):
		m.setHealth(ctx, c.ID, store.HealthDegraded, store.OwnerPlatform, "webhook registration failed; changes arrive by incremental sync only")
		return fmt.Errorf("register webhooks: %w", err)
	case err != nil:
		return err
	}
	_, err = m.update(ctx, "", c.ID, func(c *store.Connection) error {
		c.Detail.WebhookURL = url
		c.Detail.Webhooks = regs
		if c.Detail.Health.Status != store.HealthFailed {
			c.Detail.Health = store.Health{Status: store.HealthHealthy, UpdatedAt: m.cfg.Now().UTC()}
		}
		return nil
	})
	return err
}

// MaintainWebhooks is one pass of webhook upkeep over every active
// connection: refresh those expiring soon, re-register those the vendor
// lost.
func (m *Manager) MaintainWebhooks(ctx context.Context) error {
	conns, err := m.store.FindConnections(ctx, store.ConnectionQuery{State: store.StateActive})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range conns {
		if v, err := m.vendor.of(c); err != nil || v.Webhooks == nil {
			continue // nothing to keep alive, or no connector to do it
		}
		if err := m.maintain(ctx, c.ID); err != nil && !errors.Is(err, lease.ErrHeld) {
			m.log.Warn("webhook upkeep", zap.String("connection_id", c.ID), zap.String("organization_id", c.OrganizationID), zap.Error(err))
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) maintain(ctx context.Context, connID string) error {
	l, err := m.leases.Acquire(ctx, "webhooks-"+connID)
	if err != nil {
		return err // another replica is on it
	}
	defer func() { _ = l.Release(context.WithoutCancel(ctx)) }()
	c, err := m.store.LookupConnection(ctx, connID)
	if err != nil || c.State != store.StateActive {
		return err
	}
	v, err := m.vendor.of(c)
	if err != nil {
		return err
	}
	if len(c.Detail.Webhooks) == 0 {
		return m.register(ctx, v, c)
	}
	soon := m.cfg.Now().Add(m.cfg.WebhookRefreshBefore)
	due := false
	for _, w := range c.Detail.Webhooks {
		due = due || w.ExpiresAt.Before(soon)
	}
	if !due {
		return nil
	}
	hc, err := m.HTTPClient(ctx, c)
	if err != nil {
		return err
	}
	regs, err := v.Webhooks.RefreshWebhooks(ctx, c, hc)
	if errors.Is(err, connector.ErrWebhookLost) {
		m.log.Info("webhook lost by the vendor; registering again", zap.String("connection_id", c.ID), zap.Error(err))
		c.Detail.Webhooks = nil
		return m.register(ctx, v, c)
	}
	if err != nil {
		return err
	}
	_, err = m.update(ctx, "", c.ID, func(c *store.Connection) error {
		// Only the expiry: a deletion meanwhile has dropped the webhooks.
		for i, w := range c.Detail.Webhooks {
			for _, r := range regs {
				if r.ID == w.ID {
					c.Detail.Webhooks[i].ExpiresAt = r.ExpiresAt
				}
			}
		}
		return nil
	})
	return err
}

// Run keeps webhooks alive, and discards unconfirmed consents, until ctx
// ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.WebhookCheckEvery)
	defer t.Stop()
	for {
		if err := m.DiscardExpiredConsents(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("discarding expired consents", zap.Error(err))
		}
		if err := m.MaintainWebhooks(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("webhook upkeep pass had errors", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
