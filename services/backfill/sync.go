package backfill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
)

// Why a sync's context ended (context.Cause).
var (
	errTimedOut  = errors.New("sync exceeded the connection's timeout_secs")
	errLeaseLost = errors.New("sync lease lost to another worker")
	errFenced    = errors.New("another worker took the sync over")
	errInactive  = errors.New("the connection is no longer ACTIVE")
	// errHalt stops a worker the way a crash would: no final write, no
	// lease release. Only tests use it.
	errHalt = errors.New("worker halted")
)

// run is one sync of one connection, under its lease.
type run struct {
	w        *Worker
	conn     *store.Connection // as read when the sync (re)started
	kind     store.SyncKind
	log      *zap.Logger
	pub      *publisher
	deadline time.Time

	// saveMu serializes writes of the sync state; state and cp are the
	// state as last saved (cp at the last checkpoint).
	saveMu sync.Mutex
	state  store.SyncState
	cp     checkpoint

	// Live counters of records published, by record type.
	cmu    sync.Mutex
	counts map[string]int64
	errs   atomic.Int64
	phase  atomic.Value // string

	// Why kinds are left out of the reconcile, since the last checkpoint.
	incompleteMu sync.Mutex
	incomplete   []string
	excluded     []itsm.Kind
	hidden       []itsm.Kind
}

// runSync runs (or resumes) a sync and records how it ended. It reports
// whether the lease should be released: not when the worker halted, as a
// crashed one would not.
func (w *Worker) runSync(parent context.Context, conn *store.Connection, p plan, l *lease.Lease) bool {
	log := w.log.With(zap.String("connection_id", conn.ID), zap.String("organization_id", conn.OrganizationID),
		zap.String("kind", string(p.kind)))
	r := &run{w: w, conn: conn, kind: p.kind, log: log, counts: map[string]int64{}}
	now := w.d.Now()
	if err := r.start(parent, p, now); err != nil {
		if !errors.Is(err, errFenced) {
			log.Warn("could not start sync", zap.Error(err))
		}
		return true
	}
	r.log = r.log.With(zap.String("sync_id", r.state.ID), zap.Int("epoch", r.cp.Epoch))
	if pc := r.pub.pace; pc != nil {
		defer func() { pc.small.end(pc, time.Now()) }()
	}
	if w.hooks.syncStart != nil {
		w.hooks.syncStart(conn.ID, p.kind)
	}
	if w.hooks.syncEnd != nil {
		defer w.hooks.syncEnd(conn.ID, p.kind)
	}
	w.m.running.WithLabelValues(string(p.kind)).Inc()
	defer w.m.running.WithLabelValues(string(p.kind)).Dec()

	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if context.Cause(parent) == errHalt {
		return false
	}
	// The deadline is on the connection's clock (Now); a context deadline
	// in real time enforces it while the sync waits on I/O.
	r.deadline = r.state.StartedAt.Add(syncTimeout(conn))
	ctx, cancelDeadline := context.WithDeadlineCause(ctx, time.Now().Add(r.deadline.Sub(now)), errTimedOut)
	defer cancelDeadline()

	var bg sync.WaitGroup
	stopBG := make(chan struct{})
	bg.Add(2)
	go func() { defer bg.Done(); r.keepLease(ctx, cancel, l, stopBG) }()
	go func() { defer bg.Done(); r.reportProgress(ctx, stopBG) }()

	if !now.Before(r.deadline) {
		cancel(errTimedOut)
	}
	err := r.body(ctx)
	close(stopBG)
	bg.Wait()
	return r.finish(parent, ctx, err)
}

