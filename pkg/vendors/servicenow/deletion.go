package servicenow

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Deletion maps a sys_audit_delete row (tablename, documentkey,
// sys_created_on = when; payload = the deleted record as unload XML) to a
// tombstone of the deleted record. The fields of sys_audit_delete are
// unconfirmed (SERVICENOW.md §4): when the payload cannot be read, the
// tombstone carries only what identifies the record.
func (m *Mapping) Deletion(r Row) (itsm.Record, error) {
	table, key := r.Str("tablename"), r.Str("documentkey")
	if table == "" || key == "" {
		return itsm.Record{}, fmt.Errorf("%w: deletion without tablename or documentkey", itsm.ErrMalformed)
	}
	at, ok := r.Time("sys_created_on")
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: deletion of %s %s: missing or unparseable sys_created_on", itsm.ErrMalformed, table, key)
	}
	if row, ok := unloadRow(r.Str("payload"), table); ok && row.Str("sys_id") == key {
		rec, err := m.mapRow(table, row, at, at)
		if err == nil || errors.Is(err, itsm.ErrUnsupportedEvent) {
			// A row the platform never maps (a journal entry of another
			// element) needs no tombstone either.
			return rec, err
		}
	}
	return m.Tombstone(table, key, at)
}

// Tombstone is the tombstone of a record known only by table and sys_id,
// deleted at "at". Its object holds the id, the DELETED status and the
// vendor ids, and vendor_attributes.partial_tombstone = true: a writer
// that keeps the stored copy's other fields should (the normalizer writes
// the object as it is, so the stored copy keeps nothing else, and a
// comment's or attachment's ticket_id is empty).
func (m *Mapping) Tombstone(table, sysID string, at time.Time) (itsm.Record, error) {
	kind := KindOfTable(table)
	if kind == "" {
		return itsm.Record{}, fmt.Errorf("%w: deletion in table %q", itsm.ErrUnsupportedEvent, table)
	}
	if sysID == "" || at.IsZero() {
		return itsm.Record{}, fmt.Errorf("%w: deletion without sys_id or time", itsm.ErrMalformed)
	}
	id := itsm.ObjectID(m.conn(), kind, sysID)
	attrs := itsm.VendorAttributes{"vendor": VendorName, "sys_id": sysID, "table": table, "deleted": true, "partial_tombstone": true}
	var obj itsm.Object
	switch kind {
	case itsm.KindTicket:
		obj = &itsm.Ticket{ID: id, Status: itsm.StatusDeleted, Priority: itsm.PriorityUnknown, Tags: []string{},
			URL: RecordURL(m.InstanceURL, table, sysID), VendorAttributes: attrs}
	case itsm.KindComment:
		obj = &itsm.Comment{ID: id, Status: itsm.ObjectDeleted, VendorAttributes: attrs}
	case itsm.KindAttachment:
		obj = &itsm.Attachment{ID: id, Status: itsm.ObjectDeleted, VendorAttributes: attrs}
	case itsm.KindUser:
		obj = &itsm.User{ID: id, Status: itsm.ObjectDeleted, VendorAttributes: attrs}
	case itsm.KindGroup:
		obj = &itsm.Group{ID: id, Status: itsm.ObjectDeleted, MemberUserIDs: []string{}, VendorAttributes: attrs}
	}
	return itsm.Record{Kind: kind, ID: id, Version: deletionVersion(at), Deleted: true, Object: obj}, nil
}

// unloadRow reads the record of an unload XML payload
// (<record_update table="t"><t><field>value</field>...</t></record_update>)
// as a Row of string values.
func unloadRow(payload, table string) (Row, bool) {
	if strings.TrimSpace(payload) == "" {
		return nil, false
	}
	d := xml.NewDecoder(strings.NewReader(payload))
	row := Row{}
	depth, inRecord := 0, false
	var field string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && t.Name.Local == table:
				inRecord = true
			case depth == 3 && inRecord:
				field = t.Name.Local
				text.Reset()
			}
		case xml.CharData:
			if field != "" {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 3 && field != "" {
				b, _ := json.Marshal(text.String())
				row[field] = b
				field = ""
			}
			if depth == 2 {
				inRecord = false
			}
			depth--
		}
	}
	return row, len(row) > 0
}
