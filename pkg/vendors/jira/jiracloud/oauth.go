// Package jiracloud is the platform's client of Jira Cloud: OAuth 2.0 (3LO)
// against auth.atlassian.com, and the REST API v3 through the
// api.atlassian.com gateway (JIRA.md §1). Base URLs are configurable so that
// tests and the demo talk to the project's simulator.
package jiracloud

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"golang.org/x/oauth2"
)

// Scopes the platform asks for (JIRA.md §1, §8); offline_access is what
// makes Atlassian issue a refresh token.
var Scopes = []string{"read:jira-work", "write:jira-work", "read:jira-user",
	"manage:jira-configuration", "manage:jira-webhook", "offline_access"}

// Endpoints of Atlassian's cloud; override for the simulator.
type Endpoints struct {
	// AuthURL is the authorization server (https://auth.atlassian.com).
	AuthURL string
	// APIURL is the API gateway (https://api.atlassian.com).
	APIURL string
}

// DefaultEndpoints are Atlassian's production URLs.
var DefaultEndpoints = Endpoints{AuthURL: "https://auth.atlassian.com", APIURL: "https://api.atlassian.com"}

// OAuthConfig builds the golang.org/x/oauth2 configuration of the app.
func OAuthConfig(ep Endpoints, clientID, clientSecret, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL, Scopes: Scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL: strings.TrimRight(ep.AuthURL, "/") + "/authorize",
			// The secret goes in the body, as Atlassian documents it.
			TokenURL: strings.TrimRight(ep.AuthURL, "/") + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// AuthCodeURL is where the customer consents. audience and prompt=consent
// are what Atlassian's 3LO documentation asks for.
func AuthCodeURL(cfg *oauth2.Config, state string) string {
	return cfg.AuthCodeURL(state, oauth2.SetAuthURLParam("audience", "api.atlassian.com"),
		oauth2.SetAuthURLParam("prompt", "consent"))
}

// Resource is a site a grant covers.
type Resource struct {
	ID     string   `json:"id"` // the cloud id
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Scopes []string `json:"scopes"`
}

// AccessibleResources lists the sites the token's grant covers.
func AccessibleResources(ctx context.Context, ep Endpoints, hc *http.Client) ([]Resource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(ep.APIURL, "/")+"/oauth/token/accessible-resources", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("accessible-resources: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("accessible-resources: %w", apiError(resp))
	}
	var out []Resource
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("accessible-resources: decode: %w", err)
	}
	return out, nil
}
