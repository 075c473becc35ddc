package mongostore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/storetest"
)

// These tests pin down the exact documents the store sends. The behaviour is
// checked by the conformance suite: on an embedded wire-protocol server in the
// wiretest module (every make test), and below when ITSM_TEST_MONGODB_URI
// points at a MongoDB.

// TestConformance runs the shared store suite, each subtest on a fresh
// database that is dropped afterwards.
func TestConformance(t *testing.T) {
	uri := os.Getenv("ITSM_TEST_MONGODB_URI")
	if uri == "" {
		t.Skip("ITSM_TEST_MONGODB_URI is unset: the wiretest module runs this suite on an embedded " +
			"wire-protocol server (make test); the BSON unit tests in this package still run")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		name := "itsmtest_" + randomHex(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := Open(ctx, uri, name)
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.db.Drop(ctx); err != nil {
				t.Errorf("drop test database %s: %v", name, err)
			}
			s.Close()
		})
		return s
	})
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// extJSON renders v as canonical Extended JSON, which shows BSON types
// ($numberLong vs $numberInt) as well as field order.
func extJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(v, true, false)
	require.NoError(t, err)
	return string(b)
}

var (
	at     = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	atNano = fmt.Sprint(at.UnixNano())
)

func fullDoc() *store.Document {
	return &store.Document{
		Kind: itsm.KindTicket, ID: "id-1", OrganizationID: "org-a", ConnectionID: "conn-1",
		Version: 1767322800000, Deleted: true, Identifier: "PROJ-1",
		Status: "OPEN", Priority: "HIGH", ProjectID: "p1", TicketID: "t1", AssignedUserID: "u1",
		UpdatedAt: at, SyncID: "sync-1",
		// Keys and numbers that a BSON document would not keep verbatim.
		Body: json.RawMessage(`{"$date":1,"a.b":[1,2.50,null],"big":123456789012345678901234567890,"x":{"y":"ü"}}`),
	}
}

func indexOptions(t *testing.T, m mongo.IndexModel) options.IndexOptions {
	t.Helper()
	var o options.IndexOptions
	for _, f := range m.Options.List() {
		require.NoError(t, f(&o))
	}
	return o
}

func TestIndexModels(t *testing.T) {
	var got []string
	for _, ci := range indexModels() {
		for _, m := range ci.models {
			o := indexOptions(t, m)
			line := ci.collection + " " + *o.Name + " " + extJSON(t, m.Keys)
			if o.Unique != nil {
				line += fmt.Sprintf(" unique=%v", *o.Unique)
			}
			got = append(got, line)
		}
	}
	require.Equal(t, []string{
		`documents documents_list {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"updated_at":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`,
		`documents documents_identifier {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"identifier":{"$numberInt":"1"}}`,
		`documents documents_ticket {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"ticket_id":{"$numberInt":"1"}}`,
		`documents documents_project {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"project_id":{"$numberInt":"1"}}`,
		`documents documents_name {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"name":{"$numberInt":"1"}}`,
		`connections connections_org {"organization_id":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`,
		// The only unique key besides _id (which MongoDB always indexes).
		`api_keys api_keys_hash {"hash":{"$numberInt":"1"}} unique=true`,
		`api_keys api_keys_org {"organization_id":{"$numberInt":"1"},"created_at":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`,
	}, got)
}

func TestPutFilter(t *testing.T) {
	require.Equal(t,
		`{"_id":"ticket:id-1","organization_id":"org-a","version":{"$lt":{"$numberLong":"1767322800000"}}}`,
		extJSON(t, putFilter(fullDoc())))
}

func TestPutUpdate(t *testing.T) {
	d := fullDoc()
	fields := `"kind":"ticket","id":"id-1","organization_id":"org-a","connection_id":"conn-1",` +
		`"version":{"$numberLong":"1767322800000"},"deleted":true,"identifier":"PROJ-1","status":"OPEN","priority":"HIGH",` +
		`"project_id":"p1","ticket_id":"t1","assigned_user_id":"u1","name":"","updated_at":{"$numberLong":"` + atNano + `"},` +
		`"body":` + mustJSONString(t, string(d.Body))
	// A sync's write records the sync.
	require.Equal(t, `{"$set":{`+fields+`,"sync_id":"sync-1"}}`, extJSON(t, putUpdate(d)))
	// A write without a sync (a webhook) leaves the stored sync_id alone and
	// only gives a new document an empty one.
	d.SyncID = ""
	require.Equal(t, `{"$set":{`+fields+`},"$setOnInsert":{"sync_id":""}}`, extJSON(t, putUpdate(d)))
}

