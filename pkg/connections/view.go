package connections

import (
	"time"

	"github.com/itsmhub/itsm/pkg/store"
)

// View is a connection as the API shows it: never its secrets.
type View struct {
	ID                  string                `json:"id"`
	Vendor              string                `json:"vendor"`
	OrganizationID      string                `json:"organization_id"`
	State               store.ConnectionState `json:"state"`
	IsActive            bool                  `json:"is_active"`
	RefreshIntervalSecs int                   `json:"refresh_interval_secs"`
	TimeoutSecs         int                   `json:"timeout_secs"`
	Options             Options               `json:"options"`
	SiteURL             string                `json:"site_url,omitempty"`
	Health              store.Health          `json:"health"`
	Webhooks            []WebhookView         `json:"webhooks"`
	Sites               []store.Site          `json:"sites,omitempty"`
	LastSync            *store.SyncState      `json:"last_sync,omitempty"`
	OAuth2AuthorizeURL  string                `json:"oauth2_authorize_url,omitempty"`
	// PendingConsent is a Jira grant waiting for the administrator's
	// confirmation on the consent page.
	PendingConsent *PendingConsentView `json:"pending_consent,omitempty"`
	CreatedAt      time.Time           `json:"created_at"`
	UpdatedAt      time.Time           `json:"updated_at"`
}

// PendingConsentView is what a pending consent shows: never its tokens.
type PendingConsentView struct {
	SiteURL   string    `json:"site_url"`
	SiteName  string    `json:"site_name,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WebhookView is a registered webhook.
type WebhookView struct {
	ID        int64     `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NewView renders c; authorizeURL is set only when one was just issued.
func NewView(c *store.Connection, authorizeURL string) View {
	v := View{
		ID: c.ID, Vendor: c.Vendor, OrganizationID: c.OrganizationID, State: c.State,
		IsActive: c.State == store.StateActive, RefreshIntervalSecs: c.RefreshIntervalSecs, TimeoutSecs: c.TimeoutSecs,
		Options: fromStore(c.Options), SiteURL: c.SiteURL, Health: c.Detail.Health, Sites: c.Detail.Sites,
		LastSync: publicSync(c.Detail.LastSync), OAuth2AuthorizeURL: authorizeURL, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		Webhooks: []WebhookView{},
	}
	if p := c.Detail.Consent; p != nil {
		v.PendingConsent = &PendingConsentView{SiteURL: p.SiteURL, SiteName: p.SiteName, ExpiresAt: p.ExpiresAt}
	}
	for _, w := range c.Detail.Webhooks {
		v.Webhooks = append(v.Webhooks, WebhookView{ID: w.ID, ExpiresAt: w.ExpiresAt})
	}
	return v
}

// publicSync drops the checkpoint: it is the workers' resume state, opaque
// and subject to change, not part of the API.
func publicSync(s *store.SyncState) *store.SyncState {
	if s == nil {
		return nil
	}
	c := *s
	c.Checkpoint = ""
	return &c
}
