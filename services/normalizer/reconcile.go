package normalizer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// reconcile applies a reconcile marker: every object of the marker's kinds
// that the completed full sync did not see, and that nothing changed since
// the sync started, is tombstoned at the marker's observed_at; one of its
// Hidden kinds is marked "no longer visible" instead (visibility.go).
//
// It is idempotent: a redelivered marker finds the objects it already
// tombstoned excluded (deleted), tombstones the rest, and publishes again the
// events of tombstones at its version, which the ITSM stream's dedupe drops
// if the first attempt's publish did land.
func (n *Normalizer) reconcile(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, w write, sr *SyncRecord) result {
	if sr.SyncID == "" || sr.StartedAt.IsZero() || sr.ObservedAt.IsZero() {
		return permanent(fmt.Errorf("%w: reconcile marker needs sync_id, started_at and observed_at", itsm.ErrMalformed))
	}
	for _, k := range append(slices.Clone(sr.Kinds), sr.Hidden...) {
		if _, err := itsm.ParseKind(string(k)); err != nil {
			return permanent(fmt.Errorf("%w: reconcile marker: %v", itsm.ErrMalformed, err))
		}
	}
	// Records of the sync were published before the marker but may still be
	// in flight in other workers or replicas, or waiting for a retry; seeing
	// the marker first would tombstone what the sync did see. The consumer's
	// ack floor is shared by all replicas: once it reaches the marker, every
	// earlier RAW message has been applied (or dead-lettered).
	ready, err := n.waitEarlierAcked(ctx, msg, meta.Sequence.Stream, msg.Subject())
	if err != nil {
		return result{err: err}
	}
	if !ready {
		return result{deferred: true}
	}
	version := sr.ObservedAt.UnixMilli()
	w.syncID = "" // tombstones keep the sync id they were last seen by
	written := 0
	for _, kind := range sr.Kinds {
		f := store.Filter{OrganizationID: w.conn.OrganizationID, Kind: kind, ConnectionID: w.conn.ID,
			NotSeenBy: sr.SyncID, ExcludeDeleted: true, UpdatedBefore: sr.StartedAt, Limit: store.MaxLimit}
		c, err := n.tombstoneAll(ctx, msg, w, f, version, ReasonMissingFromFullSync, nil)
		written += c
		if err != nil {
			return result{err: err}
		}
		if !w.redelivered {
			continue
		}
		// What an earlier attempt tombstoned no longer matches the filter
		// above (it is deleted and was changed after the sync started).
		f = store.Filter{OrganizationID: w.conn.OrganizationID, Kind: kind, ConnectionID: w.conn.ID,
			NotSeenBy: sr.SyncID, UpdatedSince: sr.StartedAt, Limit: store.MaxLimit}
		if _, err := n.tombstoneAll(ctx, msg, w, f, version, ReasonMissingFromFullSync, func(d *store.Document) bool {
			return d.Deleted && d.Version == version
		}); err != nil {
			return result{err: err}
		}
	}
	hidden := 0
	for _, kind := range sr.Hidden {
		// The connector read this sync's deletions of these kinds from the
		// vendor's delete log: what it did not see is hidden, not deleted.
		f := store.Filter{OrganizationID: w.conn.OrganizationID, Kind: kind, ConnectionID: w.conn.ID,
			NotSeenBy: sr.SyncID, ExcludeDeleted: true, UpdatedBefore: sr.StartedAt, Limit: store.MaxLimit}
		c, err := n.hideAll(ctx, msg, w, f, version, nil)
		hidden += c
		if err != nil {
			return result{err: err}
		}
		if !w.redelivered {
			continue
		}
		f = store.Filter{OrganizationID: w.conn.OrganizationID, Kind: kind, ConnectionID: w.conn.ID,
			NotSeenBy: sr.SyncID, ExcludeDeleted: true, UpdatedSince: sr.StartedAt, Limit: store.MaxLimit}
		if _, err := n.hideAll(ctx, msg, w, f, version, func(d *store.Document) bool {
			return d.Version == version
		}); err != nil {
			return result{err: err}
		}
	}
	n.log.Info("reconciled full sync", zap.String("organization_id", w.conn.OrganizationID),
		zap.String("connection_id", w.conn.ID), zap.String("sync_id", sr.SyncID), zap.Int("tombstoned", written), zap.Int("hidden", hidden))
	if written+hidden > 0 {
		return result{result: "written"}
	}
	return result{result: "unchanged"}
}