// TestPutUpdateFieldsDisjoint: the server refuses an update naming one field
// under two operators.
func TestPutUpdateFieldsDisjoint(t *testing.T) {
	for _, syncID := range []string{"", "sync-1"} {
		d := fullDoc()
		d.SyncID = syncID
		seen := map[string]string{}
		for _, op := range putUpdate(d) {
			for _, f := range op.Value.(bson.D) {
				require.NotContains(t, seen, f.Key, "%s is under both %s and %s", f.Key, seen[f.Key], op.Key)
				seen[f.Key] = op.Key
			}
		}
		require.Contains(t, seen, "sync_id")
	}
}

// applyUpdate is a tiny MongoDB update of the operators Put, MarkSeen and
// RevokeAPIKey use: $set always, $setOnInsert only when the update inserts.
func applyUpdate(t *testing.T, stored bson.M, update bson.D, inserting bool) bson.M {
	t.Helper()
	out := bson.M{}
	for k, v := range stored {
		out[k] = v
	}
	for _, op := range update {
		switch op.Key {
		case "$set":
		case "$setOnInsert":
			if !inserting {
				continue
			}
		default:
			t.Fatalf("operator %s", op.Key)
		}
		// Round-trip the values so that they have the types the server
		// would give back (int64, string, bool, bson.Binary ...).
		raw, err := bson.Marshal(op.Value)
		require.NoError(t, err)
		var m bson.M
		require.NoError(t, bson.Unmarshal(raw, &m))
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func mustJSONString(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

// storedDoc is what an upsert of d stores when it inserts: _id and
// organization_id from putFilter's equalities, everything else from
// putUpdate's $set and $setOnInsert.
func storedDoc(t *testing.T, d *store.Document) []byte {
	t.Helper()
	filter := putFilter(d)
	inserted := applyUpdate(t, bson.M{"_id": filter[0].Value, "organization_id": filter[1].Value}, putUpdate(d), true)
	raw, err := bson.Marshal(inserted)
	require.NoError(t, err)
	return raw
}

// TestDocumentRoundTrip checks that what Put writes decodes to the same
// document, byte for byte in the body and to the nanosecond in updated_at.
func TestDocumentRoundTrip(t *testing.T) {
	for _, syncID := range []string{"sync-1", ""} {
		d := fullDoc()
		d.SyncID = syncID
		var rec docRecord
		require.NoError(t, bson.Unmarshal(storedDoc(t, d), &rec))
		got := rec.document()
		require.Equal(t, string(d.Body), string(got.Body))
		got.Body = d.Body
		require.Equal(t, d, got)
	}
	// A document stored before sync_id existed was never seen by a sync.
	var rec docRecord
	require.NoError(t, bson.Unmarshal(mustMarshal(t, bson.D{{Key: "_id", Value: "ticket:x"}, {Key: "id", Value: "x"}}), &rec))
	require.Empty(t, rec.document().SyncID)
}

// Insert writes what Put's upsert stores when it inserts, field for field,
// with or without a sync.
func TestInsertWritesWhatPutInserts(t *testing.T) {
	for _, syncID := range []string{"sync-1", ""} {
		d := fullDoc()
		d.SyncID = syncID
		var viaPut, viaInsert bson.M
		require.NoError(t, bson.Unmarshal(storedDoc(t, d), &viaPut))
		require.NoError(t, bson.Unmarshal(mustMarshal(t, insertDoc(d)), &viaInsert))
		require.Equal(t, viaPut, viaInsert)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := bson.Marshal(v)
	require.NoError(t, err)
	return raw
}

// TestPutKeepsSyncID applies Put's update to a stored document as the server
// would when the version guard matches.
func TestPutKeepsSyncID(t *testing.T) {
	var stored bson.M
	require.NoError(t, bson.Unmarshal(storedDoc(t, fullDoc()), &stored))
	require.Equal(t, "sync-1", stored["sync_id"])

	webhook := fullDoc()
	webhook.SyncID, webhook.Version, webhook.Status = "", webhook.Version+1, "CLOSED"
	updated := applyUpdate(t, stored, putUpdate(webhook), false)
	require.Equal(t, "sync-1", updated["sync_id"], "a write without a sync keeps the stored sync_id")
	require.Equal(t, "CLOSED", updated["status"])

	sync2 := fullDoc()
	sync2.SyncID, sync2.Version = "sync-2", webhook.Version+1
	require.Equal(t, "sync-2", applyUpdate(t, updated, putUpdate(sync2), false)["sync_id"])
}

func TestMarkSeen(t *testing.T) {
	require.Equal(t, `{"_id":"ticket:id-1","organization_id":"org-a"}`,
		extJSON(t, markSeenFilter("org-a", itsm.KindTicket, "id-1")))
	require.Equal(t, `{"$set":{"sync_id":"sync-9"}}`, extJSON(t, markSeenUpdate("sync-9")))
}

func dupKeyErr() error {
	return mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: "E11000 duplicate key error"}}}
}

func TestPutOutcome(t *testing.T) {
	ack := func(matched, upserted int64) *mongo.UpdateResult {
		return &mongo.UpdateResult{MatchedCount: matched, ModifiedCount: matched, UpsertedCount: upserted, Acknowledged: true}
	}
	other := errors.New("network down")
	for _, tc := range []struct {
		name    string
		attempt int
		res     *mongo.UpdateResult
		err     error
		want    store.Outcome
		retry   bool
		wantErr error
	}{
		{name: "replaced an older version", attempt: 1, res: ack(1, 0), want: store.Written},
		{name: "inserted a new document", attempt: 1, res: ack(0, 1), want: store.Written},
		{name: "newer after a concurrent insert", attempt: 2, res: ack(1, 0), want: store.Written},
		{name: "duplicate key first: retry", attempt: 1, err: dupKeyErr(), retry: true},
		{name: "duplicate key again: not newer", attempt: 2, err: dupKeyErr(), want: store.NotNewer},
		{name: "other error", attempt: 1, err: other, wantErr: other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, retry, err := putOutcome(tc.attempt, tc.res, tc.err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, out)
			require.Equal(t, tc.retry, retry)
		})
	}
	_, _, err := putOutcome(1, &mongo.UpdateResult{}, nil)
	require.Error(t, err, "an unacknowledged write cannot tell the outcome")
	_, _, err = putOutcome(1, &mongo.UpdateResult{Acknowledged: true}, nil)
	require.Error(t, err)
}

