package platform

import (
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/services/normalizer"
)

// mappers are the vendor mappings the normalizer runs with, by RAW subject
// vendor token. Only the wiring knows the vendors.
func mappers() map[string]normalizer.Mapper {
	return map[string]normalizer.Mapper{broker.VendorToken(jira.VendorName): jira.Mapper{}}
}
