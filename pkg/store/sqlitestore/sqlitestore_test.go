package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "itsm.db"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Writes are committed in groups (commit.go); a write that fails must fail
// alone, not take the other writes of its transaction with it.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "itsm.db"))
	require.NoError(t, err)
	defer s.Close()

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &store.Document{Kind: itsm.KindTicket, ID: fmt.Sprintf("t-%d", i), OrganizationID: "org",
				ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)}
			if i%10 == 0 {
				d.Body = nil // violates NOT NULL
			}
			_, errs[i] = s.Put(ctx, d)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, getErr := s.Get(ctx, "org", itsm.KindTicket, fmt.Sprintf("t-%d", i))
		if i%10 == 0 {
			require.Error(t, err, "write %d", i)
			require.ErrorIs(t, getErr, store.ErrNotFound)
			continue
		}
		require.NoError(t, err, "write %d", i)
		require.NoError(t, getErr, "write %d", i)
	}
}

// While writes queue behind the committer the WAL is checkpointed rarely,
// and once they stop queueing, often again (commit.go).
func TestCheckpointsRarelyUnderBacklog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	body := json.RawMessage(fmt.Sprintf(`{"text":%q}`, strings.Repeat("x", 3000)))
	put := func(id string) {
		_, err := s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: id, OrganizationID: "org",
			ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: body})
		require.NoError(t, err)
	}
	walPages := func() int64 {
		fi, err := os.Stat(path + "-wal")
		require.NoError(t, err)
		return fi.Size() / 4096
	}

	// 1,024 writers keep four batches queued. Ten writes each leave room
	// for the batches a busy machine commits below the backlog size (with
	// six, a run beside other tests once ended at 3,597 pages).
	var wg sync.WaitGroup
	for g := range 1024 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				put(fmt.Sprintf("b-%d-%d", g, i))
			}
		}()
	}
	wg.Wait()
	// Checkpointing every 1,000 pages reuses the WAL from its start after
	// each, so it would never grow past 1,000 pages and a batch.
	t.Logf("WAL after the backlog: %d pages", walPages())
	require.Greater(t, walPages(), int64(4000), "checkpointed as often under a backlog as without")

	// Writes one at a time: the next commit checkpoints the whole WAL, and
	// the one after starts it over.
	for i := range 3 {
		put(fmt.Sprintf("a-%d", i))
	}
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var busy, frames, done int
	require.NoError(t, db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done))
	require.Less(t, frames, 100, "the WAL was not checkpointed once writes stopped queueing")
}

// A write queued when the store closes is answered, not left waiting.
func TestCloseAnswersWrites(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "itsm.db"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: fmt.Sprintf("t-%d", i), OrganizationID: "org",
				Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)})
		}()
	}
	require.NoError(t, s.Close())
	wg.Wait() // returns: every Put got an answer
	_, err = s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: "late", OrganizationID: "org", Version: 1, Body: json.RawMessage(`{}`)})
	require.Error(t, err)
}

// A file made with the earlier WITHOUT ROWID layout is rebuilt on open, its
// documents kept.
func TestMigratesWithoutRowidLayout(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	old, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = old.ExecContext(ctx, `CREATE TABLE documents (
	kind TEXT NOT NULL, id TEXT NOT NULL, organization_id TEXT NOT NULL, connection_id TEXT NOT NULL,
	version INTEGER NOT NULL, deleted INTEGER NOT NULL, identifier TEXT NOT NULL, status TEXT NOT NULL,
	priority TEXT NOT NULL, project_id TEXT NOT NULL, ticket_id TEXT NOT NULL, assigned_user_id TEXT NOT NULL,
	updated_at INTEGER NOT NULL, sync_id TEXT NOT NULL DEFAULT '', body BLOB NOT NULL,
	PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX documents_list ON documents (organization_id, kind, updated_at, id);
INSERT INTO documents VALUES ('ticket', 't1', 'org', 'c', 5, 0, 'P-1', 'TODO', 'HIGH', '', '', '', 7, 's', '{"a":1}');`)
	require.NoError(t, err)
	require.NoError(t, old.Close())

	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	d, err := s.Get(ctx, "org", itsm.KindTicket, "t1")
	require.NoError(t, err)
	require.Equal(t, int64(5), d.Version)
	require.Equal(t, "P-1", d.Identifier)
	require.Equal(t, "s", d.SyncID)
	require.JSONEq(t, `{"a":1}`, string(d.Body))
	// The version guard works on the rebuilt table's key.
	out, err := s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: "t1", OrganizationID: "org", Version: 5, Body: json.RawMessage(`{}`)})
	require.NoError(t, err)
	require.Equal(t, store.NotNewer, out)

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var ddl string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'documents'`).Scan(&ddl))
	require.NotContains(t, ddl, "WITHOUT ROWID")
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents' AND sql IS NOT NULL`).Scan(&n))
	require.Equal(t, 6, n, "the key and the five filter indexes")
}

