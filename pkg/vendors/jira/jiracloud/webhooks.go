package jiracloud

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DynamicEvents are the webhook events the platform registers: the issue and
// comment events dynamic webhooks allow (JIRA.md §2). Projects, users,
// groups and attachments have no dynamic webhooks; syncs cover them.
var DynamicEvents = []string{"jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
	"comment_created", "comment_updated", "comment_deleted"}

// WebhookSpec is one webhook to register.
type WebhookSpec struct {
	Events    []string `json:"events"`
	JQLFilter string   `json:"jqlFilter"`
}

// Webhook is a registered webhook as Jira lists it.
type Webhook struct {
	ID             int64    `json:"id"`
	Events         []string `json:"events"`
	JQLFilter      string   `json:"jqlFilter"`
	ExpirationDate int64    `json:"expirationDate"`
	URL            string   `json:"url"`
}

// Expires is the webhook's expiry time.
func (w Webhook) Expires() time.Time { return time.UnixMilli(w.ExpirationDate).UTC() }

// RegistrationResult is Jira's per-webhook answer, in request order; a 200
// can still carry errors for some items.
type RegistrationResult struct {
	CreatedWebhookID int64    `json:"createdWebhookId"`
	Errors           []string `json:"errors"`
}

// RegisterWebhooks registers hooks under the app's single URL for the site.
func (c *Client) RegisterWebhooks(ctx context.Context, hookURL string, hooks []WebhookSpec) ([]RegistrationResult, error) {
	var out struct {
		Results []RegistrationResult `json:"webhookRegistrationResult"`
	}
	in := map[string]any{"url": hookURL, "webhooks": hooks}
	if err := c.Do(ctx, http.MethodPost, "/webhook", in, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(hooks) {
		return nil, fmt.Errorf("register webhooks: %d results for %d webhooks", len(out.Results), len(hooks))
	}
	return out.Results, nil
}

// ListWebhooks pages through the app's webhooks on the site.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var all []Webhook
	for start := 0; ; {
		var page struct {
			Values []Webhook `json:"values"`
			IsLast bool      `json:"isLast"`
		}
		q := url.Values{"startAt": {strconv.Itoa(start)}, "maxResults": {"100"}}
		if err := c.Do(ctx, http.MethodGet, "/webhook?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Values...)
		if page.IsLast || len(page.Values) == 0 {
			return all, nil
		}
		start += len(page.Values)
	}
}

// RefreshWebhooks extends the webhooks' life; Jira silently ignores ids it
// does not know, so callers must check ListWebhooks to find lost ones.
func (c *Client) RefreshWebhooks(ctx context.Context, ids []int64) (time.Time, error) {
	var out struct {
		ExpirationDate int64 `json:"expirationDate"`
	}
	if err := c.Do(ctx, http.MethodPut, "/webhook/refresh", map[string]any{"webhookIds": ids}, &out); err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(out.ExpirationDate).UTC(), nil
}

// DeleteWebhooks removes webhooks; unknown ids are ignored by Jira.
func (c *Client) DeleteWebhooks(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return c.Do(ctx, http.MethodDelete, "/webhook", map[string]any{"webhookIds": ids}, nil)
}

// ProjectJQL is the webhook filter for a set of project keys, within the
// JQL subset dynamic webhooks accept (field project, operator IN).
func ProjectJQL(keys []string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(k)
	}
	return "project IN (" + strings.Join(quoted, ", ") + ")"
}
