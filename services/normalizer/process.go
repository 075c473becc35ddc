package normalizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// process maps one RAW message and applies every record in it.
func (n *Normalizer) process(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) result {
	if at := msg.Headers().Get(itsm.HeaderReceivedAt); at != "" {
		ctx = context.WithValue(ctx, receivedAtKey{}, at)
	}
	vendor, connID, source, err := broker.ParseRawSubject(msg.Subject())
	if err != nil {
		return permanent(err)
	}
	mapper, ok := n.cfg.Mappers[vendor]
	if !ok {
		return permanent(fmt.Errorf("%w %q", errUnknownVendor, vendor))
	}
	conn, err := n.conns.LookupConnection(ctx, connID)
	if errors.Is(err, store.ErrNotFound) {
		return permanent(fmt.Errorf("%w %s", errUnknownConnection, connID))
	}
	if err != nil {
		return result{err: fmt.Errorf("look up connection: %w", err)}
	}
	if conn.State == store.StateDeleted {
		// Records still queued when a connection is deleted must not bring
		// its data back, least of all after a purge.
		return result{result: "connection_deleted"}
	}
	w := write{conn: conn, redelivered: meta.NumDelivered > 1}
	var recs []itsm.Record
	switch source {
	case broker.SourceWebhook:
		if !raw.IsWriteBack(msg.Headers()) {
			recs, err = mapper.MapWebhook(conn, msg.Data())
			break
		}
		sr, derr := raw.DecodeSyncRecord(msg.Data())
		switch {
		case derr != nil:
			return permanent(fmt.Errorf("%w: write-back envelope: %v", itsm.ErrMalformed, derr))
		case sr.Type == SyncTypeReconcile:
			return permanent(fmt.Errorf("%w: a write-back carries records, never a reconcile marker", itsm.ErrMalformed))
		}
		// A write-back belongs to no sync: it must not mark anything seen.
		sr.SyncID = ""
		recs, err = mapper.MapSync(conn, sr)
	case broker.SourceSync, broker.SourceBulk:
		sr, err := raw.DecodeSyncRecord(msg.Data())
		if err != nil {
			return permanent(fmt.Errorf("%w: sync envelope: %v", itsm.ErrMalformed, err))
		}
		if sr.Type == SyncTypeReconcile {
			return n.reconcile(ctx, msg, meta, w, &sr)
		}
		w.syncID = sr.SyncID
		recs, err = mapper.MapSync(conn, sr)
	default:
		return permanent(fmt.Errorf("unknown raw source %q", source))
	}
	switch {
	case errors.Is(err, itsm.ErrUnsupportedEvent):
		return result{result: "unsupported", detail: err.Error()}
	case err != nil:
		return permanent(err)
	}
	outcome := "unchanged"
	for _, rec := range recs {
		res, err := n.apply(ctx, w, rec)
		if err != nil {
			return result{err: err}
		}
		if res.written {
			outcome = "written"
		}
		if res.cascade != nil {
			if err := n.cascade(ctx, w, res.cascade); err != nil {
				return result{err: err}
			}
		}
	}
	return result{result: outcome}
}

// SyncRecord is the sync envelope (package raw); the normalizer's tests and
// tools name it here too.
type SyncRecord = raw.SyncRecord

// SyncTypeReconcile marks the end of a complete full sync.
const SyncTypeReconcile = raw.TypeReconcile

// write is what every write of one RAW message shares.
type write struct {
	conn *store.Connection
	// redelivered: an earlier attempt at this message may have written and
	// died before publishing, so an equal stored version is published again
	// (the ITSM stream's dedupe drops it if the first publish did land).
	redelivered bool
	// syncID is the full sync that saw the records, if any.
	syncID string
}

type applied struct {
	written bool
	// cascade is a ticket tombstone whose comments and attachments must
	// follow it.
	cascade *store.Document
}

// Reasons recorded in vendor_attributes.deletion_reason of tombstones the
// platform made itself (the vendor's deletions carry none).
const (
	ReasonMissingFromFullSync = "missing_from_full_sync"
	ReasonTicketDeleted       = "ticket_deleted"
)

