// Package snconn is ServiceNow's connector of the connection lifecycle
// (pkg/connections): a connection names its instance and brings its own
// credentials (basic auth, or the customer's OAuth application on the
// instance), is tested with one cheap Table API call, and receives pushes
// from a business rule signed with a per-connection secret, which the
// Verifier checks for the receiver.
package snconn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsync"
)

// Title names ServiceNow in messages people read.
const Title = "ServiceNow"

// Options are the options a ServiceNow connection takes
// (connections.Connector.Options).
var Options = []string{"instance_name", "instance_url", "auth", "tables", "priority_mapping", "status_mapping"}

// Secrets opens a connection's sealed credentials
// (connections.Manager.Credentials).
type Secrets func(c *store.Connection) (*connections.Credentials, error)

// Config of the connector.
type Config struct {
	// AllowLoopback accepts an instance_url on a loopback address (dev mode,
	// for simulators); otherwise only https://*.service-now.com.
	AllowLoopback bool
	// Secrets opens a connection's credentials; the wiring binds it to the
	// connection manager.
	Secrets Secrets
	// PublicURL is where the instance's business rule posts pushes.
	PublicURL func() string
	Now       func() time.Time
}

// Connector is ServiceNow's connections.Configurer, Prober, Authorizer and
// MappingReporter.
type Connector struct{ cfg Config }

// New is a Connector.
func New(cfg Config) *Connector {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Connector{cfg: cfg}
}

// Connector is the connections.Connector of ServiceNow.
func (x *Connector) Connector() connections.Connector {
	return connections.Connector{Vendor: servicenow.VendorName, Title: Title, Authorizer: x, Mappings: x,
		Options: Options, Setup: x, Prober: x}
}

// An instance name is a DNS label (dev12345, acme-prod).
var instanceName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// Configure checks the instance, the credentials and the tables; at
// create it returns the secrets to seal, with a new push secret.
func (x *Connector) Configure(o connections.Options, c *store.Connection, create bool) (*connections.Credentials, error) {
	if len(c.Options.Tables) == 0 {
		c.Options.Tables = []string{"incident"}
	} else if err := servicenow.ValidateTables(c.Options.Tables); err != nil {
		return nil, invalid("options.tables", "%v", err)
	}
	if !create {
		return nil, x.unchanged(o, c)
	}
	instance, err := x.instance(o)
	if err != nil {
		return nil, err
	}
	a := o.Auth
	if a == nil {
		return nil, invalid("options.auth", `required: {"type":"basic","username","password"} or {"type":"oauth","client_id","client_secret"}`)
	}
	cred := &connections.Credentials{PushSecret: newSecret()}
	switch strings.ToLower(a.Type) {
	case store.AuthBasic:
		if err := checkBasic(*a, "options.auth"); err != nil {
			return nil, err
		}
		c.Options.Auth = &store.ConnectionAuth{Type: store.AuthBasic, Username: a.Username}
		cred.Password = a.Password
	case store.AuthOAuth:
		switch {
		case strings.TrimSpace(a.ClientID) == "":
			return nil, invalid("options.auth.client_id", "required for oauth (the OAuth application registered on the instance)")
		case a.ClientSecret == "":
			return nil, invalid("options.auth.client_secret", "required for oauth")
		case a.Username != "" || a.Password != "":
			return nil, invalid("options.auth", "username and password belong to basic auth, not oauth")
		}
		c.Options.Auth = &store.ConnectionAuth{Type: store.AuthOAuth, ClientID: a.ClientID}
		cred.ClientSecret = a.ClientSecret
	default:
		return nil, invalid("options.auth.type", "want basic or oauth")
	}
	c.SiteURL = instance
	return cred, nil
}

// checkBasic checks basic-auth credentials a, at field (options.auth).
func checkBasic(a connections.AuthOptions, field string) error {
	switch {
	case strings.TrimSpace(a.Username) == "":
		return invalid(field+".username", "required for basic auth")
	case a.Password == "":
		return invalid(field+".password", "required for basic auth")
	case a.ClientID != "" || a.ClientSecret != "":
		return invalid(field, "client_id and client_secret belong to oauth, not basic auth")
	}
	return nil
}

