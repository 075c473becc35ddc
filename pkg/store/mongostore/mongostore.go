// Package mongostore is the production store: MongoDB (a replica set) through
// the official v2 driver.
//
// Everything the server sees (filters, updates, sorts, indexes) is built by
// the small pure functions in documents.go, connections.go and apikeys.go,
// which the unit tests pin down exactly; the methods here only ship those
// documents to the driver. The shared conformance suite runs against a
// MongoDB wire-protocol server embedded in the wiretest module (FerretDB) in
// every make test, and against a real MongoDB when ITSM_TEST_MONGODB_URI is
// set. The store is written for MongoDB's behaviour where the two differ
// (docs/mongodb.md).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

const (
	documentsCollection   = "documents"
	connectionsCollection = "connections"
	apiKeysCollection     = "api_keys"
	// disconnectTimeout bounds Close: it only has to end in-flight
	// operations and close sockets, and shutdown must not hang on a dead server.
	disconnectTimeout = 10 * time.Second
)

// Store is a store.Store on one MongoDB database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	docs   *mongo.Collection
	conns  *mongo.Collection
	keys   *mongo.Collection
}

var _ store.Store = (*Store)(nil)

// Open connects to the deployment at uri, checks that it answers, and creates
// the indexes. dbName wins; when it is empty the database in the URI's path is
// used. Errors never contain the URI's password.
func Open(ctx context.Context, uri, dbName string) (*Store, error) {
	safe := redactURI(uri)
	if dbName == "" {
		dbName = uriDatabase(uri)
	}
	if dbName == "" {
		return nil, fmt.Errorf("open mongodb %s: no database name given and none in the URI", safe)
	}
	// The driver may echo parts of the URI in its errors; scrub the password
	// out of every error that leaves Open.
	fail := func(what string, err error) error {
		return fmt.Errorf("%s mongodb %s: %w", what, safe, scrub(err, uriPasswords(uri)...))
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fail("connect to", err)
	}
	db := client.Database(dbName)
	s := &Store{client: client, db: db, docs: db.Collection(documentsCollection),
		conns: db.Collection(connectionsCollection), keys: db.Collection(apiKeysCollection)}
	if err := client.Ping(ctx, nil); err != nil {
		s.Close()
		return nil, fail("ping", err)
	}
	// One createIndexes command per index: MongoDB treats a request for an
	// identical existing index as a no-op either way, and FerretDB v1 (the
	// tests' wire server) fails a request naming two or more existing ones.
	for _, ci := range indexModels() {
		for _, m := range ci.models {
			if _, err := db.Collection(ci.collection).Indexes().CreateOne(ctx, m); err != nil {
				s.Close()
				return nil, fail("create "+ci.collection+" indexes in", err)
			}
		}
	}
	return s, nil
}

func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	return s.client.Disconnect(ctx)
}

func (s *Store) Ping(ctx context.Context) error {
	return s.client.Ping(ctx, nil)
}

// Put is one upsert whose filter carries the version guard, so the check and
// the write are a single atomic operation on one document; see putOutcome for
// how a duplicate-key answer is read.
func (s *Store) Put(ctx context.Context, d *store.Document) (store.Outcome, error) {
	filter, update := putFilter(d), putUpdate(d)
	opts := options.UpdateOne().SetUpsert(true)
	for attempt := 1; ; attempt++ {
		res, err := s.docs.UpdateOne(ctx, filter, update, opts)
		out, retry, err := putOutcome(attempt, res, err)
		if err != nil {
			return 0, fmt.Errorf("put %s %s: %w", d.Kind, d.ID, err)
		}
		if !retry {
			return out, nil
		}
	}
}

// Insert writes the whole document; the unique _id refuses it when any
// version of the document is stored.
func (s *Store) Insert(ctx context.Context, d *store.Document) (store.Outcome, error) {
	_, err := s.docs.InsertOne(ctx, insertDoc(d))
	switch {
	case mongo.IsDuplicateKeyError(err):
		return store.NotNewer, nil
	case err != nil:
		return 0, fmt.Errorf("insert %s %s: %w", d.Kind, d.ID, err)
	}
	return store.Written, nil
}

func (s *Store) Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*store.Document, error) {
	var rec docRecord
	err := s.docs.FindOne(ctx, getFilter(orgID, kind, id)).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	return rec.document(), nil
}

func (s *Store) GetByIdentifier(ctx context.Context, orgID string, kind itsm.Kind, identifier string) (*store.Document, error) {
	var rec docRecord
	opts := options.FindOne().SetSort(identifierSort())
	err := s.docs.FindOne(ctx, identifierFilter(orgID, kind, identifier), opts).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%s %s: %w", kind, identifier, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s by identifier: %w", kind, err)
	}
	return rec.document(), nil
}

func (s *Store) List(ctx context.Context, f store.Filter) (store.Page, error) {
	filter, err := listFilter(f)
	if err != nil {
		return store.Page{}, err
	}
	limit := f.EffectiveLimit()
	opts := options.Find().SetSort(listSort()).SetLimit(listLimit(limit))
	cur, err := s.docs.Find(ctx, filter, opts)
	if err != nil {
		return store.Page{}, fmt.Errorf("list %s: %w", f.Kind, err)
	}
	var recs []docRecord
	if err := cur.All(ctx, &recs); err != nil {
		return store.Page{}, fmt.Errorf("list %s: %w", f.Kind, err)
	}
	return makePage(recs, limit), nil
}

