package app

import (
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasync"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsync"
	"github.com/itsmhub/itsm/services/backfill"
	"github.com/itsmhub/itsm/services/normalizer"
	"github.com/itsmhub/itsm/services/receiver"
)

// The vendors the platform runs with: only the wiring knows them.

// mappers are the vendor mappings the normalizer runs with, by RAW subject
// vendor token.
func mappers() map[string]normalizer.Mapper {
	return map[string]normalizer.Mapper{
		broker.VendorToken(jira.VendorName):       jira.Mapper{},
		broker.VendorToken(servicenow.VendorName): servicenow.Mapper{},
	}
}

// syncers are the vendor crawls the backfill worker runs, by connection
// vendor.
func (p *Platform) syncers(log *zap.Logger) map[string]backfill.Syncer {
	return map[string]backfill.Syncer{
		jira.VendorName:       jirasync.New(jirasync.Config{Endpoints: jiraEndpoints(p.cfg)}, p.mgr, log),
		servicenow.VendorName: snsync.New(snsync.Config{Clients: p.mgr}),
	}
}

// jiraConnector is Jira's connector of the connection lifecycle: the
// platform's Atlassian OAuth app.
func (p *Platform) jiraConnector() *jiraconn.Connector {
	return jiraconn.New(jiraconn.Config{Endpoints: jiraEndpoints(p.cfg),
		ClientID: p.cfg.JiraClientID, ClientSecret: p.cfg.JiraClientSecret, Now: p.now})
}

func jiraEndpoints(cfg config.Config) jiracloud.Endpoints {
	return jiracloud.Endpoints{AuthURL: cfg.JiraAuthURL, APIURL: cfg.JiraAPIURL}
}

// connectors are the vendors connections can be made to.
func (p *Platform) connectors() []connections.Connector {
	jc := p.jiraConnector()
	return []connections.Connector{
		{Vendor: jira.VendorName, Title: jiraconn.Title, Authorizer: jc, Webhooks: jc, Mappings: jc, Options: jiraconn.Options},
		p.serviceNow().Connector(),
	}
}

// serviceNow is ServiceNow's connector: instances of the customer's, with
// credentials the connection manager seals (loopback instances in dev
// mode, for simulators).
func (p *Platform) serviceNow() *snconn.Connector {
	if p.sn == nil {
		p.sn = snconn.New(snconn.Config{AllowLoopback: p.cfg.Dev, Secrets: p.credentials,
			PublicURL: func() string { return p.mgr.PublicURL() }, Now: p.now})
	}
	return p.sn
}

// credentials opens a connection's sealed credentials; the manager exists
// by the time a connector or verifier calls it.
func (p *Platform) credentials(c *store.Connection) (*connections.Credentials, error) {
	return p.mgr.Credentials(c)
}

// connectionEndpoints are vendors' additions to the connections API.
func (p *Platform) connectionEndpoints() []receiver.ConnectionEndpoint {
	return []receiver.ConnectionEndpoint{{Path: "servicenow/business-rule", Get: p.serviceNow().BusinessRule}}
}

// verifiers authenticate webhook deliveries, by vendor.
func (p *Platform) verifiers() (map[string]receiver.DeliveryVerifier, error) {
	jv, err := jiraconn.NewVerifier(jiraconn.VerifierConfig{ClientSecret: []byte(p.cfg.JiraClientSecret),
		SiteOptional: p.cfg.WebhookTokenSite == "if-present", Now: p.now})
	if err != nil {
		return nil, err
	}
	return map[string]receiver.DeliveryVerifier{jira.VendorName: jv, servicenow.VendorName: snconn.NewVerifier(p.credentials)}, nil
}