// NewCredentials checks credentials replacing a connection's. Basic auth:
// the user name and the password, both given. OAuth: the client secret of
// the same application (a typo at create, a secret rotated on the
// instance); the grant stays, and is renewed with the new secret, or by
// authorizing again. The type stays.
func (x *Connector) NewCredentials(a connections.AuthOptions, c *store.Connection) (*connections.Credentials, error) {
	cur := c.Options.Auth
	switch {
	case cur == nil:
		return nil, invalid("auth", "the connection has no credentials to replace")
	case !strings.EqualFold(a.Type, cur.Type):
		return nil, invalid("auth.type", "want %s, the connection's; create a new connection to change it", cur.Type)
	case cur.Type == store.AuthOAuth:
		switch {
		case a.ClientID != "" && a.ClientID != cur.ClientID:
			return nil, invalid("auth.client_id", "an OAuth connection's application cannot be replaced; create a new connection to use another")
		case a.ClientSecret == "":
			return nil, invalid("auth.client_secret", "required: the application's new client secret")
		case a.Username != "" || a.Password != "":
			return nil, invalid("auth", "username and password belong to basic auth, not oauth")
		}
		return &connections.Credentials{ClientSecret: a.ClientSecret}, nil
	}
	if err := checkBasic(a, "auth"); err != nil {
		return nil, err
	}
	c.Options.Auth = &store.ConnectionAuth{Type: store.AuthBasic, Username: a.Username}
	return &connections.Credentials{Password: a.Password}, nil
}

// unchanged refuses a patch that would change the instance or the
// credentials; repeating them as a GET shows them (no secret) is fine.
func (x *Connector) unchanged(o connections.Options, c *store.Connection) error {
	if o.InstanceName != "" || o.InstanceURL != "" {
		if u, err := x.instance(o); err != nil || u != c.SiteURL {
			field := "options.instance_name"
			if o.InstanceURL != "" {
				field = "options.instance_url"
			}
			return invalid(field, "the instance cannot be changed; create a new connection instead")
		}
	}
	if a := o.Auth; a != nil {
		cur := c.Options.Auth
		if a.Password != "" || a.ClientSecret != "" || cur == nil || !strings.EqualFold(a.Type, cur.Type) ||
			a.Username != cur.Username || a.ClientID != cur.ClientID {
			return invalid("options.auth", "the credentials cannot be changed by a PATCH; replace a basic-auth password or an OAuth client secret with POST /v1/connections/{id}/test")
		}
	}
	return nil
}

// instance is the instance URL the options name.
func (x *Connector) instance(o connections.Options) (string, error) {
	switch {
	case o.InstanceName != "" && o.InstanceURL != "":
		return "", invalid("options.instance_url", "give instance_name or instance_url, not both")
	case o.InstanceName != "":
		if !instanceName.MatchString(o.InstanceName) {
			return "", invalid("options.instance_name", "want the instance's name, as in https://<name>.service-now.com (lower-case letters, digits, -)")
		}
		return "https://" + o.InstanceName + ".service-now.com", nil
	case o.InstanceURL != "":
		u, err := url.Parse(o.InstanceURL)
		if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", invalid("options.instance_url", "want an instance URL like https://acme.service-now.com")
		}
		host := strings.ToLower(u.Hostname())
		if u.Scheme == "https" && strings.HasSuffix(host, ".service-now.com") && instanceName.MatchString(strings.TrimSuffix(host, ".service-now.com")) && u.Port() == "" {
			return "https://" + host, nil
		}
		if x.cfg.AllowLoopback && (u.Scheme == "http" || u.Scheme == "https") && loopback(host) {
			return u.Scheme + "://" + u.Host, nil
		}
		if x.cfg.AllowLoopback {
			return "", invalid("options.instance_url", "want https://<name>.service-now.com, or a loopback URL (dev mode)")
		}
		return "", invalid("options.instance_url", "want https://<name>.service-now.com")
	}
	return "", invalid("options.instance_name", "required: the instance's name (or options.instance_url)")
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func invalid(field, format string, args ...any) error {
	return &connections.ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Probe reads one sys_id of the connection's first table, telling wrong
// credentials, a missing role and an unreachable instance apart.
func (x *Connector) Probe(ctx context.Context, c *store.Connection, hc *http.Client) error {
	cl, err := snclient.New(hc, c.SiteURL, snclient.Options{Retries: 1, MaxWait: 5 * time.Second, Now: x.cfg.Now})
	if err != nil {
		return err
	}
	// The first task table, then the journal: an account without itil may
	// see no rows of a task table (row-level ACLs answer 200 and nothing)
	// while the journal's table-level ACL answers 403.
	table := snsync.Tables(c)[0]
	err = cl.Ping(ctx, table)
	if err == nil {
		table = "sys_journal_field"
		err = cl.Ping(ctx, table)
	}
	var access *connections.AccessError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &access):
		// Refused at the token endpoint (the client secret, a revoked
		// grant), before the instance was read.
		return access
	case errors.Is(err, snclient.ErrUnauthorized):
		return &connections.AccessError{Reason: fmt.Sprintf("the instance refused the credentials (HTTP 401); check the %s", credentialWords(c))}
	case errors.Is(err, snclient.ErrForbidden):
		return &connections.AccessError{Reason: fmt.Sprintf("the account may not read %s (HTTP 403); give it the itil role", table)}
	case errors.Is(err, snclient.ErrUnreachable):
		return fmt.Errorf("the instance %s did not answer; check its name", c.SiteURL)
	}
	var api *snclient.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("the instance answered HTTP %d to a read of %s", api.Status, table)
	}
	return fmt.Errorf("reading %s: %w", table, err)
}