func TestGetFilters(t *testing.T) {
	require.Equal(t, `{"_id":"comment:id-9","organization_id":"org-a"}`,
		extJSON(t, getFilter("org-a", itsm.KindComment, "id-9")))
	require.Equal(t, `{"organization_id":"org-a","kind":"ticket","identifier":"PROJ-7"}`,
		extJSON(t, identifierFilter("org-a", itsm.KindTicket, "PROJ-7")))
	require.Equal(t, `{"updated_at":{"$numberInt":"-1"},"_id":{"$numberInt":"-1"}}`, extJSON(t, identifierSort()))
}

func TestListFilter(t *testing.T) {
	q, err := listFilter(store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","kind":"ticket"}`, extJSON(t, q))

	// An empty organization still filters: it never widens to all organizations.
	q, err = listFilter(store.Filter{Kind: itsm.KindTicket})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"","kind":"ticket"}`, extJSON(t, q))

	cursor := store.EncodeCursor(&store.Document{ID: "id-5", UpdatedAt: at})
	q, err = listFilter(store.Filter{
		OrganizationID: "org-a", Kind: itsm.KindComment, ConnectionID: "c1", Status: "OPEN", Priority: "LOW",
		ProjectID: "p1", TicketID: "t1", AssignedUserID: "u1", Identifier: "PROJ-1",
		UpdatedSince: at.Add(-time.Hour), UpdatedBefore: at.Add(time.Hour), NotSeenBy: "sync-1", ExcludeDeleted: true,
		Cursor: cursor, Limit: 5,
	})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","kind":"comment","connection_id":"c1","status":"OPEN",`+
		`"priority":"LOW","project_id":"p1","ticket_id":"t1","assigned_user_id":"u1","identifier":"PROJ-1",`+
		`"updated_at":{"$gte":{"$numberLong":"`+fmt.Sprint(at.Add(-time.Hour).UnixNano())+`"},`+
		`"$lt":{"$numberLong":"`+fmt.Sprint(at.Add(time.Hour).UnixNano())+`"}},`+
		`"sync_id":{"$ne":"sync-1"},"deleted":false,`+
		`"$or":[{"updated_at":{"$gt":{"$numberLong":"`+atNano+`"}}},`+
		`{"updated_at":{"$numberLong":"`+atNano+`"},"_id":{"$gt":"comment:id-5"}}]}`,
		extJSON(t, q))

	// Each bound alone.
	q, err = listFilter(store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, UpdatedSince: at})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","kind":"ticket","updated_at":{"$gte":{"$numberLong":"`+atNano+`"}}}`,
		extJSON(t, q))
	q, err = listFilter(store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, UpdatedBefore: at})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","kind":"ticket","updated_at":{"$lt":{"$numberLong":"`+atNano+`"}}}`,
		extJSON(t, q))

	_, err = listFilter(store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, Cursor: "!!not-a-cursor"})
	require.ErrorIs(t, err, store.ErrInvalid)
}

