package normalizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Vendor attributes of an object the connection's account may no longer
// read (a reconcile marker's Hidden kinds): it is kept, inactive, with its
// last known fields and status, rather than tombstoned.
const (
	// AttrVisibility is VisibilityHidden while the object is hidden.
	AttrVisibility   = "visibility"
	VisibilityHidden = "no_longer_visible"
	// AttrHiddenAt is when the platform found the object hidden.
	AttrHiddenAt = "hidden_at"
	// AttrVisibleVersion is the version the object had when it was hidden:
	// a record of it at least that new shows the account reads it again.
	AttrVisibleVersion = "visible_version"
)

// hideAll marks every document f lists "no longer visible" at version,
// keeping those keep accepts (see eachListed).
func (n *Normalizer) hideAll(ctx context.Context, msg jetstream.Msg, w write, f store.Filter, version int64, keep func(*store.Document) bool) (int, error) {
	return n.eachListed(ctx, msg, f, "mark no longer visible", keep, func(pctx context.Context, d *store.Document) (bool, error) {
		return n.hide(pctx, w, d.Kind, d.ID, version)
	})
}

// hide marks a stored object "no longer visible" at version and publishes
// its updated event. A deleted or already hidden object stays as it is (a
// redelivery publishes the event of its own earlier write again).
func (n *Normalizer) hide(ctx context.Context, w write, kind itsm.Kind, id string, version int64) (bool, error) {
	unlock := n.locks.lock(id)
	defer unlock()
	cur, err := n.store.Get(ctx, w.conn.OrganizationID, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s %s to mark no longer visible: %w", kind, id, err)
	}
	if _, hidden := hiddenSince(cur); hidden || cur.Deleted || cur.Version >= version {
		if hidden && w.redelivered && cur.Version == version {
			return false, n.republish(ctx, w.conn, cur)
		}
		return false, nil
	}
	now := n.cfg.Now().UTC()
	doc, err := hiddenDoc(cur, version, now)
	if err != nil {
		return false, err
	}
	// Not cached: a record of the object must find it hidden (applyLocked).
	n.cache.forget(kind, id)
	outcome, err := n.store.Put(ctx, doc)
	if err != nil {
		return false, fmt.Errorf("write %s %s no longer visible: %w", kind, id, err)
	}
	if outcome == store.NotNewer {
		return false, nil
	}
	if err := n.publish(ctx, w.conn, doc, itsm.ChangeUpdated, diffFields(topLevel(cur.Body), topLevel(doc.Body))); err != nil {
		return false, err
	}
	return true, nil
}

// hiddenDoc is cur at version, inactive, with its status and other fields
// as they were and the visibility attributes set; the body is edited in
// place as tombstoneDoc does.
func hiddenDoc(cur *store.Document, version int64, now time.Time) (*store.Document, error) {
	return retiredDoc(cur, version, now, "mark no longer visible", func(_, setAttr func(k string, v any)) {
		setAttr(AttrVisibility, VisibilityHidden)
		setAttr(AttrHiddenAt, now)
		setAttr(AttrVisibleVersion, cur.Version)
	})
}

// hiddenSince reports whether d is marked "no longer visible", and the
// version it had when it was hidden.
func hiddenSince(d *store.Document) (int64, bool) {
	if d == nil || !bytes.Contains(d.Body, []byte(VisibilityHidden)) {
		return 0, false
	}
	var body struct {
		Attrs struct {
			Visibility string `json:"visibility"`
			Version    int64  `json:"visible_version"`
		} `json:"vendor_attributes"`
	}
	if json.Unmarshal(d.Body, &body) != nil || body.Attrs.Visibility != VisibilityHidden {
		return 0, false
	}
	return body.Attrs.Version, true
}