// tombstoneAll tombstones every document f lists (that keep accepts),
// cascading ticket tombstones to their children (see eachListed).
func (n *Normalizer) tombstoneAll(ctx context.Context, msg jetstream.Msg, w write, f store.Filter, version int64, reason string, keep func(*store.Document) bool) (int, error) {
	return n.eachListed(ctx, msg, f, "tombstone", keep, func(pctx context.Context, d *store.Document) (bool, error) {
		res, err := n.tombstone(pctx, w, d.Kind, d.ID, version, reason)
		if err == nil && res.cascade != nil {
			err = n.cascade(pctx, w, res.cascade)
		}
		return res.written, err
	})
}

// eachListed applies fn to every document f lists that keep accepts (all,
// when keep is nil), page by page, and counts those fn wrote. Each page gets
// its own deadline and extends the message's ack deadline, so a large
// reconcile is not redelivered while it is still running.
func (n *Normalizer) eachListed(ctx context.Context, msg jetstream.Msg, f store.Filter, what string, keep func(*store.Document) bool,
	fn func(context.Context, *store.Document) (bool, error)) (int, error) {
	written := 0
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.AckWait)
		page, err := n.store.List(pctx, f)
		if err != nil {
			cancel()
			return written, fmt.Errorf("list %s to %s: %w", f.Kind, what, err)
		}
		for _, d := range page.Docs {
			if keep != nil && !keep(d) {
				continue
			}
			ok, err := fn(pctx, d)
			if err != nil {
				cancel()
				return written, err
			}
			if ok {
				written++
			}
		}
		cancel()
		if msg != nil {
			_ = msg.InProgress()
		}
		if page.NextCursor == "" {
			return written, nil
		}
		f.Cursor = page.NextCursor
	}
}

// cascade tombstones a deleted ticket's comments and attachments at the
// ticket tombstone's version.
func (n *Normalizer) cascade(ctx context.Context, w write, ticket *store.Document) error {
	for _, kind := range []itsm.Kind{itsm.KindComment, itsm.KindAttachment} {
		// A redelivery must also see children already tombstoned at this
		// version, to publish their events again; otherwise skipping
		// tombstones keeps the listing short.
		f := store.Filter{OrganizationID: ticket.OrganizationID, Kind: kind, TicketID: ticket.ID,
			ExcludeDeleted: !w.redelivered, Limit: store.MaxLimit}
		if _, err := n.tombstoneAll(ctx, nil, w, f, ticket.Version, ReasonTicketDeleted, nil); err != nil {
			return fmt.Errorf("cascade deletion of ticket %s: %w", ticket.ID, err)
		}
	}
	return nil
}

// tombstone marks a stored object deleted at version, keeping its last body,
// and publishes the deleted event. An object already deleted stays as it is;
// a redelivery publishes again the event of a tombstone at exactly version.
func (n *Normalizer) tombstone(ctx context.Context, w write, kind itsm.Kind, id string, version int64, reason string) (applied, error) {
	unlock := n.locks.lock(id)
	defer unlock()
	cur, err := n.store.Get(ctx, w.conn.OrganizationID, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return applied{}, nil
	}
	if err != nil {
		return applied{}, fmt.Errorf("read %s %s to tombstone: %w", kind, id, err)
	}
	if cur.Version >= version || cur.Deleted {
		if w.redelivered && cur.Version == version && cur.Deleted {
			if err := n.republish(ctx, w.conn, cur); err != nil {
				return applied{}, err
			}
			return applied{cascade: ticketOnly(cur)}, nil
		}
		return applied{}, nil
	}
	doc, err := tombstoneDoc(cur, version, reason, n.cfg.Now().UTC())
	if err != nil {
		return applied{}, err
	}
	n.cache.forget(kind, id)
	outcome, err := n.store.Put(ctx, doc)
	if err != nil {
		return applied{}, fmt.Errorf("write tombstone of %s %s: %w", kind, id, err)
	}
	if outcome == store.NotNewer {
		return applied{}, nil
	}
	fields := topLevel(doc.Body)
	if err := n.publish(ctx, w.conn, doc, itsm.ChangeDeleted, diffFields(topLevel(cur.Body), fields)); err != nil {
		return applied{}, err
	}
	createdAt, _ := timeField(fields, "created_at")
	n.cache.put(doc, createdAt)
	return applied{written: true, cascade: ticketOnly(doc)}, nil
}

func ticketOnly(d *store.Document) *store.Document {
	if d.Kind == itsm.KindTicket {
		return d
	}
	return nil
}

