package servicenow

import (
	"fmt"
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// Mapper maps the RAW records of ServiceNow connections (subjects
// raw.servicenow.*) with each connection's options; it has the method set
// of the normalizer's Mapper. It holds no state.
type Mapper struct{}

// MapWebhook maps one push body (the business rule's, see ParsePush). A
// delete is a tombstone (of the record as it was when the push carries it);
// an insert or update maps its record. A push without its record, or of a
// group or group membership (whose members the record does not carry),
// returns a *RereadError naming what to re-read.
func (Mapper) MapWebhook(conn *store.Connection, body []byte) ([]itsm.Record, error) {
	recs, err := MappingOf(conn).MapPush(body)
	if err != nil {
		return nil, fmt.Errorf("servicenow: %w", err)
	}
	return recs, nil
}

// MapSync maps one record a sync fetched (raw.TypeTicket, TypeComment,
// TypeAttachment, TypeUser, TypeGroup or TypeDeletion).
func (Mapper) MapSync(conn *store.Connection, sr raw.SyncRecord) ([]itsm.Record, error) {
	recs, err := MappingOf(conn).MapSync(sr.Type, sr.Record, sr.ObservedAt)
	if err != nil {
		return nil, fmt.Errorf("servicenow: %w", err)
	}
	return recs, nil
}

// Remap maps a stored ticket's state, hold reason and priority (its vendor
// attributes) again with conn's current mapping and reports whether its
// status or priority changed.
func (Mapper) Remap(conn *store.Connection, t *itsm.Ticket) bool {
	return MappingOf(conn).Remap(t)
}

// MapSync maps one record of the given RAW type; observed versions groups.
func (m *Mapping) MapSync(typ string, body []byte, observed time.Time) ([]itsm.Record, error) {
	r, err := DecodeRow(body)
	if err == nil {
		err = checkShape(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%s record: %w", typ, err)
	}
	if observed.IsZero() {
		observed = time.Now()
	}
	var rec itsm.Record
	switch typ {
	case raw.TypeTicket:
		rec, err = m.Ticket(r, time.Time{})
	case raw.TypeComment:
		rec, err = m.Comment(r, time.Time{})
	case raw.TypeAttachment:
		rec, err = m.Attachment(r, time.Time{})
	case raw.TypeUser:
		rec, err = m.User(r, time.Time{})
	case raw.TypeGroup:
		rec, err = m.Group(r, observed, time.Time{})
	case raw.TypeDeletion:
		rec, err = m.Deletion(r)
	default:
		return nil, fmt.Errorf("%w: unknown record type %q", itsm.ErrMalformed, typ)
	}
	if err != nil {
		return nil, err
	}
	return []itsm.Record{rec}, nil
}

// MapPush maps a push body (see Mapper.MapWebhook).
func (m *Mapping) MapPush(body []byte) ([]itsm.Record, error) {
	p, err := ParsePush(body)
	if err != nil {
		return nil, err
	}
	switch p.Table {
	case "sys_user_group", "sys_user_grmember", "label_entry":
		if p.Operation == "delete" && p.Table == "sys_user_group" {
			break
		}
		table, id := p.Table, p.SysID
		if p.Table != "sys_user_group" {
			// A membership or tag changes its group or ticket: re-read that.
			if p.Partial() {
				return nil, fmt.Errorf("%w: %s push without record", itsm.ErrUnsupportedEvent, p.Table)
			}
			r, err := DecodeRow(p.Record)
			if err != nil {
				return nil, err
			}
			if p.Table == "sys_user_grmember" {
				table, id = "sys_user_group", r.Str("group")
			} else {
				table, id = r.Str("table"), r.Str("table_key")
			}
		}
		return nil, &RereadError{Table: table, SysID: id, Why: "the record maps only with what a sync reads beside it"}
	}
	if KindOfTable(p.Table) == "" {
		return nil, fmt.Errorf("%w: push of table %q", itsm.ErrUnsupportedEvent, p.Table)
	}
	at, atOK := parseTime(p.SysUpdatedOn)
	if p.Operation == "delete" {
		if !atOK {
			return nil, fmt.Errorf("%w: delete push of %s %s: missing or unparseable sys_updated_on %q", itsm.ErrMalformed, p.Table, p.SysID, p.SysUpdatedOn)
		}
		if !p.Partial() && len(p.Record) > 2 {
			if r, err := DecodeRow(p.Record); err == nil && r.Str("sys_id") == p.SysID {
				if rec, err := m.mapRow(p.Table, r, at, at); err == nil {
					return []itsm.Record{rec}, nil
				}
			}
		}
		rec, err := m.Tombstone(p.Table, p.SysID, at)
		if err != nil {
			return nil, err
		}
		return []itsm.Record{rec}, nil
	}
	if p.Partial() {
		return nil, &RereadError{Table: p.Table, SysID: p.SysID, Why: "the push carries no record"}
	}
	r, err := DecodeRow(p.Record)
	if err == nil {
		err = checkShape(r)
	}
	if err != nil {
		return nil, err
	}
	if r.Str("sys_id") != p.SysID {
		return nil, fmt.Errorf("%w: push names sys_id %s but its record is %s", itsm.ErrMalformed, p.SysID, r.Str("sys_id"))
	}
	if IsTaskTable(p.Table) && r.Str("sys_class_name") == "" {
		r["sys_class_name"] = []byte(`"` + p.Table + `"`)
	}
	rec, err := m.mapRow(p.Table, r, at, time.Time{})
	if err != nil {
		return nil, err
	}
	return []itsm.Record{rec}, nil
}

// Remap maps a stored ticket's vendor values again; see Mapper.Remap.
func (m *Mapping) Remap(t *itsm.Ticket) bool {
	if t == nil || t.Status == itsm.StatusDeleted || t.VendorAttributes == nil {
		return false
	}
	attr := func(k string) string {
		s, _ := t.VendorAttributes[k].(string)
		return s
	}
	table := attr("table")
	if table == "" {
		return false
	}
	inactive := false
	if f, ok := t.VendorAttributes["fields"].(map[string]any); ok {
		inactive = f["active"] == "false"
	}
	status, statusBy := m.MapStatus(table, attr("state"), attr("hold_reason"), inactive)
	priority, priorityBy := m.MapPriority(table, attr("priority"))
	changed := status != t.Status || priority != t.Priority
	t.Status, t.Priority = status, priority
	t.VendorAttributes["status_mapped_by"] = string(statusBy)
	t.VendorAttributes["priority_mapped_by"] = string(priorityBy)
	return changed
}