// The identifier, ticket and project indexes are partial. A file made with
// the earlier full indexes gets the partial ones when opened, and the
// store's filter queries are planned on them: a query that does not repeat
// a partial index's condition cannot use it and would scan the kind.
func TestFilterQueriesUsePartialIndexes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `DROP INDEX documents_ticket_set;
CREATE INDEX documents_ticket ON documents (organization_id, kind, ticket_id);`)
	require.NoError(t, err)

	s, err = sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	indexes := func() []string {
		rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents' AND sql IS NOT NULL ORDER BY name`)
		require.NoError(t, err)
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			names = append(names, n)
		}
		return names
	}
	require.Equal(t, []string{"documents_identifier_set", "documents_key", "documents_list", "documents_name_set", "documents_project_set", "documents_ticket_set"}, indexes())

	// Documents of every shape, so that the filters have something to find.
	for i, d := range []store.Document{
		{Kind: itsm.KindTicket, ID: "t1", Identifier: "P-1", ProjectID: "p1"},
		{Kind: itsm.KindComment, ID: "c1", TicketID: "t1"},
		{Kind: itsm.KindComment, ID: "c2"},
	} {
		d.OrganizationID, d.ConnectionID, d.Version, d.Body = "org", "c", int64(i+1), json.RawMessage(`{}`)
		_, err := s.Put(ctx, &d)
		require.NoError(t, err)
	}
	got, err := s.GetByIdentifier(ctx, "org", itsm.KindTicket, "P-1")
	require.NoError(t, err)
	require.Equal(t, "t1", got.ID)
	_, err = s.GetByIdentifier(ctx, "org", itsm.KindComment, "")
	require.ErrorIs(t, err, store.ErrNotFound, "an empty identifier names nothing")
	for _, f := range []store.Filter{{Kind: itsm.KindComment, TicketID: "t1"}, {Kind: itsm.KindTicket, ProjectID: "p1"}, {Kind: itsm.KindTicket, Identifier: "P-1"}} {
		f.OrganizationID = "org"
		p, err := s.List(ctx, f)
		require.NoError(t, err)
		require.Len(t, p.Docs, 1, "%+v", f)
	}

	// The plans, for the statements the store builds from those filters.
	plan := func(q string, args ...any) string {
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			out = append(out, detail)
		}
		return fmt.Sprint(out)
	}
	for f, index := range map[store.Filter]string{
		{Kind: itsm.KindComment, TicketID: "t1"}:   "documents_ticket_set",
		{Kind: itsm.KindTicket, ProjectID: "p1"}:   "documents_project_set",
		{Kind: itsm.KindTicket, Identifier: "P-1"}: "documents_identifier_set",
		{Kind: itsm.KindUser, Name: "ada"}:         "documents_name_set",
	} {
		f.OrganizationID = "org"
		q, args, err := sqlitestore.ListQuery(f)
		require.NoError(t, err)
		require.Contains(t, plan(q, args...), "USING INDEX "+index, q)
	}
	require.Contains(t, plan(sqlitestore.GetByIdentifierSQL, "org", "ticket", "P-1"), "USING INDEX documents_identifier_set")
}