// apply writes one record under the version guard and publishes its event.
func (n *Normalizer) apply(ctx context.Context, w write, rec itsm.Record) (applied, error) {
	if err := n.orphanCheck(ctx, w, &rec); err != nil {
		return applied{}, err
	}
	res, err := n.applyLocked(ctx, w, rec)
	if err != nil || rec.Deleted {
		return res, err
	}
	// The parent may have been deleted between orphanCheck and the write,
	// and its cascade may have listed the children before this one was
	// written. Checking again after the write closes that gap: either this
	// read sees the ticket's tombstone, or the cascade's list saw this child
	// (tombstoning twice at one version is a no-op).
	parent, err := n.deletedParentErr(ctx, w, rec)
	if err != nil || parent == nil {
		return res, err
	}
	_, err = n.tombstone(ctx, w, rec.Kind, rec.ID, parent.Version, ReasonTicketDeleted)
	return res, err
}

func (n *Normalizer) applyLocked(ctx context.Context, w write, rec itsm.Record) (applied, error) {
	version := rec.Version.UnixMilli()
	unlock := n.locks.lock(rec.ID)
	defer unlock()
	// A redelivery needs the stored document itself, to publish it again.
	if c := n.cache.get(rec.Kind, rec.ID); c != nil && !w.redelivered && !c.createdAt.IsZero() {
		if c.version >= version {
			return applied{}, n.markSeen(ctx, w, rec)
		}
		return n.write(ctx, w, rec, previous{exists: true, createdAt: c.createdAt, body: c.body})
	}
	if !w.redelivered && n.novelty.likelyNew(w.conn.ID, rec.Kind) {
		res, inserted, err := n.insert(ctx, w, rec)
		if err != nil || inserted {
			return res, err
		}
	}
	prev, err := n.store.Get(ctx, w.conn.OrganizationID, rec.Kind, rec.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return applied{}, fmt.Errorf("read %s %s: %w", rec.Kind, rec.ID, err)
	}
	n.novelty.note(w.conn.ID, rec.Kind, prev == nil)
	if prev == nil {
		return n.write(ctx, w, rec, previous{})
	}
	if since, hidden := hiddenSince(prev); hidden && prev.Version >= version && version >= since {
		// A record of a hidden object at least as new as the version it
		// was hidden at: the account reads it again, so it replaces the
		// hidden copy, one millisecond after it.
		rec.Version = time.UnixMilli(prev.Version + 1).UTC()
		version = prev.Version + 1
	}
	if prev.Version >= version {
		return n.notNewer(ctx, w, rec, prev, version)
	}
	// The previous body is decoded once, for its created_at and the diff.
	p := previous{exists: true, fields: topLevel(prev.Body)}
	p.createdAt, _ = timeField(p.fields, "created_at")
	return n.write(ctx, w, rec, p)
}

// previous is what a write needs to know of the version it replaces.
type previous struct {
	exists    bool
	createdAt time.Time
	// The body's top-level fields, or the body itself when they were not
	// needed so far (a cached version).
	fields map[string]json.RawMessage
	body   []byte
}

// top returns the previous body's top-level fields, splitting a cached body
// on first use.
func (p *previous) top() map[string]json.RawMessage {
	if p.fields == nil && p.exists {
		p.fields = topLevel(p.body)
	}
	return p.fields
}

// changed names the fields next changes from the previous version.
func (p *previous) changed(next []byte) []string {
	if !p.exists {
		return nil
	}
	return diffFields(p.top(), topLevel(next))
}

// trackStatus sets the object's status_updated_at to when its status last
// changed: kept from the previous version while the status stays, else the
// vendor's time of the change (a changelog), else the version that brought
// it. A new object keeps what the mapping knew (the vendor's own status
// change date), else gets its version's time.
func trackStatus(rec *itsm.Record, prev *previous) {
	obj := rec.Object
	if obj == nil {
		return
	}
	at := obj.StatusTime()
	if !prev.exists {
		if *at == nil {
			v := rec.Version.UTC()
			*at = &v
		}
		return
	}
	fields := prev.top()
	var old string
	if raw, ok := fields["status"]; ok && json.Unmarshal(raw, &old) == nil && old == obj.StatusValue() {
		if t, ok := timeField(fields, "status_updated_at"); ok {
			*at = &t
			return
		}
	}
	v := rec.StatusChangedAt
	if v.IsZero() {
		v = rec.Version
	}
	v = v.UTC()
	*at = &v
}

