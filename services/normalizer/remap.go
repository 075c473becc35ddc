package normalizer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// remapLoop re-maps the stored tickets of connections whose mapping changed
// (a custom mapping, the site's priority order) and upgrades objects stored
// in an older shape of the model (itsm.ModelVersion), until ctx ends. Each
// object that changes gets a version one millisecond past its stored one,
// so that its event has an id of its own; an object whose values stay is
// left alone, and a shape-only upgrade is stored without an event.
func (n *Normalizer) remapLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.RemapEvery)
	defer t.Stop()
	for {
		if err := n.remapDue(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("re-mapping stored objects", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// remapDue re-maps every connection that needs it.
func (n *Normalizer) remapDue(ctx context.Context) error {
	conns, err := n.store.FindConnections(ctx, store.ConnectionQuery{})
	if err != nil {
		return fmt.Errorf("list connections: %w", err)
	}
	now := n.cfg.Now()
	for _, c := range conns {
		if c.State == store.StateDeleted || !c.Detail.RemapDue(itsm.ModelVersion) {
			continue
		}
		// Records mapped with the previous mapping may still be in flight
		// from a cached connection: wait until every cache has the change.
		if now.Sub(c.UpdatedAt) < n.cfg.ConnectionTTL {
			continue
		}
		err := n.remap(ctx, c)
		if errors.Is(err, errUnknownVendor) {
			// Not this process's vendor: the other connections still get
			// re-mapped.
			n.log.Warn("stored objects not re-mapped", zap.String("organization_id", c.OrganizationID),
				zap.String("connection_id", c.ID), zap.Error(err))
			continue
		}
		if err != nil {
			return fmt.Errorf("connection %s: %w", c.ID, err)
		}
	}
	return nil
}

// remap re-maps and upgrades one connection's stored objects, then records
// that it did.
func (n *Normalizer) remap(ctx context.Context, conn *store.Connection) error {
	rev, started := conn.Detail.MappingRevision, n.cfg.Now().UTC()
	mapper, ok := n.cfg.Mappers[broker.VendorToken(conn.Vendor)]
	if !ok {
		return fmt.Errorf("%w %q", errUnknownVendor, broker.VendorToken(conn.Vendor))
	}
	changed := 0
	kinds := itsm.Kinds
	if conn.Detail.ModelVersion >= itsm.ModelVersion {
		// Only the shape upgrade touches the other kinds; a mapping
		// changes tickets' values alone.
		kinds = []itsm.Kind{itsm.KindTicket}
	}
	for _, kind := range kinds {
		f := store.Filter{OrganizationID: conn.OrganizationID, Kind: kind, ConnectionID: conn.ID,
			UpdatedBefore: started.Add(time.Nanosecond), Limit: store.MaxLimit}
		for {
			page, err := n.store.List(ctx, f)
			if err != nil {
				return fmt.Errorf("list %ss: %w", kind, err)
			}
			for _, d := range page.Docs {
				ok, err := n.remapDoc(ctx, conn, mapper, d)
				var bad *badStoredError
				if errors.As(err, &bad) {
					// One unreadable body must not hold back the rest (nor
					// be retried forever); the next vendor version
					// replaces it.
					n.log.Warn("stored object not re-mapped", zap.String("organization_id", conn.OrganizationID),
						zap.String("connection_id", conn.ID), zap.Error(err))
					continue
				}
				if err != nil {
					return err
				}
				if ok {
					changed++
				}
			}
			if page.NextCursor == "" {
				break
			}
			f.Cursor = page.NextCursor
		}
	}
	for attempt := 0; ; attempt++ {
		c, err := n.store.LookupConnection(ctx, conn.ID)
		if err != nil {
			return fmt.Errorf("read connection: %w", err)
		}
		c.Detail.RemappedRevision = max(c.Detail.RemappedRevision, rev)
		c.Detail.ModelVersion = itsm.ModelVersion
		err = n.store.UpdateConnection(ctx, c)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= 20 {
			return fmt.Errorf("record re-mapping: %w", err)
		}
	}
	n.log.Info("re-mapped stored objects", zap.String("organization_id", conn.OrganizationID),
		zap.String("connection_id", conn.ID), zap.Int64("mapping_revision", rev), zap.Int("changed", changed))
	return nil
}

// remapDoc upgrades one stored object to the current model and, for a live
// ticket, maps its vendor status and priority again. It reports whether a
// value changed (and an event was published). listed is the object as a
// page of List read it: most objects are current, and deciding that from
// the listed copy spares them the lock and a read on the store's writer.
// The stored version can only be newer than the listed one, and everything
// written since the pass began was mapped with the current mapping (the
// pass starts once every cached connection has it), so an object whose
// listed copy is current needs nothing.
func (n *Normalizer) remapDoc(ctx context.Context, conn *store.Connection, mapper Mapper, listed *store.Document) (bool, error) {
	if _, _, current, err := n.remapped(conn, mapper, listed); err != nil || current {
		return false, err
	}
	kind, id := listed.Kind, listed.ID
	unlock := n.locks.lock(id)
	defer unlock()
	cur, err := n.store.Get(ctx, conn.OrganizationID, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s %s: %w", kind, id, err)
	}
	doc, changed, current, err := n.remapped(conn, mapper, cur)
	if err != nil || current {
		return false, err
	}
	n.cache.forget(kind, id)
	outcome, err := n.store.Put(ctx, doc)
	if err != nil {
		return false, fmt.Errorf("write %s %s: %w", kind, id, err)
	}
	if outcome != store.Written || len(changed) == 0 {
		return false, nil
	}
	if err := n.publish(ctx, conn, doc, itsm.ChangeUpdated, changed); err != nil {
		return false, err
	}
	return true, nil
}

// remapped is the stored object cur upgraded and, for a live ticket,
// mapped again: the document to store one millisecond past cur's version,
// the fields whose values changed (none for a shape-only upgrade), and
// whether cur is current already (nothing to store).
func (n *Normalizer) remapped(conn *store.Connection, mapper Mapper, cur *store.Document) (doc *store.Document, changed []string, current bool, err error) {
	kind, id := cur.Kind, cur.ID
	fields := topLevel(cur.Body)
	obj, err := upgrade(kind, cur.Body, fields, cur.Version, cur.Deleted)
	if err != nil {
		return nil, nil, false, &badStoredError{fmt.Errorf("upgrade %s %s: %w", kind, id, err)}
	}
	now := n.cfg.Now().UTC()
	// The upgraded object's encoding before the mapping runs on it: the
	// values the diff compares against.
	var baseBody []byte
	if t, ok := obj.(*itsm.Ticket); ok && !cur.Deleted {
		if baseBody, err = json.Marshal(t); err != nil {
			return nil, nil, false, fmt.Errorf("encode %s %s: %w", kind, id, err)
		}
		status := t.Status
		mapper.Remap(conn, t)
		if t.Status == "BACKLOG" { // no longer a status of the model
			t.Status = itsm.StatusTodo
		}
		if t.Status != status {
			t.StatusUpdatedAt = &now
		}
		// Most tickets are current: stored in this shape and mapped the
		// same way again.
		if string(baseBody) == string(cur.Body) {
			next, err := json.Marshal(t)
			if err != nil {
				return nil, nil, false, fmt.Errorf("encode %s %s: %w", kind, id, err)
			}
			if string(next) == string(baseBody) {
				return nil, nil, true, nil
			}
		}
	}
	rec := itsm.Record{Kind: kind, ID: id, Version: time.UnixMilli(cur.Version + 1).UTC(), Deleted: cur.Deleted, Object: obj}
	createdAt, _ := timeField(fields, "created_at")
	updatedAt, ok := timeField(fields, "updated_at")
	if !ok {
		updatedAt = now
	}
	if doc, err = document(conn, rec, createdAt, updatedAt); err != nil {
		return nil, nil, false, err
	}
	if baseBody != nil {
		changed = diffFields(topLevel(baseBody), topLevel(doc.Body))
	}
	if len(changed) > 0 {
		if doc, err = document(conn, rec, createdAt, now); err != nil {
			return nil, nil, false, err
		}
		return doc, changed, false, nil
	}
	return doc, nil, string(doc.Body) == string(cur.Body), nil
}

// badStoredError: a stored body that cannot be read as its kind.
type badStoredError struct{ err error }

func (e *badStoredError) Error() string { return e.err.Error() }
func (e *badStoredError) Unwrap() error { return e.err }

// upgrade decodes a stored body of any earlier model version into the
// current object: renamed fields moved, lifecycle statuses derived from the
// active flag, and a missing status_updated_at set to the stored version's
// time. Values stay as stored (remapDoc changes those, with an event).
func upgrade(kind itsm.Kind, body []byte, fields map[string]json.RawMessage, version int64, deleted bool) (itsm.Object, error) {
	if fields == nil {
		return nil, errors.New("stored body is not a JSON object")
	}
	moved, renamed := fields, false
	rename := func(from, to string) {
		v, ok := moved[from]
		if !ok {
			return
		}
		if !renamed { // the fields are the caller's
			moved, renamed = maps.Clone(fields), true
		}
		if _, has := moved[to]; !has {
			moved[to] = v
		}
		delete(moved, from)
	}
	switch kind {
	case itsm.KindComment:
		rename("created_by_user_id", "author_id")
	case itsm.KindAttachment:
		rename("created_by_user_id", "uploaded_by_user_id")
	}
	obj, err := itsm.NewObject(kind)
	if err != nil {
		return nil, err
	}
	// A body with nothing renamed is decoded as it is.
	raw := body
	if renamed {
		if raw, err = json.Marshal(moved); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, err
	}
	var active bool
	if v, ok := moved["active"]; ok {
		_ = json.Unmarshal(v, &active)
	}
	switch o := obj.(type) {
	case *itsm.Project:
		if o.Status == "" {
			o.Status = itsm.ObjectStatusOf(active, deleted)
		}
	case *itsm.Comment:
		if o.Status == "" {
			o.Status = itsm.ObjectStatusOf(true, deleted || !active)
		}
	case *itsm.Attachment:
		if o.Status == "" {
			o.Status = itsm.ObjectStatusOf(true, deleted || !active)
		}
	case *itsm.User:
		if o.Status == "" {
			o.Status = itsm.ObjectStatusOf(active, deleted)
		}
	case *itsm.Group:
		if o.Status == "" {
			o.Status = itsm.ObjectStatusOf(true, deleted || !active)
		}
	}
	if at := obj.StatusTime(); *at == nil {
		t := time.UnixMilli(version).UTC()
		*at = &t
	}
	return obj, nil
}
