// Package backfill keeps the stored copy of every ACTIVE connection correct
// whatever the webhooks did: a full sync every refresh_interval_secs (bounded
// by timeout_secs) that ends with a reconcile marker when, and only when, it
// completed; a frequent incremental sync (JQL updated >= watermark - overlap)
// that repairs dropped webhooks within minutes; and syncs on demand.
//
// The worker never writes ITSM documents: it publishes every REST record to
// raw.jira.<connection_id>.sync (normalizer.SyncRecord) and the normalizer
// stays the single writer. Any number of workers share the connections
// through per-connection leases in a NATS KV bucket; a sync checkpoints
// after every page, so a worker that dies mid-sync loses its lease and
// another resumes the same sync (same sync id) from the last checkpoint.
//
// Choices worth knowing:
//
//   - A full sync reads projects, statuses and priorities (to report values
//     the mapping leaves UNKNOWN), users, groups with their members, then
//     issues: id-only search/jql pages (ascending id, up to 5000) and
//     issue/bulkfetch batches of 100, each issue published with its
//     attachments and comments as records of their own (comments beyond the
//     20 an issue embeds are paged from issue/{id}/comment).
//   - Deleted or lost permission: Jira answers both the same way for an issue
//     (JIRA.md §5), but not for a project. A project that should be there
//     (in project_keys_filter, or stored before) and that project/search no
//     longer returns, without Jira saying it is archived or deleted, may be
//     a lost permission: the reconcile marker then leaves out projects,
//     tickets, comments and attachments (users and groups are still
//     reconciled), and the connection's health says DEGRADED/CUSTOMER which
//     project is not visible. Unfiltered connections accept a project as
//     purged after Config.LostProjectGrace.
//   - Memory is bounded whatever the tenant's size: one id page, a few bulk
//     answers and at most MaxPendingAcks unacknowledged messages per sync.
//   - The connection keeps only its last sync, so each sync's checkpoint
//     carries what scheduling needs from the last full one.
//   - Webhooks never move the watermark; only completed syncs do.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
)

// LeaseBucket is the KV bucket of sync leases (one key per connection), and
// LeaseTTL the lease life a worker renews every third of: a dead worker's
// syncs are resumed by another within about this long.
const (
	LeaseBucket = broker.KVSyncLeases
	LeaseTTL    = broker.SyncLeaseTTL
)

// Defaults of a connection that does not set its own intervals (the seed's).
const (
	DefaultRefreshInterval = 21600 * time.Second
	DefaultTimeout         = 1800 * time.Second
)

// Store is what the worker needs from the store: connections (the sync
// state lives in their detail) and the projects it already knows, to tell a
// project that vanished from one it never saw.
type Store interface {
	FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error)
	LookupConnection(ctx context.Context, id string) (*store.Connection, error)
	UpdateConnection(ctx context.Context, c *store.Connection) error
	List(ctx context.Context, f store.Filter) (store.Page, error)
}

// Config of a worker. Zero values mean the documented default.
type Config struct {
	// Tick is how often the scheduler looks for due syncs. Default 10s.
	// Requests wake it at once.
	Tick time.Duration
	// IncrementalEvery is the incremental sync interval. Default 5m.
	IncrementalEvery time.Duration
	// Overlap is subtracted from the watermark of an incremental sync: JQL
	// dates have minute precision and search is eventually consistent.
	// Default 2m.
	Overlap time.Duration
	// MaxConcurrentSyncs bounds the syncs one worker runs at once. Default 4.
	MaxConcurrentSyncs int
	// MaxPendingAcks bounds the publishes awaiting their JetStream ack per
	// sync: the sync streams, it never holds more than this many records.
	// Default 512.
	MaxPendingAcks int
	// ProgressEvery is how often a running sync writes its progress to the
	// connection. Default 2s.
	ProgressEvery time.Duration
	// RetryFailedAfter: a FAILED full sync is retried this long after it
	// ended (or at the regular interval, if sooner). Default 15m.
	RetryFailedAfter time.Duration
	// BacklogConsumer (normalizer.ConsumerName) and MaxBacklog pace every
	// sync by the normalizer: a sync publishes only while its records are
	// at most MaxBacklog RAW messages ahead of that consumer's ack floor.
	// Syncs running at once then share the normalizer evenly (a small
	// tenant's sync no longer waits behind a large one's whole backlog),
	// and RAW holds a bounded backlog rather than a whole tenant.
	BacklogConsumer string
	// BulkConsumer (normalizer.BulkConsumerName), when set with
	// BacklogConsumer, takes a sync's records past its first LargeSyncAfter:
	// they go to the bulk lane (raw.<vendor>.<connection>.bulk), which the
	// normalizer works on only when the sync lane has nothing waiting, and
	// they are paced by this consumer's ack floor. Every other sync's
	// records, of any worker, then go ahead of a large sync's backlog. The
	// normalizer defers a reconcile marker until both lanes have passed the
	// sync's records.
	BulkConsumer string
	// MaxBacklog defaults to 4,096: enough to keep the normalizer's sync
	// workers busy, small against any sync worth pacing.
	MaxBacklog int
	// LargeSyncAfter and LargeSyncBacklog serve the syncs that have sent
	// least first: once a sync has published LargeSyncAfter records in its
	// run (default 2×MaxBacklog: a tenant of about 2,000 issues with three
	// comments each is small), it may only be LargeSyncBacklog ahead
	// (default MaxBacklog/4). A small or incremental sync that starts
	// beside a large one then finds at most that window of the large one's
	// records ahead of its own, and takes most of the sync lane until it
	// ends, while two large syncs share it evenly. The smaller window still
	// holds more records than the normalizer has sync workers.
	LargeSyncAfter   int
	LargeSyncBacklog int
	// LargeSyncYield is how far ahead a sync past LargeSyncAfter may be
	// while a sync of the same worker that has not got there publishes or
	// has records not yet stored (default LargeSyncBacklog/64): the large
	// one gives way, so the small one has the lane, and the CPU the large
	// crawl would take, nearly to itself until it is stored. The large one
	// keeps moving, slowly, whatever stream of small syncs comes. Syncs of
	// different workers do not see each other: between them only the
	// windows above apply.
	LargeSyncYield int
	// LeaseRenewEvery defaults to a third of the lease TTL.
	LeaseRenewEvery time.Duration
}

