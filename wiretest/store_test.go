package wiretest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/mongostore"
	"github.com/itsmhub/itsm/pkg/store/storetest"
	"github.com/itsmhub/itsm/wiretest"
)

// server is a MongoDB wire-protocol server the tests run against.
type server struct {
	name string
	// uri makes the connection string of database db.
	uri func(db string) string
	// ferretDB is true for the embedded FerretDB, which is not MongoDB.
	ferretDB bool
}

// servers are the embedded FerretDB, always, and the MongoDB deployment
// ITSM_TEST_MONGODB_URI names, when it is set (its path's database is
// replaced by each test's own).
func servers(t *testing.T) []server {
	t.Helper()
	fdb := wiretest.StartTest(t)
	out := []server{{name: "FerretDB", uri: fdb.URI, ferretDB: true}}
	if uri := os.Getenv("ITSM_TEST_MONGODB_URI"); uri != "" {
		out = append(out, server{name: "MongoDB", uri: func(db string) string { return withDatabase(t, uri, db) }})
	}
	return out
}

// openStore opens the production store on a fresh database of srv and drops
// the database when the test ends.
func openStore(t *testing.T, srv server) (*mongostore.Store, string) {
	t.Helper()
	db := "itsmtest_" + randomHex(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongostore.Open(ctx, srv.uri(db), "")
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		dropDatabase(t, srv.uri(db), db)
	})
	return s, db
}

func dropDatabase(t *testing.T, uri, db string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client(t, uri)
	if err := c.Database(db).Drop(ctx); err != nil {
		t.Errorf("drop test database %s: %v", db, err)
	}
}

// client is a plain driver client, closed when the test ends.
func client(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	return c
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// TestConformance runs the shared store suite on the production MongoDB
// store, each case on a fresh database.
func TestConformance(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			var opts []storetest.Option
			if srv.ferretDB {
				opts = append(opts, storetest.KnownDifference("ConcurrentPutsConverge", concurrentPutsDifference))
			}
			storetest.Run(t, func(t *testing.T) store.Store {
				s, _ := openStore(t, srv)
				return s
			}, opts...)
		})
	}
}

// concurrentPutsDifference is why ConcurrentPutsConverge does not run on
// FerretDB; TestFerretDBUpdatesAreNotAtomic below proves it.
const concurrentPutsDifference = "FerretDB v1 (SQLite backend) reads a document, applies the update in memory " +
	"and writes it back by _id without re-checking the filter, so concurrent conditional updates of one " +
	"document can lose one another; MongoDB applies a single-document update atomically. " +
	"See TestFerretDBUpdatesAreNotAtomic and docs/mongodb.md."
