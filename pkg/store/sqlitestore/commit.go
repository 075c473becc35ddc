package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/itsmhub/itsm/pkg/store"
)

// Group commit. Every document write (Put, MarkSeen) is queued to one
// committer goroutine, which runs whatever has queued up meanwhile in a
// single transaction. SQLite allows one writer anyway, so nothing is lost
// in parallelism, and what is won is large: a commit writes the changed
// pages to the WAL, may run a checkpoint, and makes every reader connection
// drop its whole page cache at its next read. One commit per document made
// the normalizer's reads miss the cache almost always during a full sync.
//
// Each caller still gets its own outcome, and a write is acknowledged only
// after its transaction committed, so Put keeps its contract: atomic,
// version-guarded, durable once it returns.

// maxBatch bounds one transaction: long enough to amortize the commit,
// short enough that readers and other writers (connection updates) never
// wait long for the single write connection.
const maxBatch = 256

// Checkpoints: SQLite runs one inside the commit that takes the WAL past
// wal_autocheckpoint pages, and every write queued behind it waits. A
// checkpoint copies each page changed since the last one once, however
// often it changed, and pages change often here: documents are keyed by
// UUIDs, so each commit's inserts land on index pages all over
// documents_key and documents_ticket_set. Checkpointing rarely therefore
// saves work, but makes the commit that checkpoints wait long. The
// committer checkpoints often (SQLite's default) while it keeps up, which
// keeps a webhook's write quick (a long checkpoint is a long wait for the
// one live write behind it), and rarely while writes queue behind it, as
// in a full sync's backlog, where waiting in the queue takes longer than
// any checkpoint. The figures behind both settings are in
// docs/performance.md.
const (
	checkpointPages        = 1000
	backlogCheckpointPages = 16384
)

// Bulk writes (a sync's) come from a few dozen normalizer workers, each
// with one write at a time, and the committer took whatever had queued the
// moment it was free: two or three writes per transaction. A commit costs
// mostly per page it writes to the WAL, and the pages every commit writes
// (the table's and the list index's last pages, the shared-memory locks)
// then cost more than the documents. So a bulk batch smaller than
// lingerBatch waits up to lingerFor for more, once the batch before it
// showed that writers are concurrent; a writer alone (a reconcile's
// tombstones, one after the other) never waits, and a live write ends the
// wait. Fewer writers than lingerBatch would make every batch wait the
// whole lingerFor, so the size waited for follows what came: a wait that
// ran out sets it to the batch it got, a batch that found more queued
// raises it to that, and after probeAfter batches in a row that reached
// it, it grows by one to find writers that joined. The figures are in
// docs/performance.md.
const (
	lingerBatch = 32
	lingerFor   = 2 * time.Millisecond
	probeAfter  = 64
)

var errClosed = errors.New("sqlite store closed")

// op is one queued write: it runs exec with a statement bound to the
// batch's transaction and reports rows affected.
type op struct {
	ctx  context.Context
	stmt *sql.Stmt
	args []any
	done chan opResult
}

type opResult struct {
	rows int64
	err  error
}

type committer struct {
	db  *sql.DB
	ops chan *op
	// urgent queues live writes (store.Urgent): they go into the next
	// transaction, alone, ahead of whatever bulk writes wait in ops.
	urgent chan *op
	stop   chan struct{}
	done   chan struct{}
	// checkpointAt is the write connection's wal_autocheckpoint.
	checkpointAt int
	// lastBulk is the size of the last bulk batch; target is the size a
	// bulk batch waits for, and reached counts the waits in a row that
	// reached it.
	lastBulk, target, reached int
	// held is a live write that ended a bulk batch's wait; it goes first
	// into the next transaction.
	held *op
	// stats counts transactions and waits, for tests.
	stats commitStats
}

type commitStats struct{ batches, lingers atomic.Int64 }

// newCommitter runs db's writes; db must have one connection, whose
// wal_autocheckpoint the committer sets.
func newCommitter(ctx context.Context, db *sql.DB) (*committer, error) {
	c := &committer{db: db, ops: make(chan *op, maxBatch), urgent: make(chan *op, maxBatch),
		stop: make(chan struct{}), done: make(chan struct{}), target: lingerBatch}
	if err := c.checkpointEvery(ctx, checkpointPages); err != nil {
		return nil, err
	}
	go c.run()
	return c, nil
}

func (c *committer) checkpointEvery(ctx context.Context, pages int) error {
	if _, err := c.db.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", pages)); err != nil {
		return fmt.Errorf("set wal_autocheckpoint: %w", err)
	}
	c.checkpointAt = pages
	return nil
}

