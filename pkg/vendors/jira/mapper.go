package jira

import (
	"fmt"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// Mapper maps the RAW records of Jira connections (subjects raw.jira.*) with
// each connection's mapping options. It holds no state: the options are
// read from the connection on every call, so a changed mapping applies to
// the next record.
type Mapper struct{}

// MappingOf is the mapping a connection's records get: its custom status and
// priority mappings, its site (for browse links) and the site's priority
// scheme from the connection's catalog.
func MappingOf(conn *store.Connection) Mapping {
	m := Mapping{ConnectionID: conn.ID, SiteURL: conn.SiteURL,
		Status: conn.Options.StatusMapping.Map(), Priority: conn.Options.PriorityMapping.Map()}
	if c := conn.Detail.Catalog; c != nil {
		m.PriorityScheme = c.Priorities
	}
	return m
}

// MapWebhook maps one Jira webhook body. Errors wrap itsm.ErrMalformed,
// itsm.ErrNotAnEvent or itsm.ErrUnsupportedEvent and name the vendor.
func (Mapper) MapWebhook(conn *store.Connection, body []byte) ([]itsm.Record, error) {
	m := MappingOf(conn)
	recs, err := m.MapWebhook(body)
	if err != nil {
		return nil, fmt.Errorf("jira: %w", err)
	}
	return recs, nil
}

// MapSync maps one record a sync fetched from the Jira REST API (not a
// reconcile marker: the normalizer handles those itself).
func (Mapper) MapSync(conn *store.Connection, sr raw.SyncRecord) ([]itsm.Record, error) {
	m := MappingOf(conn)
	recs, err := m.MapRESTAt(sr.Type, sr.IssueID, sr.Record, sr.ObservedAt)
	if err != nil {
		return nil, fmt.Errorf("jira: %w", err)
	}
	return recs, nil
}

// Remap maps a stored ticket's Jira status and priority (its vendor
// attributes) again with conn's current mapping and reports whether either
// changed.
func (Mapper) Remap(conn *store.Connection, t *itsm.Ticket) bool {
	m := MappingOf(conn)
	return m.Remap(t)
}
