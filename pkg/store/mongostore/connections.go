package mongostore

import (
	"fmt"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// connRecord is a connection as stored in the connections collection. Times
// are Unix nanoseconds, as in the SQLite store, so they round-trip exactly.
//
// DetailJSON is store.ConnectionDetail as its JSON, in a string, the same
// bytes the SQLite store keeps in its detail column. A BSON subdocument would
// be queryable, but nothing queries it, and it would not be exact: the detail
// is nested structs full of time.Time values, which BSON datetimes cut to
// milliseconds, so each struct would need a mirror record with nanosecond
// integers, kept in step with every field the detail gains; a field a mirror
// missed would be dropped without an error. The JSON follows the struct by
// itself, keeps times to the nanosecond (RFC 3339) and needs no schema.
// Connections stored before the field existed have none and decode to the
// zero detail.
type connRecord struct {
	ID                  string                `bson:"_id"`
	OrganizationID      string                `bson:"organization_id"`
	Vendor              string                `bson:"vendor"`
	State               store.ConnectionState `bson:"state"`
	SiteURL             string                `bson:"site_url"`
	CloudID             string                `bson:"cloud_id"`
	Options             optionsRecord         `bson:"options"`
	RefreshIntervalSecs int64                 `bson:"refresh_interval_secs"`
	TimeoutSecs         int64                 `bson:"timeout_secs"`
	Secret              []byte                `bson:"secret"`
	DetailJSON          string                `bson:"detail_json"`
	Revision            int64                 `bson:"revision"`
	CreatedAt           int64                 `bson:"created_at"`
	UpdatedAt           int64                 `bson:"updated_at"`
}

// optionsRecord is store.ConnectionOptions as a subdocument. The mappings are
// keyed by vendor names (Jira statuses and priorities), which may contain "."
// or start with "$"; MongoDB treats such field names as paths or operators
// (or, before 5.0, rejects them), so each mapping is stored as a list of
// {vendor, value} pairs instead of a document keyed by the vendor name.
type optionsRecord struct {
	ProjectKeysFilter []string        `bson:"project_keys_filter"`
	PriorityMapping   []mappingRecord `bson:"priority_mapping"`
	StatusMapping     []mappingRecord `bson:"status_mapping"`
	SiteURL           string          `bson:"site_url,omitempty"`
	Tables            []string        `bson:"tables,omitempty"`
	Auth              *authRecord     `bson:"auth,omitempty"`
}

// authRecord is store.ConnectionAuth (its non-secret half).
type authRecord struct {
	Type     string `bson:"type"`
	Username string `bson:"username,omitempty"`
	ClientID string `bson:"client_id,omitempty"`
}

type mappingRecord struct {
	Vendor string `bson:"vendor"`
	Value  string `bson:"value"`
}

func (r *connRecord) connection() (*store.Connection, error) {
	c := &store.Connection{
		ID: r.ID, OrganizationID: r.OrganizationID, Vendor: r.Vendor, State: r.State,
		SiteURL: r.SiteURL, CloudID: r.CloudID, Options: r.Options.options(),
		RefreshIntervalSecs: int(r.RefreshIntervalSecs), TimeoutSecs: int(r.TimeoutSecs),
		Secret: r.Secret, Revision: r.Revision,
		CreatedAt: nanosTime(r.CreatedAt), UpdatedAt: nanosTime(r.UpdatedAt),
	}
	if r.DetailJSON != "" {
		if err := json.Unmarshal([]byte(r.DetailJSON), &c.Detail); err != nil {
			return nil, fmt.Errorf("decode detail of connection %s: %w", r.ID, err)
		}
	}
	return c, nil
}

// detailJSON is what connRecord.DetailJSON holds for d.
func detailJSON(d store.ConnectionDetail) (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode connection detail: %w", err)
	}
	return string(b), nil
}

// options decodes like the SQLite store's JSON with omitempty: an empty list
// or mapping reads back as nil.
func (o optionsRecord) options() store.ConnectionOptions {
	var out store.ConnectionOptions
	if len(o.ProjectKeysFilter) > 0 {
		out.ProjectKeysFilter = o.ProjectKeysFilter
	}
	out.PriorityMapping = pairsMap[itsm.Priority](o.PriorityMapping)
	out.StatusMapping = pairsMap[itsm.Status](o.StatusMapping)
	out.SiteURL = o.SiteURL
	if len(o.Tables) > 0 {
		out.Tables = o.Tables
	}
	if o.Auth != nil {
		out.Auth = &store.ConnectionAuth{Type: o.Auth.Type, Username: o.Auth.Username, ClientID: o.Auth.ClientID}
	}
	return out
}

// pairsMap reads pairs in their stored order: the customer's, since
// mappings kept it (pairs stored earlier are in name order).
func pairsMap[V ~string](pairs []mappingRecord) store.NameMap[V] {
	if len(pairs) == 0 {
		return nil
	}
	m := make(store.NameMap[V], 0, len(pairs))
	for _, p := range pairs {
		m = append(m, store.NameEntry[V]{Name: p.Vendor, Value: V(p.Value)})
	}
	return m
}

