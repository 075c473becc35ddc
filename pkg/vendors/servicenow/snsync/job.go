package snsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
)

// inChunk bounds the values of one IN condition, which go in the URL.
const inChunk = 100

// job is one run of a sync.
type job struct {
	c     *snclient.Client
	run   connector.SyncRun
	full  bool
	since time.Time
	// authors caches user_name → sys_id ("" for a name with no user).
	authors map[string]string
	// lost are task tables this run could not read.
	lost map[string]bool
	// estimate sums the tickets of the tables started so far.
	estimate int
}

// unreadable reports whether err says the account may not read a table:
// 403 (role, ACL), 404 (ACL) or 400 (a table the instance does not have).
func unreadable(err error) bool {
	var ae *snclient.APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest)
}

// scan runs a keyset scan of a phase and checkpoints after every page.
func (j *job) scan(ctx context.Context, p phase, from snclient.Cursor, s snclient.Scan, fn func(snclient.Page) error) error {
	s.From = from
	if s.Since.IsZero() {
		s.Since = j.since
	}
	return j.c.Scan(ctx, s, func(pg snclient.Page) error {
		if err := fn(pg); err != nil {
			return err
		}
		if err := j.run.Checkpoint(ctx, p.name, pg.Cursor); err != nil {
			return fmt.Errorf("servicenow sync: checkpoint %s: %w", p.name, err)
		}
		return nil
	})
}

// kindOf is the kind of a record type.
var kindOf = map[string]itsm.Kind{raw.TypeTicket: itsm.KindTicket, raw.TypeComment: itsm.KindComment,
	raw.TypeAttachment: itsm.KindAttachment, raw.TypeUser: itsm.KindUser, raw.TypeGroup: itsm.KindGroup}

func (j *job) publish(ctx context.Context, typ, parent string, row jsontext.Value, r servicenow.Row, version string) error {
	if r.Str("sys_id") == "" {
		// Unmappable, and unseen: nothing of its kind may be tombstoned
		// on the strength of this sync.
		j.run.Failed(1)
		if k, ok := kindOf[typ]; ok {
			j.run.Incomplete("a "+typ+" record without sys_id", k)
		}
		return nil
	}
	if version == "" {
		version = servicenow.VersionString(r)
	}
	return j.run.Publish(ctx, connector.Record{Type: typ, ParentID: parent, Body: row, VendorID: r.Str("sys_id"), Version: version})
}