// start writes the RUNNING state: a new sync, or the takeover of one whose
// worker is gone (same sync id, next epoch).
func (r *run) start(ctx context.Context, p plan, now time.Time) error {
	prev := r.conn.Detail.LastSync
	if p.resume {
		r.state = *prev
		r.cp = decodeCheckpoint(prev)
		r.cp.Epoch++
		r.cp.NotBefore = nil
		r.counts = maps.Clone(r.cp.Done)
		if r.counts == nil {
			r.counts = map[string]int64{}
		}
		r.log.Info("resuming sync from its checkpoint", zap.String("sync_id", prev.ID), zap.String("phase", r.cp.Phase))
	} else {
		r.state = store.SyncState{ID: uuid.NewString(), Kind: r.kind, Phase: PhaseStarting, Status: store.SyncRunning, StartedAt: now.UTC()}
		r.cp = checkpoint{Epoch: 1, LastFull: lastFull(r.conn), RequestsFrom: r.requestsRevision(ctx)}
		if r.kind == store.SyncFull {
			// This sync is the last full one from now on; what the one
			// before carried is kept for its connector (SyncRun.Carried).
			if lf := r.cp.LastFull; lf != nil {
				r.cp.Carried = lf.Carry
			}
			r.cp.LastFull = nil
		}
		if r.kind == store.SyncIncremental {
			wm := now
			if r.conn.Detail.Watermark != nil {
				wm = *r.conn.Detail.Watermark
			}
			from := wm.Add(-r.w.cfg.Overlap).UTC()
			r.cp.From = &from
		}
	}
	r.pub = newPublisher(r.w.d.JS, r.conn, r.w.cfg.MaxPendingAcks)
	if name := r.w.cfg.BacklogConsumer; name != "" {
		r.pub.pace = &pacer{js: r.w.d.JS, consumer: name, bulkConsumer: r.w.cfg.BulkConsumer, poll: 20 * time.Millisecond,
			max: uint64(r.w.cfg.MaxBacklog), largeAfter: r.w.cfg.LargeSyncAfter, largeMax: uint64(r.w.cfg.LargeSyncBacklog),
			yieldMax: uint64(r.w.cfg.LargeSyncYield), small: r.w.small}
		if r.w.cfg.BulkConsumer != "" {
			r.pub.toBulk()
		}
	}
	prevID, prevEpoch, prevStatus := "", 0, store.SyncStatus("")
	if prev != nil {
		prevID, prevEpoch, prevStatus = prev.ID, decodeCheckpoint(prev).Epoch, prev.Status
	}
	r.state.Status, r.state.EndedAt = store.SyncRunning, nil
	r.state.Checkpoint = r.cp.encode()
	_, err := r.w.updateConn(ctx, r.conn.ID, func(c *store.Connection) error {
		ls := c.Detail.LastSync
		// Nobody else may have started or taken over a sync since we read.
		switch {
		case c.State != store.StateActive:
			return errFenced
		case ls == nil && prevID != "":
			return errFenced
		case ls != nil && (ls.ID != prevID || ls.Status != prevStatus || decodeCheckpoint(ls).Epoch != prevEpoch):
			return errFenced
		}
		st := r.state
		c.Detail.LastSync = &st
		return nil
	})
	return err
}

// keepLease renews the lease every LeaseRenewEvery; losing it (or failing to
// renew it for a whole TTL) cancels the sync, since another worker may now
// resume it.
func (r *run) keepLease(ctx context.Context, cancel context.CancelCauseFunc, l *lease.Lease, stop <-chan struct{}) {
	t := time.NewTicker(r.w.cfg.LeaseRenewEvery)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.Renew(ctx)
		switch {
		case err == nil:
			lastOK = time.Now()
		case errors.Is(err, lease.ErrLost):
			r.log.Warn("sync lease lost; stopping so that the new holder resumes it")
			cancel(errLeaseLost)
			return
		case time.Since(lastOK) >= r.w.d.Leases.TTL():
			r.log.Warn("could not renew the sync lease for a whole TTL; stopping", zap.Error(err))
			cancel(errLeaseLost)
			return
		}
	}
}

// reportProgress writes the live counts every ProgressEvery, for the
// connection status API and `itsm sync --follow`.
func (r *run) reportProgress(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(r.w.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.save(ctx, nil); err != nil && ctx.Err() == nil && !errors.Is(err, errFenced) {
				r.log.Debug("writing sync progress", zap.Error(err))
			}
		}
	}
}

// count notes n published records of a type.
func (r *run) count(typ string, n int64) {
	r.cmu.Lock()
	r.counts[typ] += n
	r.cmu.Unlock()
	r.w.m.objects.WithLabelValues(typ).Add(float64(n))
}

func (r *run) liveCounts() (map[string]int64, int64) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	var total int64
	for _, n := range r.counts {
		total += n
	}
	return maps.Clone(r.counts), total
}

func (r *run) setPhase(p string) { r.phase.Store(p) }

func (r *run) currentPhase() string {
	if p, ok := r.phase.Load().(string); ok {
		return p
	}
	return PhaseStarting
}