// MarkSeen sets sync_id only; a document that is missing (or another
// organization's) matches nothing, which is not an error.
func (s *Store) MarkSeen(ctx context.Context, orgID string, kind itsm.Kind, id, syncID string) error {
	if _, err := s.docs.UpdateOne(ctx, markSeenFilter(orgID, kind, id), markSeenUpdate(syncID)); err != nil {
		return fmt.Errorf("mark %s %s seen: %w", kind, id, err)
	}
	return nil
}

func (s *Store) PurgeConnection(ctx context.Context, orgID, connectionID string) (int64, error) {
	res, err := s.docs.DeleteMany(ctx, purgeFilter(orgID, connectionID))
	if err != nil {
		return 0, fmt.Errorf("purge connection %s: %w", connectionID, err)
	}
	return res.DeletedCount, nil
}

func (s *Store) CreateConnection(ctx context.Context, c *store.Connection) error {
	doc, err := connInsert(c)
	if err != nil {
		return fmt.Errorf("create connection %s: %w", c.ID, err)
	}
	_, err = s.conns.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("connection %s: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create connection %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) findConn(ctx context.Context, id string, filter any) (*store.Connection, error) {
	var rec connRecord
	err := s.conns.FindOne(ctx, filter).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", id, err)
	}
	return rec.connection()
}

func (s *Store) GetConnection(ctx context.Context, orgID, id string) (*store.Connection, error) {
	return s.findConn(ctx, id, connFilter(orgID, id))
}

func (s *Store) LookupConnection(ctx context.Context, id string) (*store.Connection, error) {
	return s.findConn(ctx, id, connLookupFilter(id))
}

func (s *Store) ListConnections(ctx context.Context, orgID string) ([]*store.Connection, error) {
	return s.findConns(ctx, connListFilter(orgID))
}

func (s *Store) PageConnections(ctx context.Context, q store.ConnectionPageQuery) (store.ConnectionPage, error) {
	filter, err := connPageFilter(q)
	if err != nil {
		return store.ConnectionPage{}, err
	}
	limit := q.EffectiveLimit()
	// One more than the page tells whether another page follows.
	list, err := s.findConns(ctx, filter, options.Find().SetLimit(int64(limit+1)))
	if err != nil {
		return store.ConnectionPage{}, err
	}
	return store.MakeConnectionPage(list, limit), nil
}

func (s *Store) CountConnections(ctx context.Context, orgID string) (int, error) {
	n, err := s.conns.CountDocuments(ctx, connCountFilter(orgID))
	if err != nil {
		return 0, fmt.Errorf("count connections: %w", err)
	}
	return int(n), nil
}

func (s *Store) FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error) {
	return s.findConns(ctx, connQueryFilter(q))
}

func (s *Store) findConns(ctx context.Context, filter bson.D, opts ...options.Lister[options.FindOptions]) ([]*store.Connection, error) {
	cur, err := s.conns.Find(ctx, filter, append(opts, options.Find().SetSort(connListSort()))...)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	var recs []connRecord
	if err := cur.All(ctx, &recs); err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	var out []*store.Connection
	for i := range recs {
		c, err := recs[i].connection()
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// UpdateConnection is a compare-and-set on the revision: the filter only
// matches the revision the caller read, and the same update increments it.
func (s *Store) UpdateConnection(ctx context.Context, c *store.Connection) error {
	update, err := connUpdate(c)
	if err != nil {
		return fmt.Errorf("update connection %s: %w", c.ID, err)
	}
	res, err := s.conns.UpdateOne(ctx, connUpdateFilter(c), update)
	if err != nil {
		return fmt.Errorf("update connection %s: %w", c.ID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("connection %s changed concurrently or is gone: %w", c.ID, store.ErrConflict)
	}
	c.Revision++
	return nil
}

func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	_, err := s.keys.InsertOne(ctx, apiKeyInsert(k))
	if mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("api key %s: %w", k.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, err)
	}
	return nil
}

func (s *Store) LookupAPIKey(ctx context.Context, hash []byte) (*store.APIKey, error) {
	var rec apiKeyRecord
	err := s.keys.FindOne(ctx, apiKeyLookupFilter(hash)).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	return rec.apiKey(), nil
}

func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]*store.APIKey, error) {
	cur, err := s.keys.Find(ctx, apiKeyListFilter(orgID), options.Find().SetSort(apiKeyListSort()))
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	var recs []apiKeyRecord
	if err := cur.All(ctx, &recs); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	var out []*store.APIKey
	for i := range recs {
		out = append(out, recs[i].apiKey())
	}
	return out, nil
}

// RevokeAPIKey reports a key that is missing, another organization's or
// already revoked as not found: the filter matches none of them.
func (s *Store) RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error {
	res, err := s.keys.UpdateOne(ctx, apiKeyRevokeFilter(orgID, id), apiKeyRevokeUpdate(at))
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("api key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// ExplainList is the server's query plan for List(f): the explain command
// (queryPlanner verbosity) on exactly the query List sends, so that tests
// and operators can see which index a page read uses.
func (s *Store) ExplainList(ctx context.Context, f store.Filter) (bson.Raw, error) {
	filter, err := listFilter(f)
	if err != nil {
		return nil, err
	}
	return s.explain(ctx, findCommand(filter, listSort(), listLimit(f.EffectiveLimit())))
}

// ExplainGetByIdentifier is the server's query plan for GetByIdentifier.
func (s *Store) ExplainGetByIdentifier(ctx context.Context, orgID string, kind itsm.Kind, identifier string) (bson.Raw, error) {
	return s.explain(ctx, findCommand(identifierFilter(orgID, kind, identifier), identifierSort(), 1))
}

func (s *Store) explain(ctx context.Context, find bson.D) (bson.Raw, error) {
	raw, err := s.db.RunCommand(ctx, explainCommand(find)).Raw()
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	return raw, nil
}