// TestSyncReconciliation plays the conformance suite's SyncSeenTracking on
// an in-memory collection: Put, MarkSeen, and List with NotSeenBy,
// ExcludeDeleted and UpdatedBefore.
func TestSyncReconciliation(t *testing.T) {
	coll := map[string]bson.M{}
	put := func(d *store.Document) {
		filter := putFilter(d)
		if old, ok := coll[filter[0].Value.(string)]; ok {
			require.True(t, matches(t, old, filter), "test puts only newer versions")
			coll[filter[0].Value.(string)] = applyUpdate(t, old, putUpdate(d), false)
			return
		}
		var m bson.M
		require.NoError(t, bson.Unmarshal(storedDoc(t, d), &m))
		coll[filter[0].Value.(string)] = m
	}
	markSeen := func(orgID, id, syncID string) {
		filter := markSeenFilter(orgID, itsm.KindTicket, id)
		if old, ok := coll[filter[0].Value.(string)]; ok && matches(t, old, filter) {
			coll[filter[0].Value.(string)] = applyUpdate(t, old, markSeenUpdate(syncID), false)
		}
	}
	doc := func(id, conn string, version int64) *store.Document {
		return &store.Document{Kind: itsm.KindTicket, ID: id, OrganizationID: "org-a", ConnectionID: conn,
			Version: version, UpdatedAt: at.Add(time.Duration(version) * time.Second), Body: json.RawMessage(`{}`)}
	}
	seen := doc("1", "c", 10)
	seen.SyncID = "sync-1"
	gone := doc("4", "c", 10)
	gone.Deleted = true
	missed := doc("3", "c", 10)
	for _, d := range []*store.Document{seen, doc("2", "c", 10), missed, gone, doc("5", "c-other", 10), doc("6", "c", 10)} {
		put(d)
	}
	delete(coll["ticket:6"], "sync_id") // stored before sync_id existed
	markSeen("org-a", "2", "sync-1")
	markSeen("org-b", "3", "sync-1") // another organization cannot shield it
	put(doc("1", "c", 20))           // a webhook write keeps sync-1

	list := func(f store.Filter) []string {
		q, err := listFilter(f)
		require.NoError(t, err)
		var all []bson.M
		for _, m := range coll {
			all = append(all, m)
		}
		var ids []string
		for _, r := range find(t, all, q, listSort(), listLimit(f.EffectiveLimit())) {
			ids = append(ids, r.ID)
		}
		return ids
	}
	f := store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, ConnectionID: "c", NotSeenBy: "sync-1", ExcludeDeleted: true}
	require.Equal(t, []string{"3", "6"}, list(f))
	f.UpdatedBefore = missed.UpdatedAt
	require.Empty(t, list(f), "UpdatedBefore excludes documents changed at or after it")
	f.UpdatedBefore = missed.UpdatedAt.Add(time.Nanosecond)
	require.Equal(t, []string{"3", "6"}, list(f))
}

func TestListSortAndLimit(t *testing.T) {
	require.Equal(t, `{"updated_at":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`, extJSON(t, listSort()))
	require.EqualValues(t, store.DefaultLimit+1, listLimit(store.Filter{}.EffectiveLimit()))
	require.EqualValues(t, 11, listLimit(store.Filter{Limit: 10}.EffectiveLimit()))
	require.EqualValues(t, store.MaxLimit+1, listLimit(store.Filter{Limit: 5000}.EffectiveLimit()))
}

func TestMakePage(t *testing.T) {
	recs := make([]docRecord, 11)
	for i := range recs {
		recs[i] = docRecord{Kind: "ticket", ID: fmt.Sprintf("id-%02d", i), UpdatedAt: at.UnixNano()}
	}
	page := makePage(recs, 10)
	require.Len(t, page.Docs, 10)
	gotAt, gotID, err := store.DecodeCursor(page.NextCursor)
	require.NoError(t, err)
	require.Equal(t, "id-09", gotID)
	require.True(t, at.Equal(gotAt))

	page = makePage(recs[:10], 10)
	require.Len(t, page.Docs, 10)
	require.Empty(t, page.NextCursor, "a page that is not full to limit+1 is the last")
	require.Empty(t, makePage(nil, 10).Docs)
}

// TestListPagination evaluates listFilter, listSort and listLimit on an
// in-memory collection with a minimal evaluator of the operators they use, to
// show that pages neither skip nor repeat documents when updated_at ties.
func TestListPagination(t *testing.T) {
	var coll []bson.M
	want := map[string]bool{}
	for i := range 25 {
		d := fullDoc()
		d.ID = fmt.Sprintf("%08x-id", (i*7919)%1000) // ids not in insertion order
		d.UpdatedAt = at.Add(time.Duration(i/2) * time.Second)
		var m bson.M
		require.NoError(t, bson.Unmarshal(storedDoc(t, d), &m))
		coll = append(coll, m)
		want[d.ID] = true
	}
	// Another kind and another organization must not leak into the pages.
	for _, d := range []*store.Document{{Kind: itsm.KindComment, ID: "x", OrganizationID: "org-a"}, {Kind: itsm.KindTicket, ID: "y", OrganizationID: "org-b"}} {
		var m bson.M
		require.NoError(t, bson.Unmarshal(storedDoc(t, d), &m))
		coll = append(coll, m)
	}

	seen := map[string]bool{}
	cursor, pages := "", 0
	var last *store.Document
	for {
		f := store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, Limit: 10, Cursor: cursor}
		q, err := listFilter(f)
		require.NoError(t, err)
		page := makePage(find(t, coll, q, listSort(), listLimit(f.EffectiveLimit())), f.EffectiveLimit())
		pages++
		for _, d := range page.Docs {
			require.False(t, seen[d.ID], "document %s returned twice", d.ID)
			seen[d.ID] = true
			if last != nil {
				ordered := last.UpdatedAt.Before(d.UpdatedAt) || (last.UpdatedAt.Equal(d.UpdatedAt) && last.ID < d.ID)
				require.True(t, ordered, "page order broken")
			}
			last = d
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		require.Less(t, pages, 10)
	}
	require.Equal(t, 3, pages)
	require.Equal(t, want, seen)
}