// save writes the sync state; with mutate, it also moves the checkpoint
// (mutate changes r.cp under the lock). Writes are fenced: a worker whose
// sync was taken over gets errFenced and stops.
func (r *run) save(ctx context.Context, mutate func(cp *checkpoint)) error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	counts, total := r.liveCounts()
	if mutate != nil {
		mutate(&r.cp)
		r.cp.Done = counts
		// Why kinds must stay out of the reconcile survives a takeover.
		r.cp.Incomplete, r.cp.Excluded = r.mergeIncomplete(r.cp.Incomplete, r.cp.Excluded)
		r.cp.Hidden = r.mergeHidden(r.cp.Hidden)
	}
	cp := r.cp.clone()
	cp.Live = counts
	r.state.Phase = r.currentPhase()
	r.state.Objects = total
	r.state.Errors = r.errs.Load()
	r.state.Checkpoint = cp.encode()
	_, err := r.w.updateConn(ctx, r.conn.ID, func(c *store.Connection) error {
		if err := r.fence(c); err != nil {
			return err
		}
		if c.State != store.StateActive {
			// Paused or deleted meanwhile: stop (finish records why).
			return errInactive
		}
		st := r.state
		c.Detail.LastSync = &st
		return nil
	})
	return err
}

func (r *run) fence(c *store.Connection) error {
	ls := c.Detail.LastSync
	if ls == nil || ls.ID != r.state.ID || ls.Status != store.SyncRunning || decodeCheckpoint(ls).Epoch != r.cp.Epoch {
		return errFenced
	}
	return nil
}

// checkpoint waits for every record published so far to be acknowledged,
// then stores the new position. A worker that takes the sync over resumes
// from here; records after it are published again and dropped by RAW's
// dedupe.
func (r *run) checkpoint(ctx context.Context, mutate func(cp *checkpoint)) error {
	if err := r.pub.flush(ctx); err != nil {
		return err
	}
	if err := r.checkDeadline(); err != nil {
		return err
	}
	if err := r.save(ctx, mutate); err != nil {
		return err
	}
	if h := r.w.hooks.checkpoint; h != nil {
		r.saveMu.Lock()
		cp := r.cp.clone()
		r.saveMu.Unlock()
		h(r.conn.ID, &cp)
	}
	return nil
}

// checkDeadline applies the timeout on the connection's clock, which may
// run ahead of real time (tests, a simulator's clock).
func (r *run) checkDeadline() error {
	if !r.w.d.Now().Before(r.deadline) {
		return errTimedOut
	}
	return nil
}

// body runs the connector's crawl of the sync's kind.
func (r *run) body(ctx context.Context) error {
	s := r.w.d.Syncers[r.conn.Vendor]
	if s == nil {
		return fmt.Errorf("no connector syncs %s connections", r.conn.Vendor)
	}
	if r.kind == store.SyncIncremental {
		if err := s.Incremental(ctx, r); err != nil {
			return err
		}
		if err := r.pub.flush(ctx); err != nil {
			return err
		}
		return r.complete(ctx, store.SyncCompleted, "", r.advanceWatermark)
	}
	return r.full(ctx, s)
}

// finish records how the sync ended and reports whether to release the
// lease.
func (r *run) finish(parent, ctx context.Context, err error) bool {
	cause := context.Cause(ctx)
	var paused connector.Paused
	var infra *infraError
	switch {
	case cause == errHalt || context.Cause(parent) == errHalt:
		r.log.Info("worker halted mid-sync")
		return false
	case err == nil:
		return true // completed: body recorded it
	case errors.Is(err, errFenced) || cause == errLeaseLost || errors.Is(err, errLeaseLost):
		r.log.Info("sync continues under another worker")
		return true
	case errors.Is(err, errTimedOut) || cause == errTimedOut:
		r.end(parent, store.SyncTimedOut, errTimedOut)
		return true
	case parent.Err() != nil:
		// Shutdown: keep RUNNING with its checkpoint; the lease is released
		// so another worker resumes at once.
		r.log.Info("worker stopping; the sync stays resumable from its checkpoint")
		return true
	case errors.As(err, &paused):
		// The pacer runs on the real clock; NotBefore is on the worker's.
		r.park(parent, r.w.d.Now().Add(time.Until(paused.ResumeAt())), err)
		return true
	case errors.As(err, &infra):
		r.park(parent, r.w.d.Now().Add(30*time.Second), err)
		return true
	}
	r.end(parent, store.SyncFailed, err)
	return true
}