func (c *Config) setDefaults(ttl time.Duration) {
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Tick, 10*time.Second)
	def(&c.IncrementalEvery, 5*time.Minute)
	def(&c.Overlap, 2*time.Minute)
	def(&c.ProgressEvery, 2*time.Second)
	def(&c.RetryFailedAfter, 15*time.Minute)
	if ttl > 0 {
		def(&c.LeaseRenewEvery, ttl/3)
	}
	def(&c.LeaseRenewEvery, 10*time.Second)
	if c.MaxConcurrentSyncs <= 0 {
		c.MaxConcurrentSyncs = 4
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 4096
	}
	if c.LargeSyncAfter <= 0 {
		c.LargeSyncAfter = 2 * c.MaxBacklog
	}
	if c.LargeSyncBacklog <= 0 {
		c.LargeSyncBacklog = max(c.MaxBacklog/4, 1)
	}
	if c.LargeSyncYield <= 0 {
		c.LargeSyncYield = max(c.LargeSyncBacklog/64, 1)
	}
	if c.MaxPendingAcks <= 0 {
		c.MaxPendingAcks = 512
	}
}

// Deps are the worker's collaborators.
type Deps struct {
	JS    jetstream.JetStream
	Store Store
	// Syncers crawl the vendors' APIs, by connection vendor (store.Vendor
	// values): the connectors the worker syncs.
	Syncers map[string]Syncer
	// Leases is the bucket of sync leases (LeaseBucket, LeaseTTL).
	Leases *lease.Leases
	Log    *zap.Logger
	// Registerer receives the worker's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Now is the clock of sync times and schedules. Default time.Now.
	Now func() time.Time
}

// Worker schedules and runs syncs.
type Worker struct {
	cfg      Config
	d        Deps
	log      *zap.Logger
	m        *metrics
	requests *Requester
	slots    chan struct{}

	mu      sync.Mutex
	running map[string]store.SyncKind // connection id -> kind, syncs of this worker
	// small tracks this worker's syncs that are not yet large, for the
	// large ones to give way (Config.LargeSyncYield).
	small *smallSyncs

	hooks testHooks
}

// testHooks let tests observe syncs and stop a worker the way a crash
// would; all nil in production.
type testHooks struct {
	syncStart, syncEnd func(connID string, kind store.SyncKind)
	checkpoint         func(connID string, cp *checkpoint)
}

// New builds a worker; Run starts it.
func New(cfg Config, deps Deps) *Worker {
	ttl := time.Duration(0)
	if deps.Leases != nil {
		ttl = deps.Leases.TTL()
	}
	cfg.setDefaults(ttl)
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	w := &Worker{cfg: cfg, d: deps, log: deps.Log, m: newMetrics(deps.Registerer, deps.Log),
		requests: NewRequester(deps.JS), slots: make(chan struct{}, cfg.MaxConcurrentSyncs),
		running: map[string]store.SyncKind{}, small: &smallSyncs{m: map[*pacer]*smallSync{}}}
	return w
}

// Requester is the worker's own request queue (the same bucket every
// Requester uses).
func (w *Worker) Requester() *Requester { return w.requests }

