package mongostore

import (
	"errors"

	json "github.com/go-json-experiment/json/v1"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// docRecord is a document as stored in the documents collection.
//
// UpdatedAt is Unix nanoseconds in an int64, not a BSON datetime: datetimes
// only keep milliseconds, and List's order and cursors must be exactly those of
// store.EncodeCursor (nanoseconds), as in the SQLite store.
//
// Body is the published JSON kept verbatim as a string. Converting it to a
// BSON document would make it queryable but not faithful: keys starting with
// "$" are read as Extended JSON ($date, $numberLong ...), integers beyond
// int64 and decimals beyond float64 lose precision, and a body that is not a
// JSON object has no document form. Nothing queries the body (the filterable
// fields are projected next to it), so exactness wins.
//
// SyncID is absent in documents stored before it existed; those decode as ""
// (never seen by a sync), which is also what the sync_id $ne filter matches.
type docRecord struct {
	Kind           string `bson:"kind"`
	ID             string `bson:"id"`
	OrganizationID string `bson:"organization_id"`
	ConnectionID   string `bson:"connection_id"`
	Version        int64  `bson:"version"`
	Deleted        bool   `bson:"deleted"`
	Identifier     string `bson:"identifier"`
	Status         string `bson:"status"`
	Priority       string `bson:"priority"`
	ProjectID      string `bson:"project_id"`
	TicketID       string `bson:"ticket_id"`
	AssignedUserID string `bson:"assigned_user_id"`
	UpdatedAt      int64  `bson:"updated_at"`
	SyncID         string `bson:"sync_id"`
	Body           string `bson:"body"`
}

func (r *docRecord) document() *store.Document {
	return &store.Document{
		Kind: itsm.Kind(r.Kind), ID: r.ID, OrganizationID: r.OrganizationID, ConnectionID: r.ConnectionID,
		Version: r.Version, Deleted: r.Deleted, Identifier: r.Identifier,
		Status: r.Status, Priority: r.Priority, ProjectID: r.ProjectID, TicketID: r.TicketID,
		AssignedUserID: r.AssignedUserID, UpdatedAt: nanosTime(r.UpdatedAt), SyncID: r.SyncID,
		Body: json.RawMessage(r.Body),
	}
}

// docKey is a document's _id. Ids are only unique per kind (the same id under
// another kind is another object), so the kind is part of the key; kinds are
// fixed names without ":", so the key is unambiguous. Within one kind the
// shared prefix makes _id order the same as id order, which is what lets List
// sort and page on _id.
func docKey(kind itsm.Kind, id string) string {
	return string(kind) + ":" + id
}

// collectionIndexes are the indexes of one collection.
type collectionIndexes struct {
	collection string
	models     []mongo.IndexModel
}

// indexModels are the indexes of the collections, the same as the SQLite
// schema's, in the order Open creates them. Names are fixed so that Open is
// idempotent. The only unique key besides the _id ones (which MongoDB always
// indexes) is an API key's hash, as in SQLite: a hash must name one key.
//
// api_keys_org follows ListAPIKeys' filter and sort (SQLite's is on the
// organization and id; the order it sorts in is created_at, id).
func indexModels() []collectionIndexes {
	idx := func(name string, keys ...string) mongo.IndexModel {
		d := bson.D{}
		for _, k := range keys {
			d = append(d, bson.E{Key: k, Value: 1})
		}
		return mongo.IndexModel{Keys: d, Options: options.Index().SetName(name)}
	}
	unique := func(m mongo.IndexModel) mongo.IndexModel {
		m.Options.SetUnique(true)
		return m
	}
	documents := []mongo.IndexModel{
		idx("documents_list", "organization_id", "kind", "updated_at", "_id"),
		idx("documents_identifier", "organization_id", "kind", "identifier"),
		idx("documents_ticket", "organization_id", "kind", "ticket_id"),
		idx("documents_project", "organization_id", "kind", "project_id"),
	}
	connections := []mongo.IndexModel{
		idx("connections_org", "organization_id", "_id"),
	}
	apiKeys := []mongo.IndexModel{
		unique(idx("api_keys_hash", "hash")),
		idx("api_keys_org", "organization_id", "created_at", "_id"),
	}
	return []collectionIndexes{
		{documentsCollection, documents},
		{connectionsCollection, connections},
		{apiKeysCollection, apiKeys},
	}
}

// putFilter matches the stored document only when it belongs to the same
// organization and is strictly older than d. When it does not match, the
// upsert tries to insert d under the same _id, which the unique _id index
// refuses if the document exists: equal or newer versions, and a clashing
// document of another organization, are never overwritten.
func putFilter(d *store.Document) bson.D {
	return bson.D{
		{Key: "_id", Value: docKey(d.Kind, d.ID)},
		{Key: "organization_id", Value: d.OrganizationID},
		{Key: "version", Value: bson.D{{Key: "$lt", Value: d.Version}}},
	}
}

// putUpdate sets every field; on insert _id comes from putFilter's equality.
//
// sync_id is the exception: a write without a SyncID (a webhook) keeps the
// stored one, so that reconciling a full sync never takes a document a
// webhook updated for one the sync missed. Such a write leaves sync_id out of
// $set and only gives a new document an empty one through $setOnInsert (a
// field may not be in both, or the server refuses the update).
func putUpdate(d *store.Document) bson.D {
	set := docFields(d)
	if d.SyncID != "" {
		return bson.D{{Key: "$set", Value: append(set, bson.E{Key: "sync_id", Value: d.SyncID})}}
	}
	return bson.D{
		{Key: "$set", Value: set},
		{Key: "$setOnInsert", Value: bson.D{{Key: "sync_id", Value: ""}}},
	}
}

// insertDoc is the whole document Insert writes: what Put's upsert stores
// when it inserts (a test holds them equal).
func insertDoc(d *store.Document) bson.D {
	return append(append(bson.D{{Key: "_id", Value: docKey(d.Kind, d.ID)}}, docFields(d)...),
		bson.E{Key: "sync_id", Value: d.SyncID})
}

// docFields are the fields every write sets, all but _id and sync_id.
func docFields(d *store.Document) bson.D {
	return bson.D{
		{Key: "kind", Value: string(d.Kind)},
		{Key: "id", Value: d.ID},
		{Key: "organization_id", Value: d.OrganizationID},
		{Key: "connection_id", Value: d.ConnectionID},
		{Key: "version", Value: d.Version},
		{Key: "deleted", Value: d.Deleted},
		{Key: "identifier", Value: d.Identifier},
		{Key: "status", Value: d.Status},
		{Key: "priority", Value: d.Priority},
		{Key: "project_id", Value: d.ProjectID},
		{Key: "ticket_id", Value: d.TicketID},
		{Key: "assigned_user_id", Value: d.AssignedUserID},
		{Key: "updated_at", Value: d.UpdatedAt.UnixNano()},
		{Key: "body", Value: string(d.Body)},
	}
}

// putOutcome reads the answer to attempt number attempt of Put's upsert and
// says whether to try again.
//
// A duplicate key on the first attempt is ambiguous: the stored document may
// be equal or newer (NotNewer), or it may have been inserted by a concurrent
// first Put after our filter found nothing, in which case it can be older than
// ours. The server does not retry such upserts itself (it only does when the
// filter is all equalities on the unique key; ours has the $lt guard), so Put
// tries once more: the document is now committed and documents are never
// removed, so the second attempt either matches it (ours is newer) or fails
// on the key again, which then can only mean equal, newer or another
// organization's.
func putOutcome(attempt int, res *mongo.UpdateResult, err error) (out store.Outcome, retry bool, _ error) {
	switch {
	case mongo.IsDuplicateKeyError(err) && attempt == 1:
		return 0, true, nil
	case mongo.IsDuplicateKeyError(err):
		return store.NotNewer, false, nil
	case err != nil:
		return 0, false, err
	case !res.Acknowledged:
		return 0, false, errors.New("write concern is unacknowledged: the version guard cannot report its outcome")
	case res.MatchedCount+res.UpsertedCount > 0:
		return store.Written, false, nil
	}
	return 0, false, errors.New("upsert neither matched nor inserted")
}

// markSeenFilter is getFilter: another organization cannot mark (and so
// shield from reconciliation) this one's documents. Matching nothing is not an
// error (MarkSeen of a missing document has nothing to mark).
func markSeenFilter(orgID string, kind itsm.Kind, id string) bson.D {
	return getFilter(orgID, kind, id)
}

// purgeFilter selects one connection's documents within its organization,
// so a purge can never reach another organization's data.
func purgeFilter(orgID, connectionID string) bson.D {
	return bson.D{{Key: "organization_id", Value: orgID}, {Key: "connection_id", Value: connectionID}}
}

// markSeenUpdate only records the sync: the document's version and
// updated_at are untouched, since the platform's record did not change.
func markSeenUpdate(syncID string) bson.D {
	return bson.D{{Key: "$set", Value: bson.D{{Key: "sync_id", Value: syncID}}}}
}

// getFilter scopes a read by id to the caller's organization: another
// organization's document reads as missing.
func getFilter(orgID string, kind itsm.Kind, id string) bson.D {
	return bson.D{
		{Key: "_id", Value: docKey(kind, id)},
		{Key: "organization_id", Value: orgID},
	}
}

func identifierFilter(orgID string, kind itsm.Kind, identifier string) bson.D {
	return bson.D{
		{Key: "organization_id", Value: orgID},
		{Key: "kind", Value: string(kind)},
		{Key: "identifier", Value: identifier},
	}
}

// identifierSort picks the most recently changed holder of a key: keys move
// between issues when projects are renamed, and the latest holder is the one
// the vendor shows today. _id breaks ties so the answer is deterministic.
func identifierSort() bson.D {
	return bson.D{{Key: "updated_at", Value: -1}, {Key: "_id", Value: -1}}
}

// listFilter is the query of List; organization and kind always filter (an
// empty organization matches only documents of the empty organization, as in
// SQLite), the other fields only when set.
func listFilter(f store.Filter) (bson.D, error) {
	q := bson.D{
		{Key: "organization_id", Value: f.OrganizationID},
		{Key: "kind", Value: string(f.Kind)},
	}
	eq := func(field, v string) {
		if v != "" {
			q = append(q, bson.E{Key: field, Value: v})
		}
	}
	eq("connection_id", f.ConnectionID)
	eq("status", f.Status)
	eq("priority", f.Priority)
	eq("project_id", f.ProjectID)
	eq("ticket_id", f.TicketID)
	eq("assigned_user_id", f.AssignedUserID)
	eq("identifier", f.Identifier)
	// Both bounds go in one sub-document: a repeated key in a filter is not
	// an AND (drivers and servers keep only one of them).
	var updated bson.D
	if !f.UpdatedSince.IsZero() {
		updated = append(updated, bson.E{Key: "$gte", Value: f.UpdatedSince.UnixNano()})
	}
	if !f.UpdatedBefore.IsZero() {
		updated = append(updated, bson.E{Key: "$lt", Value: f.UpdatedBefore.UnixNano()})
	}
	if len(updated) > 0 {
		q = append(q, bson.E{Key: "updated_at", Value: updated})
	}
	if f.NotSeenBy != "" {
		// $ne also matches documents without sync_id: never seen.
		q = append(q, bson.E{Key: "sync_id", Value: bson.D{{Key: "$ne", Value: f.NotSeenBy}}})
	}
	if f.ExcludeDeleted {
		q = append(q, bson.E{Key: "deleted", Value: false})
	}
	if f.Cursor != "" {
		at, id, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		// Strictly after (at, id) in listSort's order. The cursor holds the
		// bare id; compare against the _id it has in this kind.
		q = append(q, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "updated_at", Value: bson.D{{Key: "$gt", Value: at.UnixNano()}}}},
			bson.D{
				{Key: "updated_at", Value: at.UnixNano()},
				{Key: "_id", Value: bson.D{{Key: "$gt", Value: docKey(f.Kind, id)}}},
			},
		}})
	}
	return q, nil
}

