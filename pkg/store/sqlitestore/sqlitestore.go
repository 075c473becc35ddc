// Package sqlitestore is the embedded store: a single SQLite file through the
// pure-Go modernc.org/sqlite driver, so the platform runs with no server.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Store is a store.Store on one SQLite file.
type Store struct {
	// SQLite allows one writer at a time; a dedicated single-connection pool
	// queues writers in Go instead of spinning on SQLITE_BUSY, while reads
	// use their own pool and never wait for writes (WAL).
	//
	// Get is the exception: it runs on the write connection. Every commit
	// empties the page cache of each reader connection (SQLite's WAL mode
	// resets a reader's cache whenever another connection committed), so a
	// reader's Get re-read its half-dozen pages with a system call each; the
	// writer's cache survives its own commits. Get is the normalizer's read
	// before each write, so it waits at most one group commit either way.
	write *sql.DB
	read  *sql.DB
	// The hot statements are prepared once: parsing the SQL on every call
	// is a large part of a small write's cost.
	putStmt, insertStmt, seenStmt, getStmt *sql.Stmt
	// commits runs the document writes (see commit.go).
	commits *committer
}

var _ store.Store = (*Store)(nil)

// schema is the current layout. Documents live in a rowid table, with their
// key in a unique index: bodies are a kilobyte or more, and a WITHOUT ROWID
// table stores whole rows in its key b-tree, so every insert moves whole
// bodies around that b-tree and the file grows with them.
// Files made with that earlier layout are rebuilt by migrate.
//
// The identifier, ticket and project indexes end in the list order
// (updated_at, id). The earlier ones did not, and SQLite preferred walking
// documents_list in order over sorting what the filter's index found: the
// comments of one ticket were found by reading every comment of the
// organization. They are also partial: each column is set on only some
// kinds (a comment has a ticket but no identifier or project), and every
// row written to a full index costs its insert. Queries that filter on one
// of them repeat the index's condition (see setCond), which is how SQLite
// knows the partial index covers them. The earlier indexes are replaced
// when a file is opened.
const schema = `
CREATE TABLE IF NOT EXISTS documents (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	organization_id TEXT NOT NULL,
	connection_id TEXT NOT NULL,
	version INTEGER NOT NULL,
	deleted INTEGER NOT NULL,
	identifier TEXT NOT NULL,
	status TEXT NOT NULL,
	priority TEXT NOT NULL,
	project_id TEXT NOT NULL,
	ticket_id TEXT NOT NULL,
	assigned_user_id TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	sync_id TEXT NOT NULL DEFAULT '',
	body BLOB NOT NULL,
	name TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_key ON documents (kind, id);
CREATE INDEX IF NOT EXISTS documents_list ON documents (organization_id, kind, updated_at, id);
DROP INDEX IF EXISTS documents_identifier;
DROP INDEX IF EXISTS documents_ticket;
DROP INDEX IF EXISTS documents_project;
CREATE INDEX IF NOT EXISTS documents_identifier_set ON documents (organization_id, kind, identifier, updated_at, id) WHERE identifier != '';
CREATE INDEX IF NOT EXISTS documents_ticket_set ON documents (organization_id, kind, ticket_id, updated_at, id) WHERE ticket_id != '';
CREATE INDEX IF NOT EXISTS documents_project_set ON documents (organization_id, kind, project_id, updated_at, id) WHERE project_id != '';
CREATE INDEX IF NOT EXISTS documents_name_set ON documents (organization_id, kind, name, updated_at, id) WHERE name != '';
CREATE TABLE IF NOT EXISTS connections (
	id TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	vendor TEXT NOT NULL,
	state TEXT NOT NULL,
	site_url TEXT NOT NULL,
	cloud_id TEXT NOT NULL,
	options BLOB NOT NULL,
	refresh_interval_secs INTEGER NOT NULL,
	timeout_secs INTEGER NOT NULL,
	secret BLOB,
	detail BLOB NOT NULL DEFAULT '{}',
	revision INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS connections_org ON connections (organization_id, id);
CREATE INDEX IF NOT EXISTS connections_cloud ON connections (cloud_id);
CREATE TABLE IF NOT EXISTS api_keys (
	id TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	name TEXT NOT NULL,
	hash BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_org ON api_keys (organization_id, id);
`