func (j *job) users(ctx context.Context, p phase, from snclient.Cursor) error {
	err := j.scan(ctx, p, from, snclient.Scan{Table: "sys_user"}, func(pg snclient.Page) error {
		for _, row := range pg.Rows {
			r, err := servicenow.DecodeRow(row)
			if err != nil {
				return err
			}
			if n := r.Str("user_name"); n != "" {
				j.authors[n] = r.Str("sys_id")
			}
			if err := j.publish(ctx, raw.TypeUser, "", row, r, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if unreadable(err) {
		j.run.Incomplete("sys_user is not readable: "+err.Error(), itsm.KindUser)
		return nil
	}
	return err
}

func (j *job) groups(ctx context.Context, p phase, from snclient.Cursor) error {
	done := map[string]bool{}
	err := j.scan(ctx, p, from, snclient.Scan{Table: "sys_user_group"}, func(pg snclient.Page) error {
		return j.publishGroups(ctx, pg.Rows, done)
	})
	if err == nil && !j.full {
		// Membership changes leave the group's sys_updated_on as it was:
		// the groups of changed memberships are read again.
		err = j.changedMemberships(ctx, done)
	}
	if unreadable(err) {
		j.run.Incomplete("sys_user_group or sys_user_grmember is not readable: "+err.Error(), itsm.KindGroup)
		return nil
	}
	return err
}

func (j *job) publishGroups(ctx context.Context, rows []jsontext.Value, done map[string]bool) error {
	annotated, err := j.withMembers(ctx, rows)
	if err != nil {
		return err
	}
	for _, row := range annotated {
		r, err := servicenow.DecodeRow(row)
		if err != nil {
			return err
		}
		done[r.Str("sys_id")] = true
		members, _ := r.Strings(servicenow.AnnotMembers)
		// The version names the members: the same group with other members
		// is another version for RAW's dedupe.
		h := sha256.Sum256([]byte(strings.Join(members, ",")))
		if err := j.publish(ctx, raw.TypeGroup, "", row, r, servicenow.VersionString(r)+"#m"+hex.EncodeToString(h[:6])); err != nil {
			return err
		}
	}
	return nil
}

func (j *job) changedMemberships(ctx context.Context, done map[string]bool) error {
	var groups []string
	err := j.c.Scan(ctx, snclient.Scan{Table: "sys_user_grmember", Since: j.since, Fields: []string{"group"}}, func(pg snclient.Page) error {
		for _, row := range pg.Rows {
			r, err := servicenow.DecodeRow(row)
			if err != nil {
				return err
			}
			if g := r.Str("group"); g != "" && !done[g] && !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return j.each(ctx, "sys_user_group", "sys_id", groups, nil, func(rows []jsontext.Value) error {
		return j.publishGroups(ctx, rows, done)
	})
}

// each reads the rows of table whose field is one of values, in chunks.
func (j *job) each(ctx context.Context, table, field string, values, fields []string, fn func([]jsontext.Value) error) error {
	for chunk := range slices.Chunk(values, inChunk) {
		in, err := snclient.In(field, chunk)
		if err != nil {
			return err
		}
		err = j.c.Scan(ctx, snclient.Scan{Table: table, Filter: in, Fields: fields}, func(pg snclient.Page) error {
			return fn(pg.Rows)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// withMembers annotates group rows with their members' sys_ids.
func (j *job) withMembers(ctx context.Context, rows []jsontext.Value) ([]jsontext.Value, error) {
	ids := make([]string, 0, len(rows))
	for _, row := range rows {
		r, err := servicenow.DecodeRow(row)
		if err != nil {
			return nil, err
		}
		ids = append(ids, r.Str("sys_id"))
	}
	members := map[string][]string{}
	err := j.each(ctx, "sys_user_grmember", "group", ids, []string{"group", "user"}, func(ms []jsontext.Value) error {
		for _, m := range ms {
			r, err := servicenow.DecodeRow(m)
			if err != nil {
				return err
			}
			if g, u := r.Str("group"), r.Str("user"); g != "" && u != "" {
				members[g] = append(members[g], u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]jsontext.Value, len(rows))
	for i, row := range rows {
		ms := members[ids[i]]
		slices.Sort(ms)
		if ms == nil {
			ms = []string{}
		}
		out[i] = annotate(row, servicenow.AnnotMembers, slices.Compact(ms))
	}
	return out, nil
}

// annotate adds one member to a compact JSON object.
func annotate(row jsontext.Value, key string, v any) jsontext.Value {
	b, _ := json.Marshal(v)
	out := make([]byte, 0, len(row)+len(key)+len(b)+4)
	out = append(out, row[:len(row)-1]...)
	if len(row) > 2 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, key...)
	out = append(out, `":`...)
	out = append(out, b...)
	return append(out, '}')
}

func (j *job) tickets(ctx context.Context, p phase, from snclient.Cursor) error {
	estimated := false
	err := j.scan(ctx, p, from, snclient.Scan{Table: p.table}, func(pg snclient.Page) error {
		if !estimated && from == (snclient.Cursor{}) && pg.Total > 0 {
			// X-Total-Count of the first page's query is the table's count
			// (or what changed since the watermark), before ACLs.
			j.estimate += pg.Total
			j.run.Progress(connector.Progress{Estimate: j.estimate})
			estimated = true
		}
		rows, err := j.withTags(ctx, p.table, pg.Rows)
		if err != nil {
			return err
		}
		for _, row := range rows {
			r, err := servicenow.DecodeRow(row)
			if err != nil {
				return err
			}
			if err := j.publish(ctx, raw.TypeTicket, "", row, r, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if unreadable(err) {
		if j.lost == nil {
			j.lost = map[string]bool{}
		}
		j.lost[p.table] = true
		// Records of the table are no longer visible to this account, not
		// deleted: nothing of these kinds is tombstoned by this sync.
		j.run.Incomplete(fmt.Sprintf("table %s is not readable: %v", p.table, err), itsm.KindTicket, itsm.KindComment, itsm.KindAttachment)
		j.run.Progress(connector.Progress{Lost: []string{p.table}})
		return nil
	}
	return err
}

// withTags annotates task rows with their tags (label_entry).
func (j *job) withTags(ctx context.Context, table string, rows []jsontext.Value) ([]jsontext.Value, error) {
	ids := make([]string, 0, len(rows))
	for _, row := range rows {
		r, err := servicenow.DecodeRow(row)
		if err != nil {
			return nil, err
		}
		ids = append(ids, r.Str("sys_id"))
	}
	tags := map[string][]string{}
	for chunk := range slices.Chunk(ids, inChunk) {
		in, err := snclient.In("table_key", chunk)
		if err != nil {
			return nil, err
		}
		err = j.c.Scan(ctx, snclient.Scan{Table: "label_entry", Filter: "table=" + table + "^" + in,
			Fields: []string{"table_key", "label.name", "title"}}, func(pg snclient.Page) error {
			for _, row := range pg.Rows {
				r, err := servicenow.DecodeRow(row)
				if err != nil {
					return err
				}
				name := r.Str("label.name")
				if name == "" {
					name = r.Str("title")
				}
				if k := r.Str("table_key"); k != "" && name != "" {
					tags[k] = append(tags[k], name)
				}
			}
			return nil
		})
		if unreadable(err) {
			// An account that may not read tags syncs tickets without.
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]jsontext.Value, len(rows))
	for i, row := range rows {
		// Always annotated, also with no tags: the sync's copy is the one
		// that knows the tags (servicenow's versions).
		ts := tags[ids[i]]
		slices.Sort(ts)
		if ts == nil {
			ts = []string{}
		}
		out[i] = annotate(row, servicenow.AnnotTags, slices.Compact(ts))
	}
	return out, nil
}

// withAuthors annotates rows with the sys_id of their sys_created_by.
func (j *job) withAuthors(ctx context.Context, rows []jsontext.Value) ([]jsontext.Value, []servicenow.Row, error) {
	decoded := make([]servicenow.Row, len(rows))
	var missing []string
	for i, row := range rows {
		r, err := servicenow.DecodeRow(row)
		if err != nil {
			return nil, nil, err
		}
		decoded[i] = r
		if n := r.Str("sys_created_by"); n != "" && !slices.Contains(missing, n) {
			if _, ok := j.authors[n]; !ok && !strings.ContainsAny(n, ",^") {
				missing = append(missing, n)
			}
		}
	}
	if len(missing) > 0 {
		for _, n := range missing {
			j.authors[n] = ""
		}
		err := j.each(ctx, "sys_user", "user_name", missing, []string{"user_name"}, func(us []jsontext.Value) error {
			for _, u := range us {
				r, err := servicenow.DecodeRow(u)
				if err != nil {
					return err
				}
				j.authors[r.Str("user_name")] = r.Str("sys_id")
			}
			return nil
		})
		if err != nil && !unreadable(err) {
			return nil, nil, err
		}
	}
	out := make([]jsontext.Value, len(rows))
	for i, row := range rows {
		out[i] = row
		if id := j.authors[decoded[i].Str("sys_created_by")]; id != "" {
			out[i] = annotate(row, servicenow.AnnotAuthor, id)
		}
	}
	return out, decoded, nil
}

// child is a table of records that belong to a task (journal entries,
// attachments): how to scan it and what its records are.
type child struct {
	scan       func(table string) snclient.Scan
	typ        string // the RAW record type
	parent     string // the column naming the task's sys_id
	unreadable string // why its kind is left out of the reconcile, when it is
	kind       itsm.Kind
}

var (
	journal = child{typ: raw.TypeComment, parent: "element_id", unreadable: "sys_journal_field is not readable", kind: itsm.KindComment,
		scan: func(table string) snclient.Scan {
			return snclient.Scan{Table: "sys_journal_field", Key: "sys_created_on", Filter: "name=" + table + "^elementINcomments,work_notes"}
		}}
	attachments = child{typ: raw.TypeAttachment, parent: "table_sys_id", unreadable: "attachments are not readable", kind: itsm.KindAttachment,
		scan: func(table string) snclient.Scan {
			return snclient.Scan{Table: "sys_attachment", Filter: "table_name=" + table}
		}}
)

func (j *job) comments(ctx context.Context, p phase, from snclient.Cursor) error {
	return j.children(ctx, p, from, journal)
}

func (j *job) attachments(ctx context.Context, p phase, from snclient.Cursor) error {
	return j.children(ctx, p, from, attachments)
}

// children publishes the records of c that belong to p's table, with their
// authors; an unreadable table keeps c's kind out of the reconcile.
func (j *job) children(ctx context.Context, p phase, from snclient.Cursor, c child) error {
	if j.lost[p.table] {
		return nil
	}
	err := j.scan(ctx, p, from, c.scan(p.table), func(pg snclient.Page) error {
		rows, decoded, err := j.withAuthors(ctx, pg.Rows)
		if err != nil {
			return err
		}
		for i, row := range rows {
			if err := j.publish(ctx, c.typ, decoded[i].Str(c.parent), row, decoded[i], ""); err != nil {
				return err
			}
		}
		return nil
	})
	if unreadable(err) {
		j.run.Incomplete(c.unreadable+": "+err.Error(), c.kind)
		return nil
	}
	return err
}

// deletionCarry is what a full sync carries to the next: since when the
// delete log is still to be read.
type deletionCarry struct {
	Since time.Time `json:"since"`
}

func (j *job) deletions(ctx context.Context, p phase, from snclient.Cursor) error {
	since := j.since
	started := j.run.Now().UTC()
	if j.full {
		var c deletionCarry
		if err := j.run.Carried(&c); err != nil {
			return fmt.Errorf("servicenow sync: carried state: %w", err)
		}
		// The first full sync's reconcile stands for the log's past.
		j.run.Carry(deletionCarry{Since: started})
		if c.Since.IsZero() {
			return nil
		}
		since = c.Since
	}
	tables := append(Tables(j.run.Conn()), "sys_journal_field", "sys_attachment", "sys_user", "sys_user_group")
	in, err := snclient.In("tablename", tables)
	if err != nil {
		return err
	}
	err = j.scan(ctx, p, from, snclient.Scan{Table: "sys_audit_delete", Key: "sys_created_on", Filter: in, Since: since}, func(pg snclient.Page) error {
		for _, row := range pg.Rows {
			r, err := servicenow.DecodeRow(row)
			if err != nil {
				return err
			}
			if err := j.publish(ctx, raw.TypeDeletion, "", row, r, r.Str("sys_created_on")); err != nil {
				return err
			}
		}
		return nil
	})
	if unreadable(err) {
		// Without the delete log, deletions are found by the reconcile of
		// complete full syncs, which cannot tell a record the account may
		// no longer read from a deleted one: both are tombstoned.
		j.run.Log().Debug("sys_audit_delete is not readable; deletions come from full-sync reconciliation")
		return nil
	}
	if err == nil && j.full {
		// The log was read from the last full sync's start on: every task
		// record deleted since is tombstoned by it, so one this sync did
		// not see is hidden from the account (an ACL), not deleted. Users
		// and groups keep the reconcile.
		j.run.HideUnseen(itsm.KindTicket, itsm.KindComment, itsm.KindAttachment)
	}
	return err
}
