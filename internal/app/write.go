package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/idempotency"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirawrite"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snwrite"
	"github.com/itsmhub/itsm/services/receiver"
)

// mountWriteBack gives the receiver the vendors' write-back, native search
// and passthrough, by connection vendor. Only the wiring knows the vendors.
func (p *Platform) mountWriteBack(r *receiver.Server, reg prometheus.Registerer) error {
	w := jirawrite.New(jirawrite.Config{Endpoints: jiracloud.Endpoints{AuthURL: p.cfg.JiraAuthURL, APIURL: p.cfg.JiraAPIURL}, Now: p.now}, p.mgr)
	sn := snwrite.New(snwrite.Config{Now: p.now}, p.mgr)
	return r.MountWriteBack(receiver.WriteBack{
		Writers:      map[string]receiver.TicketWriter{jira.VendorName: w, servicenow.VendorName: sn},
		Searchers:    map[string]receiver.NativeSearcher{jira.VendorName: w, servicenow.VendorName: sn},
		Passthroughs: map[string]receiver.Passthrough{jira.VendorName: w, servicenow.VendorName: sn},
		Idempotency:  idempotency.New(p.jss[broker.UserReceiver], broker.KVIdempotency),
		Registerer:   reg,
	})
}