// Open opens (creating if needed) the database file at path and its schema.
func Open(ctx context.Context, path string) (*Store, error) {
	// WAL with synchronous=NORMAL survives a process crash (kill -9), which is
	// what the normalizer's ack-after-write relies on; it may lose the last
	// transactions on power loss, which is why production uses MongoDB.
	// The committer sets how often the WAL is checkpointed (see commit.go).
	if err := restrictFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{write: w, read: r}
	if err := migrate(ctx, w); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate sqlite schema in %s: %w", path, err)
	}
	if err := addColumns(ctx, w); err != nil {
		s.Close()
		return nil, fmt.Errorf("add columns to the sqlite schema in %s: %w", path, err)
	}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		s.Close()
		return nil, fmt.Errorf("create sqlite schema in %s: %w", path, err)
	}
	if s.putStmt, err = w.PrepareContext(ctx, putSQL); err == nil {
		s.insertStmt, err = w.PrepareContext(ctx, insertSQL)
	}
	if err == nil {
		s.seenStmt, err = w.PrepareContext(ctx, `UPDATE documents SET sync_id = ?
		WHERE kind = ? AND id = ? AND organization_id = ?`)
	}
	if err == nil {
		s.getStmt, err = w.PrepareContext(ctx, `SELECT `+docColumns+` FROM documents
		WHERE kind = ? AND id = ? AND organization_id = ?`)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("prepare sqlite statements: %w", err)
	}
	if s.commits, err = newCommitter(ctx, w); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migrate rebuilds a documents table of the earlier WITHOUT ROWID layout in