// Run schedules syncs until ctx ends, then waits for its running syncs to
// stop: each leaves a checkpoint and gives its lease back, so another worker
// resumes it at once.
func (w *Worker) Run(ctx context.Context) error {
	if w.d.JS == nil || w.d.Store == nil || len(w.d.Syncers) == 0 || w.d.Leases == nil {
		return errors.New("backfill: JS, Store, Syncers and Leases are required")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wake := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.requests.watch(ctx, wake, w.log)
	}()
	t := time.NewTicker(w.cfg.Tick)
	defer t.Stop()
	w.log.Info("backfill worker started", zap.Duration("tick", w.cfg.Tick),
		zap.Duration("incremental_every", w.cfg.IncrementalEvery), zap.Int("max_concurrent_syncs", w.cfg.MaxConcurrentSyncs))
	for {
		if err := w.schedule(ctx, &wg); err != nil && ctx.Err() == nil {
			w.log.Warn("backfill scheduling pass failed; retrying at the next tick", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-wake:
		}
	}
}

// schedule starts every due sync it has a slot for. Connections are visited
// in random order so that workers do not all contend for the same one.
func (w *Worker) schedule(ctx context.Context, wg *sync.WaitGroup) error {
	// Requests first: a request made after a sync ended must not be read
	// together with a connection still showing that sync RUNNING (it would
	// be coalesced into a sync that is over). Read in this order, a request
	// was made before the connection showed what it shows.
	reqs, err := w.requests.pending(ctx)
	if err != nil && ctx.Err() == nil {
		w.log.Warn("reading sync requests", zap.Error(err))
	}
	conns, err := w.d.Store.FindConnections(ctx, store.ConnectionQuery{State: store.StateActive})
	if err != nil {
		return fmt.Errorf("find active connections: %w", err)
	}
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	now := w.d.Now()
	for _, c := range conns {
		req := w.coalesce(ctx, c, reqs[c.ID])
		w.mu.Lock()
		_, busy := w.running[c.ID]
		w.mu.Unlock()
		if busy {
			continue
		}
		p, ok := w.plan(c, req.kind, now)
		if !ok {
			continue
		}
		select {
		case w.slots <- struct{}{}:
		default:
			return nil // full: other workers, or the next tick, take the rest
		}
		l, err := w.d.Leases.Acquire(ctx, leaseKey(c.ID))
		if err != nil {
			<-w.slots
			if errors.Is(err, lease.ErrHeld) {
				continue
			}
			return err
		}
		w.mu.Lock()
		w.running[c.ID] = p.kind
		w.mu.Unlock()
		wg.Add(1)
		go func(id string, req request) {
			defer wg.Done()
			defer func() {
				w.mu.Lock()
				delete(w.running, id)
				w.mu.Unlock()
				<-w.slots
			}()
			w.runLeased(ctx, id, req, l)
		}(c.ID, req)
	}
	return nil
}

// coalesce drops a request that the connection's last sync covers, and
// returns what is left to plan with.
func (w *Worker) coalesce(ctx context.Context, c *store.Connection, req request) request {
	if req.kind == "" || !covers(c.Detail.LastSync, req) {
		return req
	}
	if err := w.requests.done(ctx, c.ID, req.rev); err != nil {
		w.log.Debug("dropping a coalesced sync request", zap.String("connection_id", c.ID), zap.Error(err))
	}
	return request{}
}

// covers reports whether a sync, running or completed, covers a request
// made while it ran (or before it started); one made after it ended, or a
// sync that failed, covers nothing. A full sync covers a full request: a
// second one right after would read everything again, and what the first
// read past, the next incremental sync reads. An incremental request is
// covered by a sync of either kind that started after it was made: one
// that started before may have read past the changes the caller wants
// seen, and an incremental sync after it is cheap. An incremental sync
// never covers a full request. The scheduler may have started a sync on
// its own just before a request that it then sees only once that sync has
// ended (a connection made ACTIVE is due for its first full sync, and its
// activation requests one), so a sync that has ended covers as it did
// while it ran. "Before" and "after" are the request bucket's revisions,
// not clocks; a sync that does not know its revisions (one started by an
// earlier version) covers only full requests while it runs.
func covers(ls *store.SyncState, req request) bool {
	if ls == nil || (ls.Status != store.SyncRunning && ls.Status != store.SyncCompleted) {
		return false
	}
	cp := decodeCheckpoint(ls)
	if ls.Status != store.SyncRunning && (cp.RequestsTo == 0 || req.rev > cp.RequestsTo) {
		return false
	}
	if req.kind == store.SyncFull {
		return ls.Kind == store.SyncFull
	}
	return cp.RequestsFrom != 0 && req.rev <= cp.RequestsFrom
}

// runLeased runs one sync of a connection whose lease it holds: it re-reads
// the connection (another worker may have just finished a sync of it) and
// plans again before starting.
func (w *Worker) runLeased(ctx context.Context, connID string, req request, l *lease.Lease) {
	release := true
	defer func() {
		if !release {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			w.log.Warn("releasing sync lease", zap.String("connection_id", connID), zap.Error(err))
		}
	}()
	c, err := w.d.Store.LookupConnection(ctx, connID)
	if err != nil {
		w.log.Warn("reading connection for a sync", zap.String("connection_id", connID), zap.Error(err))
		return
	}
	if c.State != store.StateActive {
		return
	}
	p, ok := w.plan(c, req.kind, w.d.Now())
	if !ok {
		return
	}
	if req.kind != "" && (p.kind == store.SyncFull || req.kind == p.kind) {
		if err := w.requests.done(ctx, connID, req.rev); err != nil {
			w.log.Debug("consuming sync request", zap.String("connection_id", connID), zap.Error(err))
		}
	}
	release = w.runSync(ctx, c, p, l)
}

func leaseKey(connID string) string { return "sync-" + connID }
