package normalizer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/jira"
	"github.com/itsmhub/itsm/pkg/store"
)

func natsMsg(subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	return m
}

// process maps one RAW message and applies every record in it.
func (n *Normalizer) process(ctx context.Context, msg jetstream.Msg, redelivered bool) result {
	_, connID, source, err := broker.ParseRawSubject(msg.Subject())
	if err != nil {
		return permanent(err)
	}
	conn, err := n.conns.LookupConnection(ctx, connID)
	if errors.Is(err, store.ErrNotFound) {
		return permanent(fmt.Errorf("%w %s", errUnknownConnection, connID))
	}
	if err != nil {
		return result{err: fmt.Errorf("look up connection: %w", err)}
	}
	mapping := jira.Mapping{ConnectionID: conn.ID, SiteURL: conn.SiteURL, Status: conn.Options.StatusMapping, Priority: conn.Options.PriorityMapping}
	var recs []jira.Record
	switch source {
	case broker.SourceWebhook:
		recs, err = mapping.MapWebhook(msg.Data())
	case broker.SourceSync:
		recs, err = mapSync(&mapping, msg.Data())
	default:
		return permanent(fmt.Errorf("unknown raw source %q", source))
	}
	switch {
	case errors.Is(err, jira.ErrUnsupportedEvent):
		return result{result: "unsupported"}
	case err != nil:
		return permanent(err)
	}
	outcome := "unchanged"
	for _, rec := range recs {
		wrote, err := n.apply(ctx, conn, rec, redelivered)
		if err != nil {
			return result{err: err}
		}
		if wrote {
			outcome = "written"
		}
	}
	return result{result: outcome}
}

// SyncRecord is the body of a raw.<vendor>.<connection>.sync message: one
// REST record as the backfill worker fetched it, or a reconcile marker.
// It is the contract between the backfill worker and the normalizer.
type SyncRecord struct {
	// Type is the record type MapREST takes (issue, comment, project, user,
	// group, attachment), or SyncTypeReconcile.
	Type string `json:"type"`
	// IssueID is the parent issue of a comment or attachment.
	IssueID string `json:"issue_id,omitempty"`
	// ObservedAt versions records that carry no modification time, and is
	// the time of a reconcile marker's tombstones.
	ObservedAt time.Time `json:"observed_at"`
	// SyncID is set on every record of a FULL sync (never on incremental
	// ones): the normalizer records that the sync saw the object.
	SyncID string          `json:"sync_id,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`

	// Reconcile marker only: the sync that COMPLETED, when it started, and
	// the object kinds it covered completely. Objects of those kinds of the
	// connection that the sync did not see, and that nothing changed since
	// it started, are tombstoned.
	StartedAt time.Time   `json:"started_at,omitempty"`
	Kinds     []itsm.Kind `json:"kinds,omitempty"`
}

// SyncTypeReconcile marks the end of a complete full sync.
const SyncTypeReconcile = "reconcile"

func mapSync(m *jira.Mapping, body []byte) ([]jira.Record, error) {
	var sr SyncRecord
	if err := json.Unmarshal(body, &sr); err != nil {
		return nil, fmt.Errorf("%w: sync envelope: %v", jira.ErrMalformed, err)
	}
	return m.MapRESTAt(sr.Type, sr.IssueID, sr.Record, sr.ObservedAt)
}

// apply writes one record under the version guard and publishes its event.
// It reports whether the store changed.
func (n *Normalizer) apply(ctx context.Context, conn *store.Connection, rec jira.Record, redelivered bool) (bool, error) {
	version := rec.Version.UnixMilli()
	prev, err := n.store.Get(ctx, conn.OrganizationID, rec.Kind, rec.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("read %s %s: %w", rec.Kind, rec.ID, err)
	}
	if prev != nil && prev.Version >= version {
		// A redelivery means an earlier attempt may have written this very
		// version and died before publishing: publish again, and let the
		// ITSM stream's dedupe drop it if the first publish did land.
		if redelivered && prev.Version == version {
			return false, n.publish(ctx, conn, prev, changeOf(nil, prev), nil)
		}
		return false, nil
	}
	now := n.cfg.Now().UTC()
	createdAt := now
	if prev != nil {
		var stamp struct {
			CreatedAt time.Time `json:"created_at"`
		}
		if json.Unmarshal(prev.Body, &stamp) == nil && !stamp.CreatedAt.IsZero() {
			createdAt = stamp.CreatedAt
		}
	}
	doc, err := document(conn, rec, createdAt, now)
	if err != nil {
		return false, err
	}
	outcome, err := n.store.Put(ctx, doc)
	if err != nil {
		return false, fmt.Errorf("write %s %s: %w", rec.Kind, rec.ID, err)
	}
	if outcome == store.NotNewer {
		return false, nil // another replica wrote a newer version meanwhile
	}
	var changed []string
	if prev != nil {
		changed = changedFields(prev.Body, doc.Body)
	}
	return true, n.publish(ctx, conn, doc, changeOf(prev, doc), changed)
}