// find is a tiny MongoDB find: equality, $gt, $gte, $lt, $ne and $or on
// strings, int64s and bools, a sort on top-level fields, and a limit.
func find(t *testing.T, coll []bson.M, q bson.D, sort bson.D, limit int64) []docRecord {
	t.Helper()
	var hits []bson.M
	for _, m := range coll {
		if matches(t, m, q) {
			hits = append(hits, m)
		}
	}
	slices.SortStableFunc(hits, func(a, b bson.M) int {
		for _, k := range sort {
			if c := compare(t, a[k.Key], b[k.Key]) * k.Value.(int); c != 0 {
				return c
			}
		}
		return 0
	})
	if int64(len(hits)) > limit {
		hits = hits[:limit]
	}
	var out []docRecord
	for _, m := range hits {
		raw, err := bson.Marshal(m)
		require.NoError(t, err)
		var r docRecord
		require.NoError(t, bson.Unmarshal(raw, &r))
		out = append(out, r)
	}
	return out
}

func matches(t *testing.T, m bson.M, q bson.D) bool {
	for _, e := range q {
		if e.Key == "$or" {
			hit := false
			for _, alt := range e.Value.(bson.A) {
				hit = hit || matches(t, m, alt.(bson.D))
			}
			if !hit {
				return false
			}
			continue
		}
		v, present := m[e.Key]
		ops, isOps := e.Value.(bson.D)
		if !isOps {
			if !present || compare(t, v, e.Value) != 0 {
				return false
			}
			continue
		}
		for _, op := range ops {
			if !present {
				// A missing field is unequal to everything and
				// compares with nothing.
				if op.Key != "$ne" {
					return false
				}
				continue
			}
			c := compare(t, v, op.Value)
			ok := map[string]bool{"$gt": c > 0, "$gte": c >= 0, "$lt": c < 0, "$ne": c != 0}
			v, known := ok[op.Key]
			require.True(t, known, "operator %s", op.Key)
			if !v {
				return false
			}
		}
	}
	return true
}

func compare(t *testing.T, a, b any) int {
	switch a := a.(type) {
	case string:
		return cmp.Compare(a, b.(string))
	case int64:
		return cmp.Compare(a, b.(int64))
	case bool:
		if a == b.(bool) {
			return 0
		}
		if !a {
			return -1
		}
		return 1
	}
	t.Fatalf("cannot compare %T", a)
	return 0
}

func fullConn() *store.Connection {
	return &store.Connection{
		ID: "conn-1", OrganizationID: "org-a", Vendor: "JIRA", State: store.StateActive,
		SiteURL: "https://acme.atlassian.net", CloudID: "cloud-1",
		Options: store.ConnectionOptions{
			ProjectKeysFilter: []string{"ABC", "DEF"},
			PriorityMapping:   store.NameMap[itsm.Priority]{{Name: "Urgent", Value: itsm.PriorityCritical}, {Name: "P1.a", Value: itsm.PriorityHigh}},
			StatusMapping:     store.NameMap[itsm.Status]{{Name: "$Triage", Value: itsm.StatusOpen}},
			SiteURL:           "https://acme.atlassian.net",
		},
		RefreshIntervalSecs: 21600, TimeoutSecs: 1800, Secret: []byte{1, 2, 3}, Revision: 4,
		Detail:    fullDetail(),
		CreatedAt: at, UpdatedAt: at.Add(time.Nanosecond),
	}
}

// fullDetail sets every field, with times to the nanosecond.
func fullDetail() store.ConnectionDetail {
	ended, watermark := at.Add(time.Minute+time.Nanosecond), at.Add(-time.Nanosecond)
	return store.ConnectionDetail{
		Health: store.Health{Status: "DEGRADED", ResolutionOwner: "VENDOR", Description: "rate limited", UpdatedAt: at},
		Webhooks: []store.WebhookRegistration{
			{ID: 7, Events: []string{"jira:issue_created", "jira:issue_updated"}, JQL: `project IN ("ABC")`, ExpiresAt: at.Add(720 * time.Hour)},
		},
		WebhookURL:     "https://hooks.example.com/jira/conn-1",
		OAuthStateHash: "c2hh",
		LastSync: &store.SyncState{ID: "s1", Kind: "full", Phase: "issues", Status: "FAILED", Objects: 42, Errors: 1,
			LastError: "timeout", StartedAt: at, EndedAt: &ended, Checkpoint: "tok"},
		Watermark: &watermark,
		Sites:     []store.Site{{CloudID: "cloud-1", URL: "https://acme.atlassian.net", Name: "acme"}},
	}
}

