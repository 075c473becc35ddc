package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
)

// What the manager needs of a vendor, by concern. The wiring passes one
// Connector per vendor (Config.Connectors); this package imports no vendor.

// Authorizer is a vendor's OAuth 2.0 authorization-code grant. Jira's is the
// platform's Atlassian app, the same for every connection; ServiceNow's is
// the connection's own instance (its /oauth_auth.do and /oauth_token.do,
// from the connection's options), which is why every call names the
// connection. Calls that reach the vendor get a ctx carrying the manager's
// HTTP client (oauth2.HTTPClient).
type Authorizer interface {
	// AuthCodeURL is where the customer consents to connection c; state
	// and redirectURL go through unchanged.
	AuthCodeURL(c *store.Connection, redirectURL, state string) string
	// Exchange trades an authorization code for tokens.
	Exchange(ctx context.Context, c *store.Connection, redirectURL, code string) (*oauth2.Token, error)
	// Sites lists the sites (instances) the grant of tok covers, in the
	// vendor's order; the manager picks the connection's one.
	Sites(ctx context.Context, c *store.Connection, tok *oauth2.Token) ([]store.Site, error)
	// RefreshToken trades a refresh token for new tokens. An
	// *oauth2.RetrieveError with the code invalid_grant means the vendor
	// no longer accepts the grant: the customer must reconnect.
	RefreshToken(ctx context.Context, c *store.Connection, refreshToken string) (*oauth2.Token, error)
}

// WebhookRegistrar keeps a vendor's registered webhooks (Jira's dynamic
// webhooks, which expire). A vendor whose pushes need no registration
// through its API (ServiceNow's business rule, which the operator installs)
// has none. hc authenticates as the connection (Manager.HTTPClient).
type WebhookRegistrar interface {
	// RegisterWebhooks replaces the connection's webhooks (if any) with
	// ones delivering to url, and returns what to store. An error wrapping
	// connector.ErrWebhookFailed or connector.ErrWebhookRefused shows in
	// the connection's health.
	RegisterWebhooks(ctx context.Context, c *store.Connection, hc *http.Client, url string) ([]store.WebhookRegistration, error)
	// RefreshWebhooks extends the webhooks' lives and returns them with
	// their new expiry; connector.ErrWebhookLost when the vendor lost one,
	// and the manager registers again.
	RefreshWebhooks(ctx context.Context, c *store.Connection, hc *http.Client) ([]store.WebhookRegistration, error)
	// DeleteWebhooks unregisters them.
	DeleteWebhooks(ctx context.Context, c *store.Connection, hc *http.Client) error
}

// MappingReporter is what the mappings report asks of a vendor.
type MappingReporter interface {
	// Catalog reads the statuses and priorities the vendor defines for the
	// connection now; hc authenticates as the connection.
	Catalog(ctx context.Context, c *store.Connection, hc *http.Client, now time.Time) (*store.Catalog, error)
	// MapCatalog says how the connection's options map each of cat's
	// statuses and priorities, as the normalizer's mapper would.
	MapCatalog(c *store.Connection, cat *store.Catalog) ([]connector.MappedStatus, []connector.MappedPriority)
}

// Configurer is a vendor whose connections carry settings and credentials
// of their own (ServiceNow: the instance, basic auth or the customer's
// OAuth app, the push secret).
type Configurer interface {
	// Configure checks the vendor's own options o and sets what follows
	// from them on c (SiteURL, Options.Auth); c.Options already holds the
	// validated common options. On create it returns the credentials the
	// manager seals with the connection (nil: none); on a patch (create
	// false) it must refuse what cannot change and returns nil.
	// Errors are *ValidationError (400) and never quote a secret.
	Configure(o Options, c *store.Connection, create bool) (*Credentials, error)
	// NewCredentials checks credentials a (the create request's
	// options.auth shape) that replace connection c's own, sets what follows
	// from them on c (Options.Auth) and returns the secrets to seal in place
	// of the current ones (their empty fields keep the current values).
	// Errors are *ValidationError naming the field (auth.password) and
	// never quote a secret.
	NewCredentials(a AuthOptions, c *store.Connection) (*Credentials, error)
}