// A documents table of an earlier version, without the name column, gets
// it when opened; its rows are kept and read back with an empty name.
func TestAddsTheNameColumn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	old, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = old.ExecContext(ctx, `CREATE TABLE documents (
	kind TEXT NOT NULL, id TEXT NOT NULL, organization_id TEXT NOT NULL, connection_id TEXT NOT NULL,
	version INTEGER NOT NULL, deleted INTEGER NOT NULL, identifier TEXT NOT NULL, status TEXT NOT NULL,
	priority TEXT NOT NULL, project_id TEXT NOT NULL, ticket_id TEXT NOT NULL, assigned_user_id TEXT NOT NULL,
	updated_at INTEGER NOT NULL, sync_id TEXT NOT NULL DEFAULT '', body BLOB NOT NULL);
CREATE UNIQUE INDEX documents_key ON documents (kind, id);
INSERT INTO documents VALUES ('user', 'u1', 'org', 'c', 5, 0, '', 'ACTIVE', '', '', '', '', 7, 's', '{"name":"Ada"}');`)
	require.NoError(t, err)
	require.NoError(t, old.Close())

	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	d, err := s.Get(ctx, "org", itsm.KindUser, "u1")
	require.NoError(t, err)
	require.Empty(t, d.Name)
	require.JSONEq(t, `{"name":"Ada"}`, string(d.Body))
	d.Version, d.Name = 6, "ada"
	_, err = s.Put(ctx, d)
	require.NoError(t, err)
	p, err := s.List(ctx, store.Filter{OrganizationID: "org", Kind: itsm.KindUser, Name: "ada"})
	require.NoError(t, err)
	require.Len(t, p.Docs, 1)
	require.NoError(t, s.Close())
	s2, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err, "opening a current file again adds nothing")
	require.NoError(t, s2.Close())
}

// The database holds every tenant's data: its files are the owner's only,
// also when an earlier version created them readable by others.
func TestFilesOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "itsm.db")
	s, err := sqlitestore.Open(context.Background(), path)
	require.NoError(t, err)
	_, err = s.Put(context.Background(), &store.Document{Kind: itsm.KindTicket, ID: "t1", OrganizationID: "org-a",
		ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: []byte(`{}`)})
	require.NoError(t, err)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
	}
	require.NoError(t, s.Close())

	old := filepath.Join(dir, "old.db")
	require.NoError(t, os.WriteFile(old, nil, 0o644))
	require.NoError(t, os.Chmod(old, 0o644))
	s, err = sqlitestore.Open(context.Background(), old)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	fi, err := os.Stat(old)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// A connection row as the platform wrote it before the connection
// vocabulary had types reads back, is found by its state and is written
// back unchanged.
func TestReadsStoredConnectionRow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	const detail = `{"health":{"status":"FAILED","resolution_owner":"PLATFORM","updated_at":"2026-01-02T03:04:05Z"},` +
		`"last_sync":{"id":"s1","kind":"full","phase":"done","status":"COMPLETED","objects":7,"errors":0,` +
		`"started_at":"2026-01-02T03:04:05Z"}}`
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.ExecContext(ctx, `INSERT INTO connections (id, organization_id, vendor, state, site_url, cloud_id, options,
	refresh_interval_secs, timeout_secs, secret, detail, revision, created_at, updated_at)
	VALUES ('c1', 'org', 'JIRA', 'PAUSED', 'https://acme.atlassian.net', 'cloud', '{}', 60, 30, x'01', ?, 1, 5, 6)`, detail)
	require.NoError(t, err)

	c, err := s.LookupConnection(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, store.StatePaused, c.State)
	require.Equal(t, store.HealthFailed, c.Detail.Health.Status)
	require.Equal(t, store.OwnerPlatform, c.Detail.Health.ResolutionOwner)
	require.Equal(t, store.SyncFull, c.Detail.LastSync.Kind)
	require.Equal(t, store.SyncCompleted, c.Detail.LastSync.Status)
	found, err := s.FindConnections(ctx, store.ConnectionQuery{State: store.StatePaused})
	require.NoError(t, err)
	require.Len(t, found, 1)

	require.NoError(t, s.UpdateConnection(ctx, c))
	var state, stored string
	require.NoError(t, raw.QueryRowContext(ctx, `SELECT state, detail FROM connections WHERE id = 'c1'`).Scan(&state, &stored))
	require.Equal(t, "PAUSED", state)
	require.Equal(t, detail, stored)
}

