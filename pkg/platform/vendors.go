package platform

import (
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/services/normalizer"
	"github.com/itsmhub/itsm/services/receiver"
)

// The vendors the platform runs with: only the wiring knows them.

// mappers are the vendor mappings the normalizer runs with, by RAW subject
// vendor token.
func mappers() map[string]normalizer.Mapper {
	return map[string]normalizer.Mapper{broker.VendorToken(jira.VendorName): jira.Mapper{}}
}

// verifiers authenticate webhook deliveries, by vendor.
func (p *Platform) verifiers() (map[string]receiver.DeliveryVerifier, error) {
	jv, err := jiraconn.NewVerifier(jiraconn.VerifierConfig{ClientSecret: []byte(p.cfg.JiraClientSecret),
		SiteOptional: p.cfg.WebhookTokenSite == "if-present", Now: p.now})
	if err != nil {
		return nil, err
	}
	return map[string]receiver.DeliveryVerifier{jira.VendorName: jv}, nil
}
