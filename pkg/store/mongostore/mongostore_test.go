package mongostore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/storetest"
)

// No MongoDB server is available in development, so these tests pin down the
// exact documents the store sends; the conformance suite below checks the
// behaviour when ITSM_TEST_MONGODB_URI points at a server.

// TestConformance runs the shared store suite, each subtest on a fresh
// database that is dropped afterwards.
func TestConformance(t *testing.T) {
	uri := os.Getenv("ITSM_TEST_MONGODB_URI")
	if uri == "" {
		t.Skip("ITSM_TEST_MONGODB_URI is unset: the MongoDB conformance suite needs a server; " +
			"the BSON unit tests in this package still run")
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
		UpdatedAt: at,
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
	docs, conns := indexModels()
	var got []string
	for _, m := range append(docs, conns...) {
		o := indexOptions(t, m)
		require.Nil(t, o.Unique, "the only unique key is _id, which MongoDB always indexes")
		got = append(got, *o.Name+" "+extJSON(t, m.Keys))
	}
	require.Equal(t, []string{
		`documents_list {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"updated_at":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`,
		`documents_identifier {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"identifier":{"$numberInt":"1"}}`,
		`documents_ticket {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"ticket_id":{"$numberInt":"1"}}`,
		`documents_project {"organization_id":{"$numberInt":"1"},"kind":{"$numberInt":"1"},"project_id":{"$numberInt":"1"}}`,
		`connections_org {"organization_id":{"$numberInt":"1"},"_id":{"$numberInt":"1"}}`,
	}, got)
}

func TestPutFilter(t *testing.T) {
	require.Equal(t,
		`{"_id":"ticket:id-1","organization_id":"org-a","version":{"$lt":{"$numberLong":"1767322800000"}}}`,
		extJSON(t, putFilter(fullDoc())))
}

func TestPutUpdate(t *testing.T) {
	d := fullDoc()
	require.Equal(t, `{"$set":{"kind":"ticket","id":"id-1","organization_id":"org-a","connection_id":"conn-1",`+
		`"version":{"$numberLong":"1767322800000"},"deleted":true,"identifier":"PROJ-1","status":"OPEN","priority":"HIGH",`+
		`"project_id":"p1","ticket_id":"t1","assigned_user_id":"u1","updated_at":{"$numberLong":"`+atNano+`"},`+
		`"body":`+mustJSONString(t, string(d.Body))+`}}`,
		extJSON(t, putUpdate(d)))
}

func mustJSONString(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

// storedDoc is what an upsert of d stores: _id from putFilter's equality,
// everything else from putUpdate's $set.
func storedDoc(t *testing.T, d *store.Document) []byte {
	t.Helper()
	set := putUpdate(d)[0].Value.(bson.D)
	raw, err := bson.Marshal(append(bson.D{{Key: "_id", Value: putFilter(d)[0].Value}}, set...))
	require.NoError(t, err)
	return raw
}

// TestDocumentRoundTrip checks that what Put writes decodes to the same
// document, byte for byte in the body and to the nanosecond in updated_at.
func TestDocumentRoundTrip(t *testing.T) {
	d := fullDoc()
	var rec docRecord
	require.NoError(t, bson.Unmarshal(storedDoc(t, d), &rec))
	got := rec.document()
	require.Equal(t, string(d.Body), string(got.Body))
	got.Body = d.Body
	require.Equal(t, d, got)
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
		UpdatedSince: at.Add(-time.Hour), Cursor: cursor, Limit: 5,
	})
	require.NoError(t, err)
	require.Equal(t, `{"organization_id":"org-a","kind":"comment","connection_id":"c1","status":"OPEN",`+
		`"priority":"LOW","project_id":"p1","ticket_id":"t1","assigned_user_id":"u1","identifier":"PROJ-1",`+
		`"updated_at":{"$gte":{"$numberLong":"`+fmt.Sprint(at.Add(-time.Hour).UnixNano())+`"}},`+
		`"$or":[{"updated_at":{"$gt":{"$numberLong":"`+atNano+`"}}},`+
		`{"updated_at":{"$numberLong":"`+atNano+`"},"_id":{"$gt":"comment:id-5"}}]}`,
		extJSON(t, q))

	_, err = listFilter(store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, Cursor: "!!not-a-cursor"})
	require.ErrorIs(t, err, store.ErrInvalid)
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