// mapPairs keeps the customer's order.
func mapPairs[V ~string](m store.NameMap[V]) bson.A {
	out := bson.A{}
	for _, e := range m {
		out = append(out, bson.D{{Key: "vendor", Value: e.Name}, {Key: "value", Value: string(e.Value)}})
	}
	return out
}

func optionsDoc(o store.ConnectionOptions) bson.D {
	keys := bson.A{}
	for _, k := range o.ProjectKeysFilter {
		keys = append(keys, k)
	}
	d := bson.D{
		{Key: "project_keys_filter", Value: keys},
		{Key: "priority_mapping", Value: mapPairs(o.PriorityMapping)},
		{Key: "status_mapping", Value: mapPairs(o.StatusMapping)},
	}
	if o.SiteURL != "" {
		d = append(d, bson.E{Key: "site_url", Value: o.SiteURL})
	}
	if len(o.Tables) > 0 {
		d = append(d, bson.E{Key: "tables", Value: o.Tables})
	}
	if a := o.Auth; a != nil {
		d = append(d, bson.E{Key: "auth", Value: bson.D{{Key: "type", Value: a.Type}, {Key: "username", Value: a.Username}, {Key: "client_id", Value: a.ClientID}}})
	}
	return d
}

// connInsert is the whole stored connection; the driver's duplicate-key error
// on _id is how CreateConnection detects a conflict.
func connInsert(c *store.Connection) (bson.D, error) {
	detail, err := detailJSON(c.Detail)
	if err != nil {
		return nil, err
	}
	return bson.D{
		{Key: "_id", Value: c.ID},
		{Key: "organization_id", Value: c.OrganizationID},
		{Key: "vendor", Value: c.Vendor},
		{Key: "state", Value: c.State},
		{Key: "site_url", Value: c.SiteURL},
		{Key: "cloud_id", Value: c.CloudID},
		{Key: "options", Value: optionsDoc(c.Options)},
		{Key: "refresh_interval_secs", Value: int64(c.RefreshIntervalSecs)},
		{Key: "timeout_secs", Value: int64(c.TimeoutSecs)},
		{Key: "secret", Value: c.Secret},
		{Key: "detail_json", Value: detail},
		{Key: "revision", Value: c.Revision},
		{Key: "created_at", Value: c.CreatedAt.UnixNano()},
		{Key: "updated_at", Value: c.UpdatedAt.UnixNano()},
	}, nil
}

// connFilter scopes a read to the caller's organization.
func connFilter(orgID, id string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "organization_id", Value: orgID}}
}

// connLookupFilter is for internal callers (webhook routing, workers) that
// act for no organization.
func connLookupFilter(id string) bson.D {
	return bson.D{{Key: "_id", Value: id}}
}

func connListFilter(orgID string) bson.D {
	return bson.D{{Key: "organization_id", Value: orgID}}
}

// connPageFilter is PageConnections' query: the organization's connections
// after the cursor's, in connListSort order.
func connPageFilter(q store.ConnectionPageQuery) (bson.D, error) {
	f := connListFilter(q.OrganizationID)
	if q.Cursor != "" {
		after, err := store.DecodeConnectionCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		f = append(f, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	return f, nil
}

// connCountFilter is what the per-organization quota counts.
func connCountFilter(orgID string) bson.D {
	return bson.D{{Key: "organization_id", Value: orgID}, {Key: "state", Value: bson.D{{Key: "$ne", Value: store.StateDeleted}}}}
}

// connQueryFilter is FindConnections' query, across organizations; empty
// fields do not filter.
func connQueryFilter(q store.ConnectionQuery) bson.D {
	f := bson.D{}
	if q.State != "" {
		f = append(f, bson.E{Key: "state", Value: q.State})
	}
	if q.CloudID != "" {
		f = append(f, bson.E{Key: "cloud_id", Value: q.CloudID})
	}
	return f
}

// connListSort is the order of ListConnections and FindConnections.
func connListSort() bson.D {
	return bson.D{{Key: "_id", Value: 1}}
}

// connUpdateFilter only matches the revision the caller read.
func connUpdateFilter(c *store.Connection) bson.D {
	return bson.D{
		{Key: "_id", Value: c.ID},
		{Key: "organization_id", Value: c.OrganizationID},
		{Key: "revision", Value: c.Revision},
	}
}

// connUpdate replaces the mutable fields (the same set as the SQLite store:
// id, organization, vendor and created_at never change) and bumps the revision
// in the same operation.
func connUpdate(c *store.Connection) (bson.D, error) {
	detail, err := detailJSON(c.Detail)
	if err != nil {
		return nil, err
	}
	return bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "state", Value: c.State},
			{Key: "site_url", Value: c.SiteURL},
			{Key: "cloud_id", Value: c.CloudID},
			{Key: "options", Value: optionsDoc(c.Options)},
			{Key: "refresh_interval_secs", Value: int64(c.RefreshIntervalSecs)},
			{Key: "timeout_secs", Value: int64(c.TimeoutSecs)},
			{Key: "secret", Value: c.Secret},
			{Key: "detail_json", Value: detail},
			{Key: "updated_at", Value: c.UpdatedAt.UnixNano()},
		}},
		{Key: "$inc", Value: bson.D{{Key: "revision", Value: int64(1)}}},
	}, nil
}

func nanosTime(ns int64) time.Time {
	return time.Unix(0, ns).UTC()
}