// insert stores a record expected to be new without reading first (see
// novelty), and publishes its event. inserted is false, with nothing
// written, when the object is stored already.
func (n *Normalizer) insert(ctx context.Context, w write, rec itsm.Record) (res applied, inserted bool, err error) {
	trackStatus(&rec, &previous{})
	doc, createdAt, err := n.document(w, rec, time.Time{})
	if err != nil {
		return applied{}, false, err
	}
	outcome, err := n.store.Insert(ctx, doc)
	if err != nil {
		n.cache.forget(rec.Kind, rec.ID)
		return applied{}, false, fmt.Errorf("insert %s %s: %w", rec.Kind, rec.ID, err)
	}
	n.novelty.note(w.conn.ID, rec.Kind, outcome == store.Written)
	if outcome == store.NotNewer {
		return applied{}, false, nil
	}
	res, err = n.written(ctx, w, doc, createdAt, nil)
	return res, true, err
}

// write stores a record that is newer than what the caller saw, and
// publishes its event. A version that changes nothing of the object is
// stored (the version guard must know it) without an event, and without
// moving the object's updated_at.
func (n *Normalizer) write(ctx context.Context, w write, rec itsm.Record, prev previous) (applied, error) {
	trackStatus(&rec, &prev)
	doc, createdAt, err := n.document(w, rec, prev.createdAt)
	if err != nil {
		return applied{}, err
	}
	var changed []string
	if prev.exists {
		changed = prev.changed(doc.Body)
		if len(changed) == 0 && !doc.Deleted {
			return n.writeSilently(ctx, w, rec, &prev, doc, createdAt)
		}
	}
	outcome, err := n.store.Put(ctx, doc)
	if err != nil {
		n.cache.forget(rec.Kind, rec.ID)
		return applied{}, fmt.Errorf("write %s %s: %w", rec.Kind, rec.ID, err)
	}
	if outcome == store.NotNewer {
		// Another process wrote an equal or newer version meanwhile, which
		// also means a cached entry is behind.
		n.cache.forget(rec.Kind, rec.ID)
		return applied{}, n.markSeen(ctx, w, rec)
	}
	if !prev.exists {
		changed = nil
	} else if changed == nil {
		changed = []string{}
	}
	return n.written(ctx, w, doc, createdAt, changed)
}

// writeSilently stores a newer version whose object is the previous one's,
// keeping the previous updated_at so that nothing looks changed to readers
// either, and publishes nothing.
func (n *Normalizer) writeSilently(ctx context.Context, w write, rec itsm.Record, prev *previous, doc *store.Document, createdAt time.Time) (applied, error) {
	if updatedAt, ok := timeField(prev.top(), "updated_at"); ok {
		again, err := document(w.conn, rec, createdAt, updatedAt)
		if err != nil {
			return applied{}, err
		}
		again.SyncID = doc.SyncID
		doc = again
	}
	outcome, err := n.store.Put(ctx, doc)
	if err != nil {
		n.cache.forget(rec.Kind, rec.ID)
		return applied{}, fmt.Errorf("write %s %s: %w", rec.Kind, rec.ID, err)
	}
	if outcome == store.NotNewer {
		n.cache.forget(rec.Kind, rec.ID)
		return applied{}, n.markSeen(ctx, w, rec)
	}
	n.cache.put(doc, createdAt)
	n.m.silent.Inc()
	return applied{}, nil
}

