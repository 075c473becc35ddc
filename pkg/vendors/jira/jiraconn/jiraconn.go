// Package jiraconn is Jira's connector for the connection lifecycle and the
// receiver: OAuth 2.0 (3LO) with the site pick of the grant's accessible
// resources, token refresh, the dynamic webhooks (registered, refreshed
// before their 30 days run out, deleted), the mapping report, and the
// verification of webhook deliveries (a JWT signed with the app's client
// secret). It implements the interfaces pkg/connections and
// services/receiver declare; only the wiring imports it.
package jiraconn

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// Config is the platform's Atlassian OAuth app.
type Config struct {
	Endpoints    jiracloud.Endpoints
	ClientID     string
	ClientSecret string
	// Now is the clock a webhook's default expiry is computed on (time.Now
	// when nil).
	Now func() time.Time
}

// Connector is Jira's connections.Authorizer, connections.WebhookRegistrar
// and connections.MappingReporter.
type Connector struct {
	cfg Config
}

// New builds Jira's connector.
func New(cfg Config) *Connector {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Connector{cfg: cfg}
}

// Title is Jira's name as people read it.
const Title = "Jira"

// Options are the options a Jira connection takes
// (connections.Connector.Options).
var Options = []string{"project_keys_filter", "priority_mapping", "status_mapping", "site_url"}

func (j *Connector) oauth(redirectURL string) *oauth2.Config {
	return jiracloud.OAuthConfig(j.cfg.Endpoints, j.cfg.ClientID, j.cfg.ClientSecret, redirectURL)
}

// AuthCodeURL is where the customer consents on Atlassian's screen.
func (j *Connector) AuthCodeURL(_ *store.Connection, redirectURL, state string) string {
	return jiracloud.AuthCodeURL(j.oauth(redirectURL), state)
}

// Exchange trades an authorization code for the grant's tokens.
func (j *Connector) Exchange(ctx context.Context, _ *store.Connection, redirectURL, code string) (*oauth2.Token, error) {
	return j.oauth(redirectURL).Exchange(ctx, code)
}

// Sites lists the Jira sites the grant covers (its accessible resources).
func (j *Connector) Sites(ctx context.Context, _ *store.Connection, tok *oauth2.Token) ([]store.Site, error) {
	res, err := jiracloud.AccessibleResources(ctx, j.cfg.Endpoints, j.oauth("").Client(ctx, tok))
	if err != nil {
		return nil, err
	}
	sites := make([]store.Site, 0, len(res))
	for _, r := range res {
		sites = append(sites, store.Site{CloudID: r.ID, URL: r.URL, Name: r.Name})
	}
	return sites, nil
}

// RefreshToken trades a refresh token for new tokens; Atlassian rotates the
// refresh token with each.
func (j *Connector) RefreshToken(ctx context.Context, _ *store.Connection, refreshToken string) (*oauth2.Token, error) {
	return j.oauth("").TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// client is a REST client of the connection's site on hc, which
// authenticates as the connection.
func (j *Connector) client(c *store.Connection, hc *http.Client) (*jiracloud.Client, error) {
	if c.CloudID == "" {
		return nil, fmt.Errorf("connection %s has no Jira site yet", c.ID)
	}
	return jiracloud.NewClient(j.cfg.Endpoints, c.CloudID, hc), nil
}