// the current one, in one transaction: a crash leaves the old table whole.
func migrate(ctx context.Context, db *sql.DB) error {
	var ddl string
	err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'documents'`).Scan(&ddl)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID")) {
		return nil
	}
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	// The indexes go with the old table; schema recreates them.
	for _, stmt := range []string{
		`ALTER TABLE documents RENAME TO documents_without_rowid`,
		`DROP INDEX IF EXISTS documents_list`, `DROP INDEX IF EXISTS documents_identifier`,
		`DROP INDEX IF EXISTS documents_ticket`, `DROP INDEX IF EXISTS documents_project`,
		schema,
		`INSERT INTO documents (` + rowidLayoutColumns + `) SELECT ` + rowidLayoutColumns + ` FROM documents_without_rowid`,
		`DROP TABLE documents_without_rowid`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// rowidLayoutColumns are the columns the WITHOUT ROWID layout had.
const rowidLayoutColumns = `kind, id, organization_id, connection_id, version, deleted, identifier,
	status, priority, project_id, ticket_id, assigned_user_id, updated_at, sync_id, body`

// addColumns adds the columns later versions brought to a documents table
// an earlier one created; their defaults fill the stored rows, and the
// normalizer's upgrade of stored objects (itsm.ModelVersion) sets them.
func addColumns(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('documents')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	if len(have) == 0 || have["name"] {
		return nil // no table yet (schema creates it), or current
	}
	_, err = db.ExecContext(ctx, `ALTER TABLE documents ADD COLUMN name TEXT NOT NULL DEFAULT ''`)
	return err
}

func (s *Store) Close() error {
	if s.commits != nil {
		s.commits.close()
	}
	var errs []error
	for _, st := range []*sql.Stmt{s.putStmt, s.insertStmt, s.seenStmt, s.getStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.read.Close(), s.write.Close())...)
}

func (s *Store) Ping(ctx context.Context) error {
	return s.read.PingContext(ctx)
}

// insertDocSQL is the start of Put's and Insert's statements, which differ in
// what a stored document does.
const insertDocSQL = `
INSERT INTO documents (kind, id, organization_id, connection_id, version, deleted, identifier,
	status, priority, project_id, ticket_id, assigned_user_id, updated_at, sync_id, body, name)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
`

const putSQL = insertDocSQL + `ON CONFLICT (kind, id) DO UPDATE SET
	connection_id = excluded.connection_id, version = excluded.version, deleted = excluded.deleted,
	identifier = excluded.identifier, status = excluded.status, priority = excluded.priority,
	project_id = excluded.project_id, ticket_id = excluded.ticket_id,
	assigned_user_id = excluded.assigned_user_id, updated_at = excluded.updated_at, body = excluded.body,
	name = excluded.name,
	sync_id = CASE WHEN excluded.sync_id != '' THEN excluded.sync_id ELSE documents.sync_id END
WHERE excluded.version > documents.version AND excluded.organization_id = documents.organization_id`

const insertSQL = insertDocSQL + `ON CONFLICT (kind, id) DO NOTHING`

// Insert is Put without the update: the unique key refuses a stored one.
func (s *Store) Insert(ctx context.Context, d *store.Document) (store.Outcome, error) {
	return s.write1(ctx, s.insertStmt, "insert", d)
}

// Put relies on one UPSERT whose WHERE clause is the version guard, so the
// check and the write are a single atomic statement.
func (s *Store) Put(ctx context.Context, d *store.Document) (store.Outcome, error) {
	return s.write1(ctx, s.putStmt, "put", d)
}

// write1 runs Put's or Insert's statement, whose parameters are the same.
func (s *Store) write1(ctx context.Context, stmt *sql.Stmt, op string, d *store.Document) (store.Outcome, error) {
	n, err := s.commits.exec(ctx, stmt,
		string(d.Kind), d.ID, d.OrganizationID, d.ConnectionID, d.Version, d.Deleted, d.Identifier,
		d.Status, d.Priority, d.ProjectID, d.TicketID, d.AssignedUserID, d.UpdatedAt.UnixNano(), d.SyncID, []byte(d.Body), d.Name)
	if err != nil {
		return 0, fmt.Errorf("%s %s %s: %w", op, d.Kind, d.ID, err)
	}
	if n == 0 {
		return store.NotNewer, nil
	}
	return store.Written, nil
}

const docColumns = `kind, id, organization_id, connection_id, version, deleted, identifier,
	status, priority, project_id, ticket_id, assigned_user_id, updated_at, sync_id, body, name`

type scanner interface{ Scan(dest ...any) error }

func scanDoc(row scanner) (*store.Document, error) {
	var d store.Document
	var kind string
	var updated int64
	var body []byte
	err := row.Scan(&kind, &d.ID, &d.OrganizationID, &d.ConnectionID, &d.Version, &d.Deleted, &d.Identifier,
		&d.Status, &d.Priority, &d.ProjectID, &d.TicketID, &d.AssignedUserID, &updated, &d.SyncID, &body, &d.Name)
	if err != nil {
		return nil, err
	}
	d.Kind = itsm.Kind(kind)
	d.UpdatedAt = time.Unix(0, updated).UTC()
	d.Body = body
	return &d, nil
}

func (s *Store) Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*store.Document, error) {
	row := s.getStmt.QueryRowContext(ctx, string(kind), id, orgID)
	d, err := scanDoc(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	return d, nil
}

func (s *Store) GetByIdentifier(ctx context.Context, orgID string, kind itsm.Kind, identifier string) (*store.Document, error) {
	// Keys move between issues when projects are renamed; the most recently
	// changed holder of a key is the one the vendor shows today.
	row := s.read.QueryRowContext(ctx, getByIdentifierSQL, orgID, string(kind), identifier)
	d, err := scanDoc(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %s: %w", kind, identifier, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s by identifier: %w", kind, err)
	}
	return d, nil
}

// getByIdentifierSQL states the identifier index's condition (see setCond).
const getByIdentifierSQL = `SELECT ` + docColumns + ` FROM documents
	WHERE organization_id = ? AND kind = ? AND identifier = ? AND identifier != ''
	ORDER BY updated_at DESC LIMIT 1`

// setCond is the condition of a column's partial index. A query must state
// it word for word for SQLite to use that index.
func setCond(col string) string { return col + " != ''" }

func (s *Store) List(ctx context.Context, f store.Filter) (store.Page, error) {
	q, args, err := listQuery(f)
	if err != nil {
		return store.Page{}, err
	}
	limit := f.EffectiveLimit()
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return store.Page{}, fmt.Errorf("list %s: %w", f.Kind, err)
	}
	defer rows.Close()
	var page store.Page
	for rows.Next() {
		d, err := scanDoc(rows)
		if err != nil {
			return store.Page{}, fmt.Errorf("list %s: %w", f.Kind, err)
		}
		page.Docs = append(page.Docs, d)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, fmt.Errorf("list %s: %w", f.Kind, err)
	}
	if len(page.Docs) > limit {
		page.Docs = page.Docs[:limit]
		page.NextCursor = store.EncodeCursor(page.Docs[limit-1])
	}
	return page, nil
}

// listQuery is the statement and arguments of a List, which asks for one
// row more than the page holds.
func listQuery(f store.Filter) (string, []any, error) {
	where := []string{"organization_id = ?", "kind = ?"}
	args := []any{f.OrganizationID, string(f.Kind)}
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	setEq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?", setCond(col))
			args = append(args, v)
		}
	}
	eq("connection_id", f.ConnectionID)
	eq("status", f.Status)
	eq("priority", f.Priority)
	setEq("project_id", f.ProjectID)
	setEq("ticket_id", f.TicketID)
	eq("assigned_user_id", f.AssignedUserID)
	setEq("identifier", f.Identifier)
	setEq("name", f.Name)
	if !f.UpdatedSince.IsZero() {
		where = append(where, "updated_at >= ?")
		args = append(args, f.UpdatedSince.UnixNano())
	}
	if !f.UpdatedBefore.IsZero() {
		where = append(where, "updated_at < ?")
		args = append(args, f.UpdatedBefore.UnixNano())
	}
	if f.NotSeenBy != "" {
		where = append(where, "sync_id != ?")
		args = append(args, f.NotSeenBy)
	}
	if f.ExcludeDeleted {
		where = append(where, "deleted = 0")
	}
	if f.Cursor != "" {
		at, id, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		where = append(where, "(updated_at > ? OR (updated_at = ? AND id > ?))")
		args = append(args, at.UnixNano(), at.UnixNano(), id)
	}
	// One extra row tells whether another page exists without a count query.
	args = append(args, f.EffectiveLimit()+1)
	return `SELECT ` + docColumns + ` FROM documents WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY updated_at, id LIMIT ?`, args, nil
}

// restrictFiles creates the database file readable by its owner only, and
// tightens one an earlier version created wider: it holds every tenant's
// data. SQLite gives the WAL and shared-memory files the database file's
// permissions when it creates them.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restrict sqlite file %s: %w", p, err)
		}
	}
	return nil
}

const connColumns = `id, organization_id, vendor, state, site_url, cloud_id, options,
	refresh_interval_secs, timeout_secs, secret, detail, revision, created_at, updated_at`

func scanConn(row scanner) (*store.Connection, error) {
	var c store.Connection
	var opts, detail []byte
	var created, updated int64
	err := row.Scan(&c.ID, &c.OrganizationID, &c.Vendor, &c.State, &c.SiteURL, &c.CloudID, &opts,
		&c.RefreshIntervalSecs, &c.TimeoutSecs, &c.Secret, &detail, &c.Revision, &created, &updated)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(opts, &c.Options); err != nil {
		return nil, fmt.Errorf("decode options of connection %s: %w", c.ID, err)
	}
	if err := json.Unmarshal(detail, &c.Detail); err != nil {
		return nil, fmt.Errorf("decode detail of connection %s: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &c, nil
}

func encodeConn(c *store.Connection) (opts, detail []byte, err error) {
	if opts, err = json.Marshal(c.Options); err != nil {
		return nil, nil, fmt.Errorf("encode connection options: %w", err)
	}
	if detail, err = json.Marshal(c.Detail); err != nil {
		return nil, nil, fmt.Errorf("encode connection detail: %w", err)
	}
	return opts, detail, nil
}

func (s *Store) CreateConnection(ctx context.Context, c *store.Connection) error {
	opts, detail, err := encodeConn(c)
	if err != nil {
		return err
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO connections (`+connColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.OrganizationID, c.Vendor, c.State, c.SiteURL, c.CloudID, opts,
		c.RefreshIntervalSecs, c.TimeoutSecs, c.Secret, detail, c.Revision, c.CreatedAt.UnixNano(), c.UpdatedAt.UnixNano())
	var serr *sqlite.Error
	if errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return fmt.Errorf("connection %s: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create connection %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) getConn(ctx context.Context, where string, args ...any) (*store.Connection, error) {
	c, err := scanConn(s.read.QueryRowContext(ctx, `SELECT `+connColumns+` FROM connections WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return c, err
}

func (s *Store) GetConnection(ctx context.Context, orgID, id string) (*store.Connection, error) {
	c, err := s.getConn(ctx, "id = ? AND organization_id = ?", id, orgID)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) LookupConnection(ctx context.Context, id string) (*store.Connection, error) {
	c, err := s.getConn(ctx, "id = ?", id)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) ListConnections(ctx context.Context, orgID string) ([]*store.Connection, error) {
	return s.queryConns(ctx, `organization_id = ? ORDER BY id`, orgID)
}

func (s *Store) PageConnections(ctx context.Context, q store.ConnectionPageQuery) (store.ConnectionPage, error) {
	where, args := "organization_id = ?", []any{q.OrganizationID}
	if q.Cursor != "" {
		after, err := store.DecodeConnectionCursor(q.Cursor)
		if err != nil {
			return store.ConnectionPage{}, err
		}
		where, args = where+" AND id > ?", append(args, after)
	}
	limit := q.EffectiveLimit()
	// One more than the page tells whether another page follows.
	list, err := s.queryConns(ctx, where+" ORDER BY id LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return store.ConnectionPage{}, err
	}
	return store.MakeConnectionPage(list, limit), nil
}

func (s *Store) CountConnections(ctx context.Context, orgID string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM connections WHERE organization_id = ? AND state != ?`,
		orgID, store.StateDeleted).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count connections: %w", err)
	}
	return n, nil
}

