package snsync

import (
	"context"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
)

// Fetch re-reads one record for a push that could not be mapped by itself
// (servicenow.RereadError): the record with the annotations a sync gives
// it, ready to publish like a sync's. A record that is gone or hidden
// answers an error wrapping snclient.ErrNotFound (package snclient): a deletion arrives by
// its own push or the delete log, so nothing is published for it.
func (s *Syncer) Fetch(ctx context.Context, conn *store.Connection, table, sysID string) (connector.Record, error) {
	c, err := s.client(ctx, conn, s.cfg.Client)
	if err != nil {
		return connector.Record{}, err
	}
	return FetchWith(ctx, c, table, sysID)
}

// FetchWith is Fetch through c, a client of the connection's instance
// that the caller keeps (a writer's, whose rate budget the read spends).
func FetchWith(ctx context.Context, c *snclient.Client, table, sysID string) (connector.Record, error) {
	typ := ""
	switch {
	case servicenow.IsTaskTable(table):
		typ = raw.TypeTicket
	case table == "sys_journal_field":
		typ = raw.TypeComment
	case table == "sys_attachment":
		typ = raw.TypeAttachment
	case table == "sys_user":
		typ = raw.TypeUser
	case table == "sys_user_group":
		typ = raw.TypeGroup
	default:
		return connector.Record{}, fmt.Errorf("servicenow: table %q is not synced", table)
	}
	row, err := c.Get(ctx, table, sysID)
	if err != nil {
		return connector.Record{}, err
	}
	j := &job{c: c, authors: map[string]string{}}
	rows := []jsontext.Value{row}
	parent := ""
	switch typ {
	case raw.TypeTicket:
		rows, err = j.withTags(ctx, table, rows)
	case raw.TypeComment, raw.TypeAttachment:
		rows, _, err = j.withAuthors(ctx, rows)
	case raw.TypeGroup:
		rows, err = j.withMembers(ctx, rows)
	}
	if err != nil {
		return connector.Record{}, err
	}
	r, err := servicenow.DecodeRow(rows[0])
	if err != nil {
		return connector.Record{}, err
	}
	switch typ {
	case raw.TypeComment:
		parent = r.Str("element_id")
	case raw.TypeAttachment:
		parent = r.Str("table_sys_id")
	}
	return connector.Record{Type: typ, ParentID: parent, Body: rows[0], VendorID: sysID, Version: servicenow.VersionString(r)}, nil
}