// listSort is (UpdatedAt, ID) order; see docKey for why _id stands for id. It
// follows the documents_list index, so pages need no in-memory sort.
func listSort() bson.D {
	return bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}}
}

// listLimit asks for one document more than a page holds: its presence tells
// that another page exists, without a count query.
func listLimit(limit int) int64 {
	return int64(limit) + 1
}

// makePage trims the extra document listLimit asked for and, when there was
// one, points the cursor after the page's last document.
func makePage(recs []docRecord, limit int) store.Page {
	var page store.Page
	for i := range recs {
		page.Docs = append(page.Docs, recs[i].document())
	}
	if len(page.Docs) > limit {
		page.Docs = page.Docs[:limit]
		page.NextCursor = store.EncodeCursor(page.Docs[limit-1])
	}
	return page
}

// findCommand is the find command the driver sends for Find/FindOne on the
// documents collection with filter, sort and limit.
func findCommand(filter, sort bson.D, limit int64) bson.D {
	return bson.D{
		{Key: "find", Value: documentsCollection},
		{Key: "filter", Value: filter},
		{Key: "sort", Value: sort},
		{Key: "limit", Value: limit},
	}
}

// explainCommand asks for the plan the server would choose for find,
// without running it.
func explainCommand(find bson.D) bson.D {
	return bson.D{{Key: "explain", Value: find}, {Key: "verbosity", Value: "queryPlanner"}}
}
