// Package raw is the contract of the RAW stream's messages, which the
// receiver and the backfill worker write and the normalizer reads: the sync
// record envelope and its one codec, the record types, and the headers every
// message carries. (Subjects are pkg/broker's, with the streams.)
package raw

import (
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/jsonscan"
)

// Record types: what a SyncRecord holds.
const (
	TypeIssue = "issue"
	// TypeTicket is a ticket of a vendor whose tickets are not Jira issues
	// (a ServiceNow task record).
	TypeTicket     = "ticket"
	TypeComment    = "comment"
	TypeProject    = "project"
	TypeUser       = "user"
	TypeGroup      = "group"
	TypeAttachment = "attachment"
	// TypeDeletion is a vendor's record of a deletion (a ServiceNow
	// sys_audit_delete row): the mapping makes a tombstone of it.
	TypeDeletion = "deletion"
	// TypeReconcile marks the end of a complete full sync.
	TypeReconcile = "reconcile"
)

// SyncRecord is the body of a raw.<vendor>.<connection>.sync message: one
// record as a sync fetched it from the vendor's API, or a reconcile marker.
type SyncRecord struct {
	// Type is a record type (TypeIssue ...), or TypeReconcile.
	Type string `json:"type"`
	// IssueID is the parent issue of a comment or attachment.
	IssueID string `json:"issue_id,omitempty"`
	// ObservedAt versions records that carry no modification time, and is
	// the time of a reconcile marker's tombstones.
	ObservedAt time.Time `json:"observed_at"`
	// SyncID is set on every record of a FULL sync (never on incremental
	// ones): the normalizer records that the sync saw the object.
	SyncID string          `json:"sync_id,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`

	// Reconcile marker only: the sync that COMPLETED, when it started, and
	// the object kinds it covered completely. Objects of those kinds of the
	// connection that the sync did not see, and that nothing changed since
	// it started, are tombstoned.
	StartedAt time.Time   `json:"started_at,omitempty"`
	Kinds     []itsm.Kind `json:"kinds,omitempty"`
	// Hidden are kinds whose unseen objects are marked "no longer visible"
	// instead (connector.SyncRun.HideUnseen): the connector read their
	// deletions from the vendor's delete log.
	Hidden []itsm.Kind `json:"hidden,omitempty"`
}

// AppendSyncRecord renders a SyncRecord holding a record by hand:
// json.Marshal would re-validate and compact the (already compact, already
// validated) record, a full pass over every record of a sync. A test keeps
// it equal to json.Marshal.
func AppendSyncRecord(dst []byte, typ, issueID, syncID string, observed time.Time, record []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, typ)
	if issueID != "" {
		dst = append(dst, `,"issue_id":`...)
		dst = appendString(dst, issueID)
	}
	dst = append(dst, `,"observed_at":"`...)
	dst = observed.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if syncID != "" {
		dst = append(dst, `,"sync_id":`...)
		dst = appendString(dst, syncID)
	}
	dst = append(dst, `,"record":`...)
	dst = append(dst, record...)
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// DecodeSyncRecord reads a sync message's envelope. The record inside it is
// sliced, not validated or copied: the mapping's decode of it is its syntax
// check. Anything but AppendSyncRecord's encoding (escaped or unknown names,
// values of the wrong type, malformed input) goes through json.Unmarshal,
// whose error names the problem.
func DecodeSyncRecord(data []byte) (SyncRecord, error) {
	var sr SyncRecord
	if decodeEnvelope(data, &sr) {
		return sr, nil
	}
	sr = SyncRecord{}
	err := json.Unmarshal(data, &sr)
	return sr, err
}

// decodeEnvelope decodes data into sr as json.Unmarshal would, but for the
// record's validity, or reports false for anything it leaves to
// json.Unmarshal.
func decodeEnvelope(data []byte, sr *SyncRecord) bool {
	str := func(v []byte, dst *string) bool {
		s, ok := jsonscan.Unescaped(v)
		*dst = string(s)
		return ok
	}
	end := jsonscan.Members(data, func(m jsonscan.Member) bool {
		key, ok := jsonscan.Unescaped(m.Name)
		if !ok {
			return false
		}
		v := m.Value
		switch string(key) {
		case "type":
			return str(v, &sr.Type)
		case "issue_id":
			return str(v, &sr.IssueID)
		case "sync_id":
			return str(v, &sr.SyncID)
		case "record":
			sr.Record = v
			return true
		case "observed_at":
			return json.Unmarshal(v, &sr.ObservedAt) == nil
		case "started_at":
			return json.Unmarshal(v, &sr.StartedAt) == nil
		case "kinds":
			return json.Unmarshal(v, &sr.Kinds) == nil
		case "hidden":
			return json.Unmarshal(v, &sr.Hidden) == nil
		}
		return false
	})
	return end >= 0 && jsonscan.SkipSpace(data, end) == len(data)
}

// SetHeaders sets the headers every RAW message carries.
func SetHeaders(h nats.Header, organizationID, connectionID, vendor string) {
	h.Set(itsm.HeaderOrganization, organizationID)
	h.Set(itsm.HeaderConnection, connectionID)
	h.Set(itsm.HeaderVendor, vendor)
}