// document renders a record for the store as of now; createdAt is the
// stored version's, zero for a new object, which is created now. It returns
// the document's createdAt.
func (n *Normalizer) document(w write, rec itsm.Record, createdAt time.Time) (*store.Document, time.Time, error) {
	now := n.cfg.Now().UTC()
	if createdAt.IsZero() {
		createdAt = now
	}
	doc, err := document(w.conn, rec, createdAt, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	doc.SyncID = w.syncID
	return doc, createdAt, nil
}

// written publishes the event of a document just stored, and caches it with
// its createdAt. changed is nil for a new object.
func (n *Normalizer) written(ctx context.Context, w write, doc *store.Document, createdAt time.Time, changed []string) (applied, error) {
	change := itsm.ChangeUpdated
	switch {
	case doc.Deleted:
		change = itsm.ChangeDeleted
	case changed == nil:
		change = itsm.ChangeCreated
	}
	if err := n.publish(ctx, w.conn, doc, change, changed); err != nil {
		// Written but not published: the redelivery reads the store.
		n.cache.forget(doc.Kind, doc.ID)
		return applied{}, err
	}
	n.cache.put(doc, createdAt)
	res := applied{written: true}
	if doc.Deleted && doc.Kind == itsm.KindTicket {
		res.cascade = doc
	}
	return res, nil
}

// notNewer handles a record whose version is already stored or superseded.
func (n *Normalizer) notNewer(ctx context.Context, w write, rec itsm.Record, prev *store.Document, version int64) (applied, error) {
	if err := n.markSeen(ctx, w, rec); err != nil {
		return applied{}, err
	}
	if !w.redelivered || prev.Version != version {
		return applied{}, nil
	}
	if err := n.republish(ctx, w.conn, prev); err != nil {
		return applied{}, err
	}
	if prev.Deleted && prev.Kind == itsm.KindTicket {
		// The earlier attempt may also have died half-way through the cascade.
		return applied{cascade: prev}, nil
	}
	return applied{}, nil
}

// markSeen records that a full sync saw an object it brought no newer
// version of, so that the sync's reconcile keeps it.
func (n *Normalizer) markSeen(ctx context.Context, w write, rec itsm.Record) error {
	if w.syncID == "" {
		return nil
	}
	if err := n.store.MarkSeen(ctx, w.conn.OrganizationID, rec.Kind, rec.ID, w.syncID); err != nil {
		return fmt.Errorf("mark %s %s seen: %w", rec.Kind, rec.ID, err)
	}
	return nil
}

// orphanCheck turns a comment or attachment of an already deleted ticket into
// a tombstone, as the ticket's cascade would have made it: a comment delivered
// after its issue's deletion (out of order, or a late retry) must not come
// back to life.
func (n *Normalizer) orphanCheck(ctx context.Context, w write, rec *itsm.Record) error {
	parent, err := n.deletedParentErr(ctx, w, *rec)
	if err != nil || parent == nil {
		return err
	}
	rec.Deleted = true
	rec.Version = time.UnixMilli(parent.Version).UTC()
	rec.Object.Retire(ReasonTicketDeleted)
	return nil
}

// deletedParentErr returns the ticket of a live comment or attachment record
// when that ticket is a tombstone at least as new as the record.
func (n *Normalizer) deletedParentErr(ctx context.Context, w write, rec itsm.Record) (*store.Document, error) {
	if rec.Deleted || rec.Object == nil {
		return nil, nil
	}
	ticketID := rec.Object.Index().TicketID // a comment's or attachment's
	if ticketID == "" {
		return nil, nil
	}
	if c := n.cache.get(itsm.KindTicket, ticketID); c != nil && !c.deleted {
		// The cache holds this process's last write of the ticket, and with
		// a cache this process is the ticket's only writer. Its tombstone
		// is cached before the cascade lists the children, so a child that
		// saw it live here was written before that list and is found by it.
		// Two store reads per comment were most of a full sync's reads.
		return nil, nil
	}
	parent, err := n.store.Get(ctx, w.conn.OrganizationID, itsm.KindTicket, ticketID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ticket %s of %s %s: %w", ticketID, rec.Kind, rec.ID, err)
	}
	if !parent.Deleted || parent.Version < rec.Version.UnixMilli() {
		return nil, nil
	}
	return parent, nil
}

func timeField(m map[string]json.RawMessage, key string) (time.Time, bool) {
	var t time.Time
	if raw, ok := m[key]; !ok || json.Unmarshal(raw, &t) != nil || t.IsZero() {
		return time.Time{}, false
	}
	return t, true
}

// republish publishes the event of a stored version again, for a redelivered
// message whose first attempt may have died between write and publish. The
// previous body is gone, so the changed fields are unknown; the change kind
// is read from the platform's timestamps (equal on the first write).
func (n *Normalizer) republish(ctx context.Context, conn *store.Connection, doc *store.Document) error {
	change := itsm.ChangeUpdated
	if doc.Deleted {
		change = itsm.ChangeDeleted
	} else {
		f := topLevel(doc.Body)
		c, ok1 := timeField(f, "created_at")
		u, ok2 := timeField(f, "updated_at")
		if ok1 && ok2 && c.Equal(u) {
			change = itsm.ChangeCreated
		}
	}
	return n.publish(ctx, conn, doc, change, nil)
}

func (n *Normalizer) publish(ctx context.Context, conn *store.Connection, doc *store.Document, change itsm.Change, changed []string) error {
	data, err := encodeEvent(doc, change, changed)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(doc.Kind.Subject())
	msg.Data = data
	msg.Header.Set(itsm.HeaderOrganization, doc.OrganizationID)
	msg.Header.Set(itsm.HeaderConnection, doc.ConnectionID)
	msg.Header.Set(itsm.HeaderVendor, conn.Vendor)
	msg.Header.Set(itsm.HeaderObject, string(doc.Kind))
	msg.Header.Set(itsm.HeaderVersion, strconv.FormatInt(doc.Version, 10))
	if at, ok := ctx.Value(receivedAtKey{}).(string); ok {
		msg.Header.Set(itsm.HeaderReceivedAt, at)
	}
	if _, err := n.eventJS(ctx).PublishMsg(ctx, msg, jetstream.WithMsgID(itsm.EventMsgID(doc.ID, doc.Version)),
		jetstream.WithExpectStream(broker.StreamITSM)); err != nil {
		return fmt.Errorf("publish %s event: %w", doc.Kind, err)
	}
	n.m.events.WithLabelValues(string(doc.Kind), string(change)).Inc()
	return nil
}

// document renders a record as a store document with its filterable
// projections.
func document(conn *store.Connection, rec itsm.Record, createdAt, updatedAt time.Time) (*store.Document, error) {
	d := &store.Document{
		Kind: rec.Kind, ID: rec.ID, OrganizationID: conn.OrganizationID, ConnectionID: conn.ID,
		Version: rec.Version.UnixMilli(), Deleted: rec.Deleted, UpdatedAt: updatedAt,
	}
	if rec.Object == nil {
		return nil, fmt.Errorf("record %s %s: no object", rec.Kind, rec.ID)
	}
	rec.Object.Stamp(createdAt, updatedAt)
	ix := rec.Object.Index()
	d.Identifier, d.Status, d.Priority, d.Name = ix.Identifier, ix.Status, ix.Priority, ix.Name
	d.ProjectID, d.AssignedUserID, d.TicketID = ix.ProjectID, ix.AssignedUserID, ix.TicketID
	body, err := json.Marshal(rec.Object)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", rec.Kind, rec.ID, err)
	}
	d.Body = body
	return d, nil
}