// A live write (store.Urgent) queued behind a backlog of bulk writes goes
// into the next transaction, ahead of the backlog.
func TestUrgentWritesGoAheadOfABacklog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()

	// Another connection holds the write lock, so the committer's next
	// transaction waits while the backlog builds up.
	release := holdWriteLock(t, path)

	put := func(ctx context.Context, id string) error {
		_, err := s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: id, OrganizationID: "org",
			ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)})
		return err
	}
	const bulk = 700
	var done atomic.Int64
	var wg sync.WaitGroup
	for i := range bulk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, put(ctx, fmt.Sprintf("bulk-%d", i)))
			done.Add(1)
		}()
	}
	time.Sleep(300 * time.Millisecond) // the backlog queues up
	urgentDone := make(chan int64, 1)
	go func() {
		assert.NoError(t, put(store.Urgent(ctx), "live"))
		urgentDone <- done.Load()
	}()
	time.Sleep(100 * time.Millisecond)
	release()
	before := <-urgentDone
	wg.Wait()
	t.Logf("%d of %d bulk writes were done before the live one", before, bulk)
	require.LessOrEqual(t, before, int64(256), "the live write waited at most for the transaction already under way")
}

// Concurrent bulk writers, each with one write at a time as the
// normalizer's sync workers are, share transactions: a batch waits a
// moment for the writers the batch before it answered.
func TestConcurrentBulkWritesShareTransactions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	const writers, each = 32, 60
	writeQueued(t, s, path, "c", writers, each)
	batches, lingers := s.CommitStats()
	t.Logf("%d writes in %d transactions, %d of them waited", writers*each, batches, lingers)
	require.Positive(t, lingers)
	// Without the wait they share about three per transaction.
	require.LessOrEqual(t, batches, int64(writers*each/8), "at least 8 writes per transaction on average")
}

// A wait that runs out lowers the size a batch waits for; many writers
// that come after it get it back at once, not one probe at a time.
func TestBatchesGrowBackWhenWritersJoin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "itsm.db")
	s, err := sqlitestore.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	// Two writes that queued together wait for company that never comes.
	writeQueued(t, s, path, "few", 3, 1)
	few, lingers := s.CommitStats()
	require.Positive(t, lingers)
	const writers, each = 32, 60
	writeQueued(t, s, path, "many", writers, each)
	batches, _ := s.CommitStats()
	t.Logf("after %d transactions, %d writes in %d transactions", few, writers*each, batches-few)
	require.LessOrEqual(t, batches-few, int64(writers*each/16), "at least 16 writes per transaction on average")
}

// writeQueued runs writeTogether while another connection holds the
// write lock for a moment, so that the writers' first writes reach the
// committer together whatever the scheduler does.
func writeQueued(t *testing.T, s *sqlitestore.Store, path, prefix string, writers, n int) {
	t.Helper()
	release := holdWriteLock(t, path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeTogether(t, s, prefix, writers, n)
	}()
	time.Sleep(300 * time.Millisecond)
	release()
	<-done
}

// holdWriteLock takes the database's write lock on a connection of its
// own; release gives it back.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	other, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	return func() {
		_, err := conn.ExecContext(ctx, "ROLLBACK")
		require.NoError(t, err)
	}
}

// writeTogether starts writers that each insert n comments, one at a
// time, once all of them are running: a goroutine started late on a
// loaded machine would otherwise write alone.
func writeTogether(t *testing.T, s *sqlitestore.Store, prefix string, writers, n int) {
	t.Helper()
	ctx := context.Background()
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			for i := range n {
				_, err := s.Insert(ctx, &store.Document{Kind: itsm.KindComment, ID: fmt.Sprintf("%s-%d-%d", prefix, w, i),
					OrganizationID: "org", ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)})
				assert.NoError(t, err)
			}
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
}

// A writer alone never waits for company: its batches hold one write.
func TestWriterAloneDoesNotLinger(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "itsm.db"))
	require.NoError(t, err)
	defer s.Close()
	const writes = 100
	start := time.Now()
	for i := range writes {
		_, err := s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: fmt.Sprint("t-", i),
			OrganizationID: "org", ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	batches, lingers := s.CommitStats()
	t.Logf("%d writes in %s", writes, time.Since(start))
	require.Equal(t, int64(writes), batches)
	require.Zero(t, lingers)
}