// Prober tests a connection's access with one cheap authenticated call
// (hc authenticates as the connection). Its error becomes the connection's
// health, so it must say why in words and never quote a credential. An
// *AccessError says that the vendor refused the connection's access; any
// other error, that the vendor did not answer as it should.
type Prober interface {
	Probe(ctx context.Context, c *store.Connection, hc *http.Client) error
}

// AccessError is the vendor refusing a connection's access: its
// credentials, its account's role, or its grant. Nothing works until they change, so it takes
// the connection (back) to PENDING. A vendor that fails to answer does
// not: an ACTIVE connection stays ACTIVE, and its syncs go on retrying.
type AccessError struct {
	Reason string
	// Err, if set, is the sentinel it also is (ErrReauthorize).
	Err error
}

func (e *AccessError) Error() string { return e.Reason }
func (e *AccessError) Unwrap() error { return e.Err }

// Connector is one vendor as the manager sees it.
type Connector struct {
	// Vendor is the vendor's name on connections (store.Connection.Vendor,
	// "JIRA"); a create request names it case-insensitively.
	Vendor string
	// Title is the vendor's name in messages people read ("Jira").
	Title      string
	Authorizer Authorizer
	// Webhooks is nil for a vendor without webhook registration.
	Webhooks WebhookRegistrar
	Mappings MappingReporter
	// Options are the JSON names of the options the vendor's connections
	// take; a request setting any other is refused with a 400 naming it.
	Options []string
	// Setup is nil for a vendor with no settings of its own: its
	// connections wait for the platform app's OAuth consent.
	Setup Configurer
	// Prober is nil for a vendor whose connections are not tested.
	Prober Prober
}

// accepts refuses the options of o the vendor does not take.
func (c *Connector) accepts(o Options) error {
	for _, name := range o.set() {
		if !slices.Contains(c.Options, name) {
			return invalid("options."+name, "is not an option of %s connections (they take: %s)", c.Title, strings.Join(c.Options, ", "))
		}
	}
	return nil
}

func (c *Connector) check() error {
	switch {
	case c.Vendor == "" || c.Title == "":
		return errors.New("connections: a connector needs its vendor name and title")
	case c.Vendor != strings.ToUpper(c.Vendor):
		return fmt.Errorf("connections: vendor name %q must be upper case, as connections store it", c.Vendor)
	case c.Authorizer == nil:
		return fmt.Errorf("connections: connector %s has no authorizer", c.Vendor)
	case c.Mappings == nil:
		return fmt.Errorf("connections: connector %s has no mapping reporter", c.Vendor)
	case len(c.Options) == 0:
		return fmt.Errorf("connections: connector %s names no options", c.Vendor)
	}
	return nil
}

// connectors indexes the configured connectors by vendor name.
type connectors map[string]*Connector

func newConnectors(list []Connector) (connectors, error) {
	if len(list) == 0 {
		return nil, errors.New("connections: at least one vendor connector is required")
	}
	out := connectors{}
	for i := range list {
		c := list[i]
		if err := c.check(); err != nil {
			return nil, err
		}
		if out[c.Vendor] != nil {
			return nil, fmt.Errorf("connections: two connectors for vendor %s", c.Vendor)
		}
		out[c.Vendor] = &c
	}
	return out, nil
}

// of is the connector of a connection's vendor.
func (cs connectors) of(c *store.Connection) (*Connector, error) {
	if v := cs[c.Vendor]; v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("connection %s: no connector for vendor %q", c.ID, c.Vendor)
}

// parse resolves a create request's vendor name.
func (cs connectors) parse(name string) (*Connector, error) {
	if v := cs[strings.ToUpper(name)]; v != nil {
		return v, nil
	}
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, invalid("vendor", "unsupported vendor %q (supported: %s)", name, strings.Join(names, ", "))
}

// title names a connection's vendor in messages.
func (cs connectors) title(c *store.Connection) string {
	if v := cs[c.Vendor]; v != nil {
		return v.Title
	}
	return c.Vendor
}