// encodeEvent writes the itsm.Event JSON of a change. It is the encoding of
// json.Marshal(itsm.Event{...}) (a test holds them equal), written by hand so
// that the object's body, which the normalizer produced with json.Marshal or
// stored that way, is copied rather than re-validated and re-compacted: on
// the hot path that was a full pass over every body.
func encodeEvent(doc *store.Document, change itsm.Change, changed []string) ([]byte, error) {
	probe := itsm.Event{Object: doc.Kind}
	if err := probe.SetData(doc.Body); err != nil {
		return nil, err
	}
	if changed == nil {
		changed = []string{}
	}
	head, err := json.Marshal(struct {
		Object         itsm.Kind   `json:"object"`
		Change         itsm.Change `json:"change"`
		ChangedFields  []string    `json:"changed_fields"`
		Version        string      `json:"version"`
		OrganizationID string      `json:"organization_id"`
		ConnectionID   string      `json:"connection_id"`
	}{doc.Kind, change, changed, strconv.FormatInt(doc.Version, 10), doc.OrganizationID, doc.ConnectionID})
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if len(doc.Body) == 0 {
		return nil, fmt.Errorf("encode event: %s %s without body", doc.Kind, doc.ID)
	}
	out := make([]byte, 0, len(head)+len(doc.Kind)+len(doc.Body)+8)
	out = append(out, head[:len(head)-1]...)
	out = append(out, `,"`...)
	out = append(out, doc.Kind...)
	out = append(out, `":`...)
	out = append(out, doc.Body...)
	return append(out, '}'), nil
}

// changedFields names the top-level fields whose values differ, ignoring the
// platform's own timestamps.
func changedFields(prev, next json.RawMessage) []string {
	return diffFields(topLevel(prev), topLevel(next))
}

func diffFields(a, b map[string]json.RawMessage) []string {
	if a == nil || b == nil {
		return nil
	}
	var out []string
	for k, v := range b {
		if k == "updated_at" || k == "created_at" {
			continue
		}
		if old, ok := a[k]; !ok || !bytes.Equal(old, v) {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// receivedAtKey carries the RAW message's Itsm-Received-At down to the
// events it causes; request-scoped metadata, hence the context.
type receivedAtKey struct{}