// tombstoneDoc is cur deleted at version: its last known body, inactive,
// with the reason in vendor_attributes, as itsm.Object.Delete does to a
// typed object. The stored body is edited in place rather than decoded into
// its type and encoded again, so that what the type would not carry over
// verbatim (fields of a newer model, numbers beyond float64) is kept.
func tombstoneDoc(cur *store.Document, version int64, reason string, now time.Time) (*store.Document, error) {
	// Both enums spell deletion alike; the status changes now, when the
	// platform learns of the deletion.
	status := string(itsm.StatusDeleted)
	d, err := retiredDoc(cur, version, now, "tombstone", func(set func(k string, v any), setAttr func(k string, v any)) {
		setAttr(itsm.DeletionReason, reason)
		set("status", status)
		set("status_updated_at", time.UnixMilli(version).UTC())
	})
	if err != nil {
		return nil, err
	}
	d.Status, d.Deleted = status, true
	return d, nil
}

// retiredDoc is cur at version, inactive and updated now, its stored body
// edited in place (edit sets top-level fields and vendor attributes); a
// tombstone and a "no longer visible" mark are both made so.
func retiredDoc(cur *store.Document, version int64, now time.Time, what string, edit func(set, setAttr func(k string, v any))) (*store.Document, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(cur.Body, &body); err != nil || body == nil {
		return nil, fmt.Errorf("%s %s %s: stored body: %w", what, cur.Kind, cur.ID, errOr(err, "not an object"))
	}
	var attrs map[string]json.RawMessage
	if raw, ok := body["vendor_attributes"]; ok {
		_ = json.Unmarshal(raw, &attrs)
	}
	if attrs == nil {
		attrs = map[string]json.RawMessage{}
	}
	setIn := func(m map[string]json.RawMessage) func(k string, v any) {
		return func(k string, v any) {
			b, _ := json.Marshal(v) // strings, bools, numbers and times always encode
			m[k] = b
		}
	}
	set := setIn(body)
	edit(set, setIn(attrs))
	set("vendor_attributes", attrs)
	set("active", false)
	set("updated_at", now)
	out, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s of %s %s: %w", what, cur.Kind, cur.ID, err)
	}
	d := *cur
	d.Version, d.UpdatedAt, d.Body = version, now, out
	// An empty sync id keeps the stored one (see store.Document.SyncID).
	d.SyncID = ""
	return &d, nil
}

// noneBefore reports whether the stream holds no message of subject from
// sequence from up to (not including) seq.
func (n *Normalizer) noneBefore(ctx context.Context, subject string, from, seq uint64) (bool, error) {
	raw, err := n.js.Stream(ctx, broker.StreamRaw)
	if err != nil {
		return false, fmt.Errorf("read RAW: %w", err)
	}
	m, err := raw.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read RAW after the ack floor: %w", err)
	}
	return m.Sequence >= seq, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// waitEarlierAcked reports whether every RAW message before seq was acked,
// waiting for it up to half the ack wait. Waiting here, with the message's
// ack deadline extended, rather than sending the marker back at once keeps
// its delivery count for real failures: a marker behind a backlog would
// otherwise use up MaxDeliver on waiting alone. Markers are rare (one per
// full sync), so the worker they hold is affordable; when the wait runs out
// the marker is sent back, freeing the worker.
//
// Each lane's ack floor only moves over its own subjects, so other
// connections' messages between a floor and the marker do not hold it: the
// marker is ready once each lane's floor has passed every message of the
// marker's connection before it (its sync records, and the live deliveries
// that may have changed what the sync saw).
func (n *Normalizer) waitEarlierAcked(ctx context.Context, msg jetstream.Msg, seq uint64, subject string) (bool, error) {
	deadline := time.NewTimer(n.cfg.AckWait / 2)
	defer deadline.Stop()
	poll := time.NewTicker(min(n.cfg.RetryDelay, 100*time.Millisecond))
	defer poll.Stop()
	vendor, conn, _, err := broker.ParseRawSubject(subject)
	if err != nil {
		return false, err
	}
	lanes := []struct {
		cons    jetstream.Consumer
		subject string
	}{
		{n.cons, broker.RawSubject(vendor, conn, broker.SourceSync)},
		{n.bulkCons, broker.RawSubject(vendor, conn, broker.SourceBulk)},
		{n.liveCons, broker.RawSubject(vendor, conn, broker.SourceWebhook)},
	}
	for {
		ready := true
		for _, l := range lanes {
			if l.cons == nil {
				continue
			}
			info, err := l.cons.Info(ctx)
			if err != nil {
				return false, fmt.Errorf("read consumer ack floor: %w", err)
			}
			if info.AckFloor.Stream+1 >= seq {
				continue
			}
			none, err := n.noneBefore(ctx, l.subject, info.AckFloor.Stream+1, seq)
			if err != nil {
				return false, err
			}
			ready = ready && none
		}
		if ready {
			return true, nil
		}
		_ = msg.InProgress()
		select {
		case <-poll.C:
		case <-deadline.C:
			return false, nil
		case <-ctx.Done():
			return false, nil
		case <-n.stopping:
			return false, nil // shutting down: the marker goes back
		}
	}
}
