package load

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
)

// Vendors the generator speaks: Jira's dynamic webhooks (JWT-signed) and
// ServiceNow's business-rule pushes (HMAC-signed bodies).
const (
	VendorJira       = "jira"
	VendorServiceNow = "servicenow"
)

// snTime is the Table API's date-time layout (UTC).
const snTime = "2006-01-02 15:04:05"

var snStates = []string{"1", "2", "3", "6"}

// snPush renders a ServiceNow push of an incident update carrying its
// record (the business rule with "include the record"), padded to about
// cfg.BodyBytes. Version seq is one second after seq-1: sys_updated_on has
// second precision, and sys_mod_count counts the updates.
func snPush(cfg Config, seq int, sysID, number string) []byte {
	at := time.UnixMilli(cfg.VersionBase).Add(time.Duration(seq) * time.Second).UTC().Format(snTime)
	created := time.UnixMilli(cfg.VersionBase).Add(-time.Hour).UTC().Format(snTime)
	inst := strings.TrimSuffix(cfg.Site, "/")
	ref := func(table, id string) string {
		return `{"link":"` + inst + `/api/now/table/` + table + `/` + id + `","value":"` + id + `"}`
	}
	head := `{"table":"incident","sys_id":"` + sysID + `","operation":"update","sys_updated_on":"` + at + `",` +
		`"record":{"sys_id":"` + sysID + `","number":"` + number + `","sys_class_name":"incident",` +
		`"short_description":"load ` + number + ` #` + strconv.Itoa(seq) + `","state":"` + snStates[seq%len(snStates)] + `",` +
		`"hold_reason":"","priority":"3","impact":"2","urgency":"2","active":"true",` +
		`"opened_by":` + ref("sys_user", "6816f79cc0a8016401c5a33be04be441") + `,"assigned_to":"","parent":"",` +
		`"opened_at":"` + created + `","sys_created_on":"` + created + `","sys_updated_on":"` + at + `",` +
		`"sys_mod_count":"` + strconv.Itoa(seq) + `","sys_updated_by":"load","due_date":"","closed_at":"","description":"`
	tail := `"}}`
	return pad(head, tail, cfg.BodyBytes)
}

// snVersion is the version the platform gives a push body: the mapping's
// own, so the generator never restates its rule.
func snVersion(cfg Config, body []byte) (int64, error) {
	recs, err := servicenow.Mapper{}.MapWebhook(&store.Connection{ID: cfg.Conn, SiteURL: cfg.Site}, body)
	if err != nil {
		return 0, err
	}
	if len(recs) != 1 {
		return 0, fmt.Errorf("a push maps to %d records", len(recs))
	}
	return recs[0].Version.UnixMilli(), nil
}
