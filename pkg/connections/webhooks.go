package connections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// webhookURL is the one URL of the app for the connection's site: Jira
// allows a single URL per app per site (JIRA.md §2), so connections sharing
// a site share the URL of the first one, and the receiver fans deliveries
// out to all of them.
func (m *Manager) webhookURL(ctx context.Context, c *store.Connection) (string, error) {
	if c.Detail.WebhookURL != "" {
		return c.Detail.WebhookURL, nil
	}
	peers, err := m.store.FindConnections(ctx, store.ConnectionQuery{CloudID: c.CloudID})
	if err != nil {
		return "", err
	}
	for _, p := range peers {
		if p.ID != c.ID && p.Detail.WebhookURL != "" {
			return p.Detail.WebhookURL, nil
		}
	}
	return m.cfg.PublicURL + "/webhooks/jira/" + c.ID, nil
}

func (m *Manager) jql(ctx context.Context, client *jiracloud.Client, c *store.Connection) (string, error) {
	keys := c.Options.ProjectKeysFilter
	if len(keys) == 0 {
		// Dynamic webhooks need a JQL filter within a small subset; "every
		// project" is expressed by listing them. Projects created later are
		// picked up at the next webhook refresh and by syncs meanwhile.
		var err error
		if keys, err = client.ProjectKeys(ctx); err != nil {
			return "", fmt.Errorf("list projects for the webhook filter: %w", err)
		}
		if len(keys) == 0 {
			return "", errors.New("the site has no projects the grant can see")
		}
	}
	return jiracloud.ProjectJQL(keys), nil
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
	client, err := m.Client(ctx, c)
	if err != nil {
		return err
	}
	return m.register(ctx, client, c)
}

func (m *Manager) register(ctx context.Context, client *jiracloud.Client, c *store.Connection) error {
	url, err := m.webhookURL(ctx, c)
	if err != nil {
		return err
	}
	jql, err := m.jql(ctx, client, c)
	if err != nil {
		return err
	}
	if old := webhookIDs(c); len(old) > 0 {
		if err := client.DeleteWebhooks(ctx, old); err != nil {
			return fmt.Errorf("remove old webhooks: %w", err)
		}
	}
	res, err := client.RegisterWebhooks(ctx, url, []jiracloud.WebhookSpec{{Events: jiracloud.DynamicEvents, JQLFilter: jql}})
	if err != nil {
		m.setHealth(ctx, c.ID, store.HealthDegraded, store.OwnerPlatform, "webhook registration failed; changes arrive by incremental sync only")
		return fmt.Errorf("register webhooks: %w", err)
	}
	if len(res[0].Errors) > 0 {
		m.setHealth(ctx, c.ID, store.HealthDegraded, store.OwnerPlatform,
			"Jira refused the webhook ("+strings.Join(res[0].Errors, "; ")+"); changes arrive by incremental sync only")
		return fmt.Errorf("register webhooks: %s", strings.Join(res[0].Errors, "; "))
	}
	expires := m.cfg.Now().Add(30 * 24 * time.Hour).UTC()
	if hooks, err := client.ListWebhooks(ctx); err == nil {
		for _, h := range hooks {
			if h.ID == res[0].CreatedWebhookID {
				expires = h.Expires()
			}
		}
	}
	_, err = m.update(ctx, "", c.ID, func(c *store.Connection) error {
		c.Detail.WebhookURL = url
		c.Detail.Webhooks = []store.WebhookRegistration{{ID: res[0].CreatedWebhookID, Events: jiracloud.DynamicEvents, JQL: jql, ExpiresAt: expires}}
		if c.Detail.Health.Status != store.HealthFailed {
			c.Detail.Health = store.Health{Status: store.HealthHealthy, UpdatedAt: m.cfg.Now().UTC()}
		}
		return nil
	})
	return err
}

// MaintainWebhooks is one pass of webhook upkeep over every active
// connection: refresh those expiring soon, re-register those Jira lost.
func (m *Manager) MaintainWebhooks(ctx context.Context) error {
	conns, err := m.store.FindConnections(ctx, store.ConnectionQuery{State: store.StateActive})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range conns {
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
	client, err := m.Client(ctx, c)
	if err != nil {
		return err
	}
	if len(c.Detail.Webhooks) == 0 {
		return m.register(ctx, client, c)
	}
	soon := m.cfg.Now().Add(m.cfg.WebhookRefreshBefore)
	due := false
	for _, w := range c.Detail.Webhooks {
		due = due || w.ExpiresAt.Before(soon)
	}
	if !due {
		return nil
	}
	// Refresh silently ignores ids Jira no longer knows, so check first.
	live, err := client.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	known := map[int64]bool{}
	for _, h := range live {
		known[h.ID] = true
	}
	for _, id := range webhookIDs(c) {
		if !known[id] {
			m.log.Info("webhook lost by Jira; registering again", zap.String("connection_id", c.ID), zap.Int64("webhook_id", id))
			c.Detail.Webhooks = nil
			return m.register(ctx, client, c)
		}
	}
	exp, err := client.RefreshWebhooks(ctx, webhookIDs(c))
	if err != nil {
		return err
	}
	_, err = m.update(ctx, "", c.ID, func(c *store.Connection) error {
		for i := range c.Detail.Webhooks {
			c.Detail.Webhooks[i].ExpiresAt = exp
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
