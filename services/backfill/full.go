package backfill

import (
	"context"
	"slices"
	"strings"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// full runs the connector's crawl from the checkpoint on, then the
// reconcile. A sync resumed after its crawl ended goes straight to the
// reconcile.
func (r *run) full(ctx context.Context, s Syncer) error {
	if r.Phase() != PhaseReconcile {
		if err := s.Full(ctx, r); err != nil {
			return err
		}
		if err := r.checkpoint(ctx, func(cp *checkpoint) { cp.Phase = PhaseReconcile }); err != nil {
			return err
		}
	}
	return r.reconcile(ctx, s)
}

// Publish sends one record of this sync (connector.SyncRun).
func (r *run) Publish(ctx context.Context, rec connector.Record) error {
	typ := rec.Type
	var syncID, id string
	if r.kind == store.SyncFull {
		// No message id: JetStream keeps one dedupe entry per id in server
		// memory for the whole duplicate window (two hours on RAW), some
		// 50 MB per 100,000 issues with their comments. What a resumed sync
		// publishes again is at most one search page since the checkpoint,
		// and the normalizer takes a record it already has as a no-op
		// (equal version: only marked seen).
		syncID = r.state.ID
	} else {
		// Incremental syncs are small and overlap each other by design:
		// the id (the record's version) drops the re-reads of the overlap.
		id = msgID("inc", r.conn.ID, typ, rec.VendorID, rec.Version)
	}
	data := raw.AppendSyncRecord(make([]byte, 0, len(rec.Body)+192), typ, rec.ParentID, syncID, r.w.d.Now().UTC(), rec.Body)
	if err := r.pub.publish(ctx, r.pub.message(data, id)); err != nil {
		return err
	}
	r.count(typ, 1)
	return nil
}

// reconcile publishes the reconcile marker of a full sync that completed:
// the normalizer tombstones the objects of the listed kinds that this sync
// did not see. Kinds the sync could not cover completely (SyncRun.Incomplete:
// lost projects, unreadable issues) are left out, so nothing is deleted on
// their account; the unseen objects of HideUnseen's kinds are marked "no
// longer visible" instead.
func (r *run) reconcile(ctx context.Context, s Syncer) error {
	r.setPhase(PhaseReconcile)
	if err := r.checkDeadline(); err != nil {
		return err
	}
	if err := r.pub.flush(ctx); err != nil {
		return err
	}
	r.saveMu.Lock()
	incomplete, excluded := r.mergeIncomplete(r.cp.Incomplete, r.cp.Excluded)
	hide := r.mergeHidden(r.cp.Hidden)
	r.saveMu.Unlock()
	var kinds, hidden []itsm.Kind
	for _, k := range s.Kinds(r.conn) {
		switch {
		case slices.Contains(excluded, k):
		case slices.Contains(hide, k):
			hidden = append(hidden, k)
		default:
			kinds = append(kinds, k)
		}
	}
	marker := &raw.SyncRecord{Type: raw.TypeReconcile, SyncID: r.state.ID, StartedAt: r.state.StartedAt,
		Kinds: kinds, Hidden: hidden, ObservedAt: r.w.d.Now().UTC()}
	if err := r.pub.record(ctx, marker, msgID(r.state.ID, raw.TypeReconcile)); err != nil {
		return err
	}
	if err := r.pub.flush(ctx); err != nil {
		return err
	}
	lastErr := ""
	if len(excluded) > 0 {
		names := make([]string, len(excluded))
		for i, k := range excluded {
			names[i] = strings.ToLower(string(k)) + "s"
		}
		lastErr = "not reconciled for " + strings.Join(names, ", ") + ": " + strings.Join(incomplete, "; ")
	}
	return r.complete(ctx, store.SyncCompleted, lastErr, r.advanceWatermark)
}

// advanceWatermark moves the incremental watermark to the sync's start:
// everything updated before it has been read.
func (r *run) advanceWatermark(c *store.Connection) {
	start := r.state.StartedAt.UTC()
	if c.Detail.Watermark == nil || c.Detail.Watermark.Before(start) {
		c.Detail.Watermark = &start
	}
}