// fullDetailJSON is fullDetail as stored.
func fullDetailJSON(t *testing.T) string {
	b, err := json.Marshal(fullDetail())
	require.NoError(t, err)
	return mustJSONString(t, string(b))
}

func TestDetailJSON(t *testing.T) {
	// The exact stored form, the same JSON as the SQLite store's column.
	got, err := detailJSON(fullDetail())
	require.NoError(t, err)
	require.Equal(t, `{"health":{"status":"DEGRADED","resolution_owner":"VENDOR","description":"rate limited",`+
		`"updated_at":"2026-01-02T03:04:05.123456789Z"},`+
		`"webhooks":[{"id":7,"events":["jira:issue_created","jira:issue_updated"],"jql":"project IN (\"ABC\")",`+
		`"expires_at":"2026-02-01T03:04:05.123456789Z"}],`+
		`"webhook_url":"https://hooks.example.com/jira/conn-1","oauth_state_hash":"c2hh",`+
		`"last_sync":{"id":"s1","kind":"full","phase":"issues","status":"FAILED","objects":42,"errors":1,`+
		`"last_error":"timeout","started_at":"2026-01-02T03:04:05.123456789Z",`+
		`"ended_at":"2026-01-02T03:05:05.12345679Z","checkpoint":"tok"},`+
		`"watermark":"2026-01-02T03:04:05.123456788Z",`+
		`"sites":[{"cloud_id":"cloud-1","url":"https://acme.atlassian.net","name":"acme"}]}`, got)

	_, err = detailJSON(store.ConnectionDetail{Health: store.Health{UpdatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}})
	require.Error(t, err, "a time JSON cannot hold")
	_, err = connInsert(&store.Connection{Detail: store.ConnectionDetail{Watermark: &time.Time{}}, CreatedAt: at, UpdatedAt: at})
	require.NoError(t, err)
	bad := &store.Connection{Detail: store.ConnectionDetail{Health: store.Health{UpdatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	_, err = connInsert(bad)
	require.Error(t, err)
	_, err = connUpdate(bad)
	require.Error(t, err)
}

func TestConnInsert(t *testing.T) {
	c := fullConn()
	require.Equal(t, `{"_id":"conn-1","organization_id":"org-a","vendor":"JIRA","state":"ACTIVE",`+
		`"site_url":"https://acme.atlassian.net","cloud_id":"cloud-1",`+
		`"options":{"project_keys_filter":["ABC","DEF"],`+
		`"priority_mapping":[{"vendor":"Urgent","value":"CRITICAL"},{"vendor":"P1.a","value":"HIGH"}],`+
		`"status_mapping":[{"vendor":"$Triage","value":"OPEN"}],"site_url":"https://acme.atlassian.net"},`+
		`"refresh_interval_secs":{"$numberLong":"21600"},"timeout_secs":{"$numberLong":"1800"},`+
		`"secret":{"$binary":{"base64":"AQID","subType":"00"}},"detail_json":`+fullDetailJSON(t)+`,`+
		`"revision":{"$numberLong":"4"},`+
		`"created_at":{"$numberLong":"`+atNano+`"},"updated_at":{"$numberLong":"`+fmt.Sprint(at.UnixNano()+1)+`"}}`,
		extJSON(t, mustConnInsert(t, c)))
}

func mustConnInsert(t *testing.T, c *store.Connection) bson.D {
	t.Helper()
	d, err := connInsert(c)
	require.NoError(t, err)
	return d
}

func mustConnUpdate(t *testing.T, c *store.Connection) bson.D {
	t.Helper()
	d, err := connUpdate(c)
	require.NoError(t, err)
	return d
}

func decodeConn(t *testing.T, doc any) (*store.Connection, error) {
	t.Helper()
	var rec connRecord
	require.NoError(t, bson.Unmarshal(mustMarshal(t, doc), &rec))
	return rec.connection()
}

func TestConnRoundTrip(t *testing.T) {
	for _, c := range []*store.Connection{fullConn(), {ID: "bare", OrganizationID: "org-a", CreatedAt: at, UpdatedAt: at}} {
		got, err := decodeConn(t, mustConnInsert(t, c))
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
	// Empty but non-nil options and detail lists read back as nil, like the
	// SQLite store's JSON with omitempty.
	c := &store.Connection{ID: "e", Options: store.ConnectionOptions{ProjectKeysFilter: []string{},
		PriorityMapping: store.NameMap[itsm.Priority]{}, StatusMapping: store.NameMap[itsm.Status]{}},
		Detail:    store.ConnectionDetail{Webhooks: []store.WebhookRegistration{}, Sites: []store.Site{}},
		CreatedAt: at, UpdatedAt: at}
	got, err := decodeConn(t, mustConnInsert(t, c))
	require.NoError(t, err)
	require.Equal(t, store.ConnectionOptions{}, got.Options)
	require.Equal(t, store.ConnectionDetail{}, got.Detail)

	// What UpdateConnection sets reads back as the connection too.
	c = fullConn()
	c.Detail.LastSync.Objects, c.Detail.Webhooks = 43, nil
	stored := applyUpdate(t, bson.M{"_id": c.ID, "organization_id": c.OrganizationID, "vendor": c.Vendor,
		"created_at": c.CreatedAt.UnixNano(), "revision": c.Revision}, bson.D{mustConnUpdate(t, c)[0]}, false)
	got, err = decodeConn(t, stored)
	require.NoError(t, err)
	require.Equal(t, c, got)

	// A connection stored before detail_json existed has the zero detail.
	got, err = decodeConn(t, bson.D{{Key: "_id", Value: "old"}})
	require.NoError(t, err)
	require.Equal(t, store.ConnectionDetail{}, got.Detail)

	_, err = decodeConn(t, bson.D{{Key: "_id", Value: "broken"}, {Key: "detail_json", Value: "{"}})
	require.ErrorContains(t, err, "decode detail of connection broken")
}

func TestConnFilters(t *testing.T) {
	c := fullConn()
	require.Equal(t, `{"_id":"conn-1","organization_id":"org-a"}`, extJSON(t, connFilter("org-a", "conn-1")))
	require.Equal(t, `{"_id":"conn-1"}`, extJSON(t, connLookupFilter("conn-1")))
	require.Equal(t, `{"organization_id":"org-a"}`, extJSON(t, connListFilter("org-a")))
	require.Equal(t, `{"_id":{"$numberInt":"1"}}`, extJSON(t, connListSort()))
	page, err := connPageFilter(store.ConnectionPageQuery{OrganizationID: "org-a"})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a"}`, extJSON(t, page))
	page, err = connPageFilter(store.ConnectionPageQuery{OrganizationID: "org-a", Cursor: store.EncodeConnectionCursor("conn-1")})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","_id":{"$gt":"conn-1"}}`, extJSON(t, page))
	_, err = connPageFilter(store.ConnectionPageQuery{OrganizationID: "org-a", Cursor: "!!"})
	require.ErrorIs(t, err, store.ErrInvalid)
	require.Equal(t, `{"organization_id":"org-a","state":{"$ne":"DELETED"}}`, extJSON(t, connCountFilter("org-a")))
	require.Equal(t, `{}`, extJSON(t, connQueryFilter(store.ConnectionQuery{})))
	require.Equal(t, `{"state":"ACTIVE"}`, extJSON(t, connQueryFilter(store.ConnectionQuery{State: store.StateActive})))
	require.Equal(t, `{"cloud_id":"cloud-1"}`, extJSON(t, connQueryFilter(store.ConnectionQuery{CloudID: "cloud-1"})))
	require.Equal(t, `{"state":"ACTIVE","cloud_id":"cloud-1"}`,
		extJSON(t, connQueryFilter(store.ConnectionQuery{CloudID: "cloud-1", State: store.StateActive})))
	require.Equal(t, `{"_id":"conn-1","organization_id":"org-a","revision":{"$numberLong":"4"}}`,
		extJSON(t, connUpdateFilter(c)))
	require.Equal(t, `{"$set":{"state":"ACTIVE","site_url":"https://acme.atlassian.net","cloud_id":"cloud-1",`+
		`"options":{"project_keys_filter":["ABC","DEF"],`+
		`"priority_mapping":[{"vendor":"Urgent","value":"CRITICAL"},{"vendor":"P1.a","value":"HIGH"}],`+
		`"status_mapping":[{"vendor":"$Triage","value":"OPEN"}],"site_url":"https://acme.atlassian.net"},`+
		`"refresh_interval_secs":{"$numberLong":"21600"},"timeout_secs":{"$numberLong":"1800"},`+
		`"secret":{"$binary":{"base64":"AQID","subType":"00"}},"detail_json":`+fullDetailJSON(t)+`,`+
		`"updated_at":{"$numberLong":"`+fmt.Sprint(at.UnixNano()+1)+`"}},`+
		`"$inc":{"revision":{"$numberLong":"1"}}}`,
		extJSON(t, mustConnUpdate(t, c)))
}

func TestAPIKeyDocuments(t *testing.T) {
	k := &store.APIKey{ID: "k1", OrganizationID: "org-a", Name: "ci", Hash: []byte{0xde, 0xad, 0xbe, 0xef}, CreatedAt: at}
	require.Equal(t, `{"_id":"k1","organization_id":"org-a","name":"ci",`+
		`"hash":{"$binary":{"base64":"3q2+7w==","subType":"00"}},"created_at":{"$numberLong":"`+atNano+`"}}`,
		extJSON(t, apiKeyInsert(k)))
	revoked := at.Add(time.Hour)
	k.RevokedAt = &revoked
	require.NotContains(t, extJSON(t, apiKeyInsert(k)), "revoked_at", "a created key is live, as in SQLite")

	require.Equal(t, `{"hash":{"$binary":{"base64":"3q2+7w==","subType":"00"}},"revoked_at":{"$exists":false}}`,
		extJSON(t, apiKeyLookupFilter(k.Hash)))
	// A nil hash is empty binary, never null (which would also match a
	// document without a hash).
	require.Equal(t, `{"hash":{"$binary":{"base64":"","subType":"00"}},"revoked_at":{"$exists":false}}`,
		extJSON(t, apiKeyLookupFilter(nil)))
	require.Contains(t, extJSON(t, apiKeyInsert(&store.APIKey{})), `"hash":{"$binary":{"base64":"","subType":"00"}}`)

	require.Equal(t, `{"organization_id":"org-a"}`, extJSON(t, apiKeyListFilter("org-a")))
	require.Equal(t, `{"created_at":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`, extJSON(t, apiKeyListSort()))
	require.Equal(t, `{"_id":"k1","organization_id":"org-a","revoked_at":{"$exists":false}}`,
		extJSON(t, apiKeyRevokeFilter("org-a", "k1")))
	require.Equal(t, `{"$set":{"revoked_at":{"$numberLong":"`+fmt.Sprint(revoked.UnixNano())+`"}}}`,
		extJSON(t, apiKeyRevokeUpdate(revoked)))
}

func TestAPIKeyRoundTrip(t *testing.T) {
	k := &store.APIKey{ID: "k1", OrganizationID: "org-a", Name: "ci", Hash: []byte("hash-1"), CreatedAt: at}
	decode := func(doc any) *store.APIKey {
		var rec apiKeyRecord
		require.NoError(t, bson.Unmarshal(mustMarshal(t, doc), &rec))
		return rec.apiKey()
	}
	var stored bson.M
	require.NoError(t, bson.Unmarshal(mustMarshal(t, apiKeyInsert(k)), &stored))
	require.Equal(t, k, decode(stored))

	revoked := at.Add(time.Hour + time.Nanosecond)
	stored = applyUpdate(t, stored, apiKeyRevokeUpdate(revoked), false)
	k.RevokedAt = &revoked
	require.Equal(t, k, decode(stored))
}

func TestURI(t *testing.T) {
	for _, tc := range []struct{ uri, redacted, db string }{
		{"mongodb://localhost:27017", "mongodb://localhost:27017", ""},
		{"mongodb://localhost/itsm", "mongodb://localhost/itsm", "itsm"},
		{"mongodb://alice:s3cr%40t@h1:27017,h2:27017/itsm?replicaSet=rs0",
			"mongodb://alice:xxxxx@h1:27017,h2:27017/itsm?replicaSet=rs0", "itsm"},
		{"mongodb+srv://alice:pw@cluster.example.net/?retryWrites=true",
			"mongodb+srv://alice:xxxxx@cluster.example.net/?retryWrites=true", ""},
		{"mongodb://alice@h1/my%20db", "mongodb://alice@h1/my%20db", "my db"},
		{"mongodb://h1?replicaSet=rs0", "mongodb://h1?replicaSet=rs0", ""},
		{"alice:pw@h1", "(malformed URI)", ""},
	} {
		require.Equal(t, tc.redacted, redactURI(tc.uri), tc.uri)
		require.Equal(t, tc.db, uriDatabase(tc.uri), tc.uri)
	}
	require.Equal(t, []string{"s3cr%40t", "s3cr@t"}, uriPasswords("mongodb://alice:s3cr%40t@h1/db"))
	require.Empty(t, uriPasswords("mongodb://alice@h1/db"))
}

func TestScrub(t *testing.T) {
	base := fmt.Errorf("auth failed for s3cr@t: %w", context.DeadlineExceeded)
	err := scrub(base, "s3cr%40t", "s3cr@t")
	require.Equal(t, "auth failed for xxxxx: context deadline exceeded", err.Error())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Same(t, base, scrub(base, "absent"))
	require.NoError(t, scrub(nil, "x"))
}

// TestOpenErrors covers the failures Open reports before reaching a server.
func TestOpenErrors(t *testing.T) {
	_, err := Open(context.Background(), "mongodb://alice:s3cr3t@localhost:27017/?w=1", "")
	require.ErrorContains(t, err, "no database name")
	require.NotContains(t, err.Error(), "s3cr3t")

	_, err = Open(context.Background(), "mongodb://alice:s3cr3t@localhost:notaport/itsm", "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t")
	require.Contains(t, err.Error(), "alice:xxxxx@")
}

func TestPurgeFilterIsScopedToTheOrganization(t *testing.T) {
	got, err := bson.MarshalExtJSON(purgeFilter("org-a", "conn-1"), true, false)
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","connection_id":"conn-1"}`, string(got))
}