// exec queues a write and waits for its transaction. Once queued, it waits
// for the answer even if ctx ends: a caller told "failed" about a write that
// then committed would believe a stored version was never written.
func (c *committer) exec(ctx context.Context, stmt *sql.Stmt, args ...any) (int64, error) {
	o := &op{ctx: ctx, stmt: stmt, args: args, done: make(chan opResult, 1)}
	queue := c.ops
	if store.IsUrgent(ctx) {
		queue = c.urgent
	}
	select {
	case queue <- o:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.stop:
		return 0, errClosed
	}
	select {
	case r := <-o.done:
		return r.rows, r.err
	case <-c.done:
		// Closed with this write still queued: it never ran.
		select {
		case r := <-o.done:
			return r.rows, r.err
		default:
			return 0, errClosed
		}
	}
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*op, 0, maxBatch)
	wait := time.NewTimer(lingerFor)
	wait.Stop()
	for {
		if !c.next(&batch) {
			return
		}
		urgent := len(c.urgent) > 0 || store.IsUrgent(batch[0].ctx)
	drainUrgent:
		for len(batch) < maxBatch {
			select {
			case o := <-c.urgent:
				batch = append(batch, o)
			default:
				break drainUrgent
			}
		}
	drain:
		// Live writes commit in a transaction of their own, without the
		// bulk writes that would make theirs take longer.
		for !urgent && len(batch) < maxBatch {
			select {
			case o := <-c.ops:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		if !urgent {
			// A wait that a stall cut short must not keep the target low
			// until probes grow it back.
			c.target = max(c.target, min(len(batch), lingerBatch))
			if len(batch) < c.target && (c.lastBulk > 1 || len(batch) > 1) {
				batch = c.linger(batch, wait)
			}
			c.lastBulk = len(batch)
		}
		// A full batch with more queued behind it is a backlog.
		pages := checkpointPages
		if len(batch) == maxBatch && len(c.ops) > 0 {
			pages = backlogCheckpointPages
		}
		if pages != c.checkpointAt {
			// Failing leaves the previous setting, which is safe either
			// way; so does a connection database/sql replaced, which
			// starts at SQLite's default, checkpointPages.
			_ = c.checkpointEvery(context.Background(), pages)
		}
		c.stats.batches.Add(1)
		c.commit(batch)
		clear(batch)
	}
}

// next starts batch with the next write: a held live write, else a queued
// live write, else the next write of either queue. It reports false once
// the committer is closed.
func (c *committer) next(batch *[]*op) bool {
	if c.held != nil {
		*batch = append((*batch)[:0], c.held)
		c.held = nil
		return true
	}
	select {
	case o := <-c.urgent:
		*batch = append((*batch)[:0], o)
		return true
	default:
	}
	select {
	case o := <-c.urgent:
		*batch = append((*batch)[:0], o)
	case o := <-c.ops:
		*batch = append((*batch)[:0], o)
	case <-c.stop:
		c.failQueued()
		return false
	}
	return true
}

// linger adds bulk writes to batch until it holds c.target, lingerFor has
// passed, or a live write or Close comes, and adjusts c.target.
func (c *committer) linger(batch []*op, wait *time.Timer) []*op {
	c.stats.lingers.Add(1)
	wait.Reset(lingerFor)
	defer wait.Stop()
	for len(batch) < c.target {
		select {
		case o := <-c.ops:
			batch = append(batch, o)
		case o := <-c.urgent:
			c.held = o
			return batch
		case <-c.stop:
			return batch
		case <-wait.C:
			c.target, c.reached = max(len(batch), 2), 0
			return batch
		}
	}
	if c.reached++; c.reached >= probeAfter {
		c.target, c.reached = min(c.target+1, lingerBatch), 0
	}
	return batch
}

// commit runs a batch in one transaction. If any write in it fails, the
// transaction is rolled back and each write is retried alone, so that one
// bad document fails only its own caller.
func (c *committer) commit(batch []*op) {
	live := batch[:0:0]
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			// Gave up before its turn; it was never run, so telling it so
			// is true.
			o.done <- opResult{err: err}
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		if rows, err := c.tx(live); err == nil {
			for i, o := range live {
				o.done <- opResult{rows: rows[i]}
			}
			return
		}
	}
	for _, o := range live {
		rows, err := c.tx([]*op{o})
		if err != nil {
			o.done <- opResult{err: err}
			continue
		}
		o.done <- opResult{rows: rows[0]}
	}
}

// tx runs ops in one transaction. Contexts are not passed to SQLite: an
// op's deadline must not abort the others' transaction, and the busy
// timeout bounds every statement.
func (c *committer) tx(ops []*op) ([]int64, error) {
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	rows := make([]int64, len(ops))
	// One transaction-bound statement per prepared statement, not per op.
	stmts := make(map[*sql.Stmt]*sql.Stmt, 2)
	for i, o := range ops {
		st, ok := stmts[o.stmt]
		if !ok {
			st = tx.StmtContext(ctx, o.stmt)
			stmts[o.stmt] = st
		}
		res, err := st.ExecContext(ctx, o.args...)
		if err == nil {
			rows[i], err = res.RowsAffected()
		}
		if err != nil {
			_ = tx.Rollback()
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return rows, nil
}

// failQueued answers writes still queued at Close.
func (c *committer) failQueued() {
	for {
		select {
		case o := <-c.urgent:
			o.done <- opResult{err: errClosed}
		case o := <-c.ops:
			o.done <- opResult{err: errClosed}
		default:
			return
		}
	}
}

func (c *committer) close() {
	close(c.stop)
	<-c.done
}