func (s *Store) FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error) {
	where, args := []string{"1 = 1"}, []any{}
	if q.State != "" {
		where, args = append(where, "state = ?"), append(args, q.State)
	}
	if q.CloudID != "" {
		where, args = append(where, "cloud_id = ?"), append(args, q.CloudID)
	}
	return s.queryConns(ctx, strings.Join(where, " AND ")+" ORDER BY id", args...)
}

func (s *Store) queryConns(ctx context.Context, where string, args ...any) ([]*store.Connection, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+connColumns+` FROM connections WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	defer rows.Close()
	var out []*store.Connection
	for rows.Next() {
		c, err := scanConn(rows)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Store) UpdateConnection(ctx context.Context, c *store.Connection) error {
	opts, detail, err := encodeConn(c)
	if err != nil {
		return err
	}
	res, err := s.write.ExecContext(ctx, `UPDATE connections SET state = ?, site_url = ?, cloud_id = ?,
		options = ?, refresh_interval_secs = ?, timeout_secs = ?, secret = ?, detail = ?, revision = revision + 1,
		updated_at = ? WHERE id = ? AND organization_id = ? AND revision = ?`,
		c.State, c.SiteURL, c.CloudID, opts, c.RefreshIntervalSecs, c.TimeoutSecs, c.Secret, detail,
		c.UpdatedAt.UnixNano(), c.ID, c.OrganizationID, c.Revision)
	if err != nil {
		return fmt.Errorf("update connection %s: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update connection %s: %w", c.ID, err)
	} else if n == 0 {
		return fmt.Errorf("connection %s changed concurrently or is gone: %w", c.ID, store.ErrConflict)
	}
	c.Revision++
	return nil
}

func (s *Store) MarkSeen(ctx context.Context, orgID string, kind itsm.Kind, id, syncID string) error {
	if _, err := s.commits.exec(ctx, s.seenStmt, syncID, string(kind), id, orgID); err != nil {
		return fmt.Errorf("mark %s %s seen: %w", kind, id, err)
	}
	return nil
}

func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO api_keys (id, organization_id, name, hash, created_at)
		VALUES (?, ?, ?, ?, ?)`, k.ID, k.OrganizationID, k.Name, k.Hash, k.CreatedAt.UnixNano())
	var serr *sqlite.Error
	if errors.As(err, &serr) && (serr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return fmt.Errorf("api key %s: %w", k.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, err)
	}
	return nil
}

func scanKey(row scanner) (*store.APIKey, error) {
	var k store.APIKey
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.OrganizationID, &k.Name, &k.Hash, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked.Valid {
		t := time.Unix(0, revoked.Int64).UTC()
		k.RevokedAt = &t
	}
	return &k, nil
}

func (s *Store) LookupAPIKey(ctx context.Context, hash []byte) (*store.APIKey, error) {
	k, err := scanKey(s.read.QueryRowContext(ctx, `SELECT id, organization_id, name, hash, created_at, revoked_at
		FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	return k, nil
}

func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]*store.APIKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, organization_id, name, hash, created_at, revoked_at
		FROM api_keys WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []*store.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?
		WHERE id = ? AND organization_id = ? AND revoked_at IS NULL`, at.UnixNano(), id, orgID)
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("api key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s *Store) PurgeConnection(ctx context.Context, orgID, connectionID string) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM documents WHERE organization_id = ? AND connection_id = ?`, orgID, connectionID)
	if err != nil {
		return 0, fmt.Errorf("purge connection %s: %w", connectionID, err)
	}
	return res.RowsAffected()
}