// find is a tiny MongoDB find: equality, $gt, $gte, $lt and $or on strings
// and int64s, a sort on top-level fields, and a limit.
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
		ops, isOps := e.Value.(bson.D)
		if !isOps {
			if compare(t, m[e.Key], e.Value) != 0 {
				return false
			}
			continue
		}
		for _, op := range ops {
			c := compare(t, m[e.Key], op.Value)
			ok := map[string]bool{"$gt": c > 0, "$gte": c >= 0, "$lt": c < 0}
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
			PriorityMapping:   map[string]itsm.Priority{"Urgent": itsm.PriorityCritical, "P1.a": itsm.PriorityHigh},
			StatusMapping:     map[string]itsm.Status{"$Triage": itsm.StatusOpen},
		},
		RefreshIntervalSecs: 21600, TimeoutSecs: 1800, Secret: []byte{1, 2, 3}, Revision: 4,
		CreatedAt: at, UpdatedAt: at.Add(time.Nanosecond),
	}
}

func TestConnInsert(t *testing.T) {
	c := fullConn()
	require.Equal(t, `{"_id":"conn-1","organization_id":"org-a","vendor":"JIRA","state":"ACTIVE",`+
		`"site_url":"https://acme.atlassian.net","cloud_id":"cloud-1",`+
		`"options":{"project_keys_filter":["ABC","DEF"],`+
		`"priority_mapping":[{"vendor":"P1.a","value":"HIGH"},{"vendor":"Urgent","value":"CRITICAL"}],`+
		`"status_mapping":[{"vendor":"$Triage","value":"OPEN"}]},`+
		`"refresh_interval_secs":{"$numberLong":"21600"},"timeout_secs":{"$numberLong":"1800"},`+
		`"secret":{"$binary":{"base64":"AQID","subType":"00"}},"revision":{"$numberLong":"4"},`+
		`"created_at":{"$numberLong":"`+atNano+`"},"updated_at":{"$numberLong":"`+fmt.Sprint(at.UnixNano()+1)+`"}}`,
		extJSON(t, connInsert(c)))
}

func TestConnRoundTrip(t *testing.T) {
	for _, c := range []*store.Connection{fullConn(), {ID: "bare", OrganizationID: "org-a", CreatedAt: at, UpdatedAt: at}} {
		raw, err := bson.Marshal(connInsert(c))
		require.NoError(t, err)
		var rec connRecord
		require.NoError(t, bson.Unmarshal(raw, &rec))
		require.Equal(t, c, rec.connection())
	}
	// Empty but non-nil options read back as nil, like the SQLite store's
	// JSON with omitempty.
	c := &store.Connection{ID: "e", Options: store.ConnectionOptions{ProjectKeysFilter: []string{},
		PriorityMapping: map[string]itsm.Priority{}, StatusMapping: map[string]itsm.Status{}}, CreatedAt: at, UpdatedAt: at}
	raw, err := bson.Marshal(connInsert(c))
	require.NoError(t, err)
	var rec connRecord
	require.NoError(t, bson.Unmarshal(raw, &rec))
	require.Equal(t, store.ConnectionOptions{}, rec.connection().Options)
}

func TestConnFilters(t *testing.T) {
	c := fullConn()
	require.Equal(t, `{"_id":"conn-1","organization_id":"org-a"}`, extJSON(t, connFilter("org-a", "conn-1")))
	require.Equal(t, `{"_id":"conn-1"}`, extJSON(t, connLookupFilter("conn-1")))
	require.Equal(t, `{"organization_id":"org-a"}`, extJSON(t, connListFilter("org-a")))
	require.Equal(t, `{"_id":{"$numberInt":"1"}}`, extJSON(t, connListSort()))
	require.Equal(t, `{"_id":"conn-1","organization_id":"org-a","revision":{"$numberLong":"4"}}`,
		extJSON(t, connUpdateFilter(c)))
	require.Equal(t, `{"$set":{"state":"ACTIVE","site_url":"https://acme.atlassian.net","cloud_id":"cloud-1",`+
		`"options":{"project_keys_filter":["ABC","DEF"],`+
		`"priority_mapping":[{"vendor":"P1.a","value":"HIGH"},{"vendor":"Urgent","value":"CRITICAL"}],`+
		`"status_mapping":[{"vendor":"$Triage","value":"OPEN"}]},`+
		`"refresh_interval_secs":{"$numberLong":"21600"},"timeout_secs":{"$numberLong":"1800"},`+
		`"secret":{"$binary":{"base64":"AQID","subType":"00"}},"updated_at":{"$numberLong":"`+fmt.Sprint(at.UnixNano()+1)+`"}},`+
		`"$inc":{"revision":{"$numberLong":"1"}}}`,
		extJSON(t, connUpdate(c)))
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
