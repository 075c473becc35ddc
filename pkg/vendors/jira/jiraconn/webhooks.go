package jiraconn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// Jira's dynamic webhooks live 30 days unless refreshed (JIRA.md §2).
const webhookLife = 30 * 24 * time.Hour

// RegisterWebhooks replaces the connection's dynamic webhooks (if any) with
// one delivering the issue and comment events of its projects to url.
func (j *Connector) RegisterWebhooks(ctx context.Context, c *store.Connection, hc *http.Client, url string) ([]store.WebhookRegistration, error) {
	client, err := j.client(c, hc)
	if err != nil {
		return nil, err
	}
	jql, err := jql(ctx, client, c)
	if err != nil {
		return nil, err
	}
	if old := webhookIDs(c); len(old) > 0 {
		if err := client.DeleteWebhooks(ctx, old); err != nil {
			return nil, fmt.Errorf("remove old webhooks: %w", err)
		}
	}
	res, err := client.RegisterWebhooks(ctx, url, []jiracloud.WebhookSpec{{Events: jiracloud.DynamicEvents, JQLFilter: jql}})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", connector.ErrWebhookFailed, err)
	}
	if len(res[0].Errors) > 0 {
		return nil, &refusedError{reasons: res[0].Errors}
	}
	expires := j.cfg.Now().Add(webhookLife).UTC()
	if hooks, err := client.ListWebhooks(ctx); err == nil {
		for _, h := range hooks {
			if h.ID == res[0].CreatedWebhookID {
				expires = h.Expires()
			}
		}
	}
	return []store.WebhookRegistration{{ID: res[0].CreatedWebhookID, Events: jiracloud.DynamicEvents, JQL: jql, ExpiresAt: expires}}, nil
}

// refusedError is a registration Jira answered with reasons of its own.
type refusedError struct{ reasons []string }

func (e *refusedError) Error() string {
	return "Jira refused the webhook (" + strings.Join(e.reasons, "; ") + ")"
}

func (e *refusedError) Unwrap() error { return connector.ErrWebhookRefused }

func jql(ctx context.Context, client *jiracloud.Client, c *store.Connection) (string, error) {
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

// RefreshWebhooks extends the connection's webhooks by Jira's 30 days and
// returns them with their new expiry. Jira's refresh silently ignores ids
// it no longer knows, so they are checked first: a lost one is
// connector.ErrWebhookLost, and the caller registers again.
func (j *Connector) RefreshWebhooks(ctx context.Context, c *store.Connection, hc *http.Client) ([]store.WebhookRegistration, error) {
	client, err := j.client(c, hc)
	if err != nil {
		return nil, err
	}
	live, err := client.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	known := map[int64]bool{}
	for _, h := range live {
		known[h.ID] = true
	}
	for _, id := range webhookIDs(c) {
		if !known[id] {
			return nil, fmt.Errorf("webhook %d: %w", id, connector.ErrWebhookLost)
		}
	}
	exp, err := client.RefreshWebhooks(ctx, webhookIDs(c))
	if err != nil {
		return nil, err
	}
	out := append([]store.WebhookRegistration(nil), c.Detail.Webhooks...)
	for i := range out {
		out[i].ExpiresAt = exp
	}
	return out, nil
}

// DeleteWebhooks unregisters the connection's webhooks.
func (j *Connector) DeleteWebhooks(ctx context.Context, c *store.Connection, hc *http.Client) error {
	ids := webhookIDs(c)
	if len(ids) == 0 || c.CloudID == "" {
		return nil
	}
	client, err := j.client(c, hc)
	if err != nil {
		return err
	}
	return client.DeleteWebhooks(ctx, ids)
}

func webhookIDs(c *store.Connection) []int64 {
	ids := make([]int64, 0, len(c.Detail.Webhooks))
	for _, w := range c.Detail.Webhooks {
		ids = append(ids, w.ID)
	}
	return ids
}
