package platform

import (
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasync"
	"github.com/itsmhub/itsm/services/backfill"
	"github.com/itsmhub/itsm/services/normalizer"
)

// mappers are the vendor mappings the normalizer runs with, by RAW subject
// vendor token. Only the wiring knows the vendors.
func mappers() map[string]normalizer.Mapper {
	return map[string]normalizer.Mapper{broker.VendorToken(jira.VendorName): jira.Mapper{}}
}

// syncers are the vendor crawls the backfill worker runs, by connection
// vendor.
func (p *Platform) syncers(log *zap.Logger) map[string]backfill.Syncer {
	return map[string]backfill.Syncer{
		jira.VendorName: jirasync.New(jirasync.Config{Endpoints: p.jiraEndpoints()}, p.mgr, log),
	}
}

// jiraEndpoints locate Jira Cloud (a simulator's in dev and tests).
func (p *Platform) jiraEndpoints() jiracloud.Endpoints {
	return jiracloud.Endpoints{AuthURL: p.cfg.JiraAuthURL, APIURL: p.cfg.JiraAPIURL}
}