func credentialWords(c *store.Connection) string {
	if c.Options.Auth != nil && c.Options.Auth.Type == store.AuthOAuth {
		return "authorization (authorize again)"
	}
	return "user name and password"
}

// oauthConfig is the customer's OAuth application on the instance.
func (x *Connector) oauthConfig(c *store.Connection, redirectURL string, withSecret bool) (*oauth2.Config, error) {
	cfg := &oauth2.Config{RedirectURL: redirectURL,
		Endpoint: oauth2.Endpoint{AuthURL: c.SiteURL + "/oauth_auth.do", TokenURL: c.SiteURL + "/oauth_token.do"}}
	if c.Options.Auth != nil {
		cfg.ClientID = c.Options.Auth.ClientID
	}
	if withSecret {
		if x.cfg.Secrets == nil {
			return nil, errors.New("servicenow: no credential store configured")
		}
		cred, err := x.cfg.Secrets(c)
		if err != nil {
			return nil, err
		}
		cfg.ClientSecret = cred.ClientSecret
	}
	return cfg, nil
}

// AuthCodeURL is the instance's /oauth_auth.do.
func (x *Connector) AuthCodeURL(c *store.Connection, redirectURL, state string) string {
	cfg, _ := x.oauthConfig(c, redirectURL, false)
	return cfg.AuthCodeURL(state)
}

// Exchange trades a code at the instance's /oauth_token.do.
func (x *Connector) Exchange(ctx context.Context, c *store.Connection, redirectURL, code string) (*oauth2.Token, error) {
	cfg, err := x.oauthConfig(c, redirectURL, true)
	if err != nil {
		return nil, err
	}
	return cfg.Exchange(ctx, code)
}

// Sites is the connection's instance: a grant covers the instance that
// issued it.
func (x *Connector) Sites(_ context.Context, c *store.Connection, _ *oauth2.Token) ([]store.Site, error) {
	u, err := url.Parse(c.SiteURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("servicenow: connection %s has no instance URL", c.ID)
	}
	return []store.Site{{URL: c.SiteURL, Name: strings.TrimSuffix(u.Hostname(), ".service-now.com")}}, nil
}

// RefreshToken refreshes at the instance's /oauth_token.do.
func (x *Connector) RefreshToken(ctx context.Context, c *store.Connection, refreshToken string) (*oauth2.Token, error) {
	cfg, err := x.oauthConfig(c, "", true)
	if err != nil {
		return nil, err
	}
	return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// Catalog is the state catalog the last full sync read (sys_choice), or
// the built-in state codes of the connection's tables before one has.
func (x *Connector) Catalog(_ context.Context, c *store.Connection, _ *http.Client, now time.Time) (*store.Catalog, error) {
	if c.Detail.Catalog != nil && len(c.Detail.Catalog.Statuses) > 0 {
		return c.Detail.Catalog, nil
	}
	m := servicenow.MappingOf(c)
	cat := &store.Catalog{ReadAt: now.UTC(), Priorities: []string{"1", "2", "3", "4", "5"}}
	for _, table := range snsync.Tables(c) {
		for _, code := range servicenow.StateCodes(table) {
			cat.Statuses = append(cat.Statuses, store.CatalogStatus{Name: m.StateLabel(table, code), Category: table + ":" + code})
		}
	}
	return cat, nil
}

// MapCatalog maps each state ("<table>:<code>") and priority as the
// normalizer's mapper would.
func (x *Connector) MapCatalog(c *store.Connection, cat *store.Catalog) ([]connector.MappedStatus, []connector.MappedPriority) {
	m := servicenow.MappingOf(c)
	var sts []connector.MappedStatus
	for _, s := range cat.Statuses {
		table, code, _ := strings.Cut(s.Category, ":")
		st, by := m.MapStatus(table, code, "", false)
		sts = append(sts, connector.MappedStatus{Name: s.Name, Category: s.Category, Status: st, MappedBy: string(by)})
	}
	table := snsync.Tables(c)[0]
	prios := cat.Priorities
	if len(prios) == 0 {
		prios = []string{"1", "2", "3", "4", "5"}
	}
	var ps []connector.MappedPriority
	for _, p := range prios {
		pr, by := m.MapPriority(table, p)
		ps = append(ps, connector.MappedPriority{Name: p, Priority: pr, MappedBy: string(by)})
	}
	return sts, ps
}