func changeOf(prev, doc *store.Document) itsm.Change {
	switch {
	case doc.Deleted:
		return itsm.ChangeDeleted
	case prev == nil:
		return itsm.ChangeCreated
	}
	return itsm.ChangeUpdated
}

func (n *Normalizer) publish(ctx context.Context, conn *store.Connection, doc *store.Document, change itsm.Change, changed []string) error {
	ev := itsm.Event{
		Object: doc.Kind, Change: change, ChangedFields: changed,
		Version: fmt.Sprint(doc.Version), OrganizationID: doc.OrganizationID, ConnectionID: doc.ConnectionID,
	}
	if ev.ChangedFields == nil {
		ev.ChangedFields = []string{}
	}
	if err := ev.SetData(doc.Body); err != nil {
		return err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	msg := natsMsg(doc.Kind.Subject(), data)
	msg.Header.Set(itsm.HeaderOrganization, doc.OrganizationID)
	msg.Header.Set(itsm.HeaderConnection, doc.ConnectionID)
	msg.Header.Set(itsm.HeaderVendor, conn.Vendor)
	msg.Header.Set(itsm.HeaderObject, string(doc.Kind))
	msg.Header.Set(itsm.HeaderVersion, ev.Version)
	if _, err := n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(itsm.EventMsgID(doc.ID, doc.Version)),
		jetstream.WithExpectStream(broker.StreamITSM)); err != nil {
		return fmt.Errorf("publish %s event: %w", doc.Kind, err)
	}
	n.m.events.WithLabelValues(string(doc.Kind), string(change)).Inc()
	return nil
}

// document renders a record as a store document with its filterable
// projections.
func document(conn *store.Connection, rec jira.Record, createdAt, updatedAt time.Time) (*store.Document, error) {
	d := &store.Document{
		Kind: rec.Kind, ID: rec.ID, OrganizationID: conn.OrganizationID, ConnectionID: conn.ID,
		Version: rec.Version.UnixMilli(), Deleted: rec.Deleted, UpdatedAt: updatedAt,
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch o := rec.Object.(type) {
	case *itsm.Ticket:
		o.CreatedAt, o.UpdatedAt = createdAt, updatedAt
		d.Identifier, d.Status, d.Priority = o.Identifier, string(o.Status), string(o.Priority)
		d.ProjectID, d.AssignedUserID = deref(o.ProjectID), deref(o.AssignedUserID)
	case *itsm.Project:
		o.CreatedAt, o.UpdatedAt = createdAt, updatedAt
		d.Identifier = o.Identifier
	case *itsm.Comment:
		o.CreatedAt, o.UpdatedAt = createdAt, updatedAt
		d.TicketID = o.TicketID
	case *itsm.Attachment:
		o.CreatedAt, o.UpdatedAt = createdAt, updatedAt
		d.TicketID = o.TicketID
	case *itsm.User:
		o.CreatedAt, o.UpdatedAt = createdAt, updatedAt
		d.Status = string(o.Status)
	case *itsm.Group:
		o.CreatedAt, o.UpdatedAt = createdAt, updatedAt
	default:
		return nil, fmt.Errorf("record %s %s: unexpected object type %T", rec.Kind, rec.ID, rec.Object)
	}
	body, err := json.Marshal(rec.Object)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", rec.Kind, rec.ID, err)
	}
	d.Body = body
	return d, nil
}

// changedFields names the top-level fields whose values differ, ignoring the
// platform's own timestamps.
func changedFields(prev, next json.RawMessage) []string {
	var a, b map[string]json.RawMessage
	if json.Unmarshal(prev, &a) != nil || json.Unmarshal(next, &b) != nil {
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