// park leaves the sync RUNNING, to be resumed after until by any worker.
func (r *run) park(ctx context.Context, until time.Time, cause error) {
	r.log.Warn("parking sync; it resumes from its checkpoint", zap.Time("not_before", until), zap.Error(cause))
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	u := until.UTC()
	r.saveMu.Lock()
	r.cp.NotBefore = &u
	r.state.LastError = cause.Error()
	r.saveMu.Unlock()
	if err := r.save(wctx, nil); err != nil {
		r.log.Warn("recording the parked sync", zap.Error(err))
	}
}

// end records a final status other than COMPLETED.
func (r *run) end(ctx context.Context, status store.SyncStatus, cause error) {
	r.log.Warn("sync ended", zap.String("status", string(status)), zap.Error(cause))
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.complete(wctx, status, cause.Error(), nil); err != nil && !errors.Is(err, errFenced) {
		r.log.Warn("recording the sync's end", zap.Error(err))
	}
}

// requestsRevision is the sync request bucket's last revision, or zero
// (not known) if it cannot be read: the sync then covers fewer requests.
func (r *run) requestsRevision(ctx context.Context) uint64 {
	rev, err := r.w.requests.revision(ctx)
	if err != nil {
		r.log.Debug("reading the sync requests' revision", zap.Error(err))
	}
	return rev
}

// dropCovered drops the connection's pending request if this sync, about
// to be recorded completed, covers it (see covers). Before the record, not
// after: a caller that waited for this sync and then asks for another would
// otherwise renew a request it covered, and get the wrong sync.
func (r *run) dropCovered(ctx context.Context) {
	req, err := r.w.requests.get(ctx, r.conn.ID)
	if err == nil && req.kind != "" && covers(&r.state, req) {
		err = r.w.requests.done(ctx, r.conn.ID, req.rev)
	}
	if err != nil {
		r.log.Debug("dropping the sync requests this sync covers", zap.Error(err))
	}
}

// complete writes the final state; extra changes the connection in the same
// write (watermark, health).
func (r *run) complete(ctx context.Context, status store.SyncStatus, lastErr string, extra func(c *store.Connection)) error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	counts, total := r.liveCounts()
	r.cp.Done, r.cp.Live = counts, nil
	r.cp.NotBefore = nil
	r.cp.RequestsTo = r.requestsRevision(ctx)
	end := r.w.d.Now().UTC()
	r.state.Status, r.state.EndedAt, r.state.LastError = status, &end, lastErr
	r.state.Phase = PhaseDone
	r.state.Objects, r.state.Errors = total, r.errs.Load()
	r.state.Checkpoint = r.cp.encode()
	if status == store.SyncCompleted {
		r.dropCovered(ctx)
	}
	_, err := r.w.updateConn(ctx, r.conn.ID, func(c *store.Connection) error {
		if err := r.fence(c); err != nil {
			return err
		}
		st := r.state
		c.Detail.LastSync = &st
		if extra != nil {
			extra(c)
		}
		return nil
	})
	if err == nil {
		r.w.m.duration.WithLabelValues(string(r.kind), string(status)).Observe(end.Sub(r.state.StartedAt).Seconds())
		r.log.Info("sync finished", zap.String("status", string(status)), zap.Int64("objects", total),
			zap.Int64("errors", r.state.Errors), zap.Duration("took", end.Sub(r.state.StartedAt)))
	}
	return err
}

// updateConn applies fn to the stored connection under optimistic
// concurrency, re-reading on conflicts (token refreshes and API calls write
// the same record).
func (w *Worker) updateConn(ctx context.Context, id string, fn func(c *store.Connection) error) (*store.Connection, error) {
	for attempt := 0; ; attempt++ {
		c, err := w.d.Store.LookupConnection(ctx, id)
		if err != nil {
			return nil, &infraError{fmt.Errorf("read connection: %w", err)}
		}
		if err := fn(c); err != nil {
			return nil, err
		}
		c.UpdatedAt = w.d.Now().UTC()
		err = w.d.Store.UpdateConnection(ctx, c)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= 20 {
			return nil, &infraError{fmt.Errorf("update connection: %w", err)}
		}
	}
}
