package snsim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ACLs. Table level (403 "Insufficient rights"): sys_audit_delete needs
// admin or RoleDeleteLog, sys_journal_field needs itil. Row level (rows silently removed
// from a page after sysparm_limit was applied, or 404 for one record):
// tasks of the restricted group need membership; an account without itil
// (sn_request_read for catalog tables) reads only the tasks it opened or is
// the caller / requester of; journal entries, attachments and tags follow
// their task. admin reads everything.

// RoleDeleteLog is the simulator's stand-in for an ACL that lets a
// non-admin account read sys_audit_delete (a real instance grants it by an
// ACL on the table): an account with it and itil reads the delete log
// while the restricted group's tasks stay hidden from it.
const RoleDeleteLog = "snsim_delete_log_read"

func (in *Inst) tableReadable(p *principal, table string) bool {
	switch table {
	case "sys_audit_delete":
		return p.roles["admin"] || p.roles[RoleDeleteLog]
	case "sys_journal_field":
		return p.has("itil")
	}
	return true
}

// canRead is the row-level check. Caller holds in.mu.
func (in *Inst) canRead(p *principal, table string, r *record) bool {
	if p.roles["admin"] {
		return true
	}
	t := in.d.tbl(table)
	switch table {
	case "sys_journal_field":
		return in.canReadRef(p, r.get(t.sc.col("name")), r.get(t.sc.col("element_id")))
	case "sys_attachment":
		return in.canReadRef(p, r.get(t.sc.col("table_name")), r.get(t.sc.col("table_sys_id")))
	case "label_entry":
		tn := r.get(t.sc.col("table"))
		if !isTaskTable(tn) {
			return true
		}
		return in.canReadRef(p, tn, r.get(t.sc.col("table_key")))
	}
	if !t.sc.task {
		return true
	}
	if r.get(t.sc.col("assignment_group")) == in.restricted && !p.groups[in.restricted] {
		return false
	}
	role := "itil"
	if table == "sc_req_item" || table == "sc_task" {
		if p.has("sn_request_read") {
			return true
		}
	}
	if p.has(role) {
		return true
	}
	for _, f := range []string{"opened_by", "caller_id", "requested_for"} {
		if c := t.sc.col(f); c != nil && r.get(c) == p.userID {
			return true
		}
	}
	return false
}

func (in *Inst) canReadRef(p *principal, table, sysID string) bool {
	t := in.d.tbl(table)
	if t == nil {
		return true
	}
	r := t.byID[sysID]
	if r == nil {
		return true // an orphan row: nothing to protect
	}
	return in.canRead(p, table, r)
}

func insufficientRights(w http.ResponseWriter) {
	snError(w, http.StatusForbidden, "Insufficient rights", "Insufficient rights to query records")
}

// noRecord is the fixture's 404 body (rapid7_error_404_no_record_found.json,
// one record). UNCONFIRMED: a v1 list without results may carry another
// detail; the message and shape are the same.
func noRecord(w http.ResponseWriter) {
	snError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
}

// listParams are the Table API's paging and rendering parameters.
type listParams struct {
	query, fields            string
	limit, offset            int
	mode                     dvMode
	excludeLink, noCount     bool
	suppressPaginationHeader bool
}

func parseParams(q url.Values, defLimit int) listParams {
	p := listParams{query: q.Get("sysparm_query"), fields: q.Get("sysparm_fields"), limit: defLimit}
	// Bad numbers are ignored like other bad parameters (UNCONFIRMED).
	if n, err := strconv.Atoi(q.Get("sysparm_limit")); err == nil && n > 0 {
		p.limit = n
	}
	if n, err := strconv.Atoi(q.Get("sysparm_offset")); err == nil && n > 0 {
		p.offset = n
	}
	switch strings.ToLower(q.Get("sysparm_display_value")) {
	case "true":
		p.mode = dvTrue
	case "all":
		p.mode = dvAll
	}
	p.excludeLink = q.Get("sysparm_exclude_reference_link") == "true"
	p.noCount = q.Get("sysparm_no_count") == "true"
	p.suppressPaginationHeader = q.Get("sysparm_suppress_pagination_header") == "true"
	return p
}

// handleList is GET /api/now/table/{table} (v1, v2).
func (in *Inst) handleList(w http.ResponseWriter, r *http.Request, p *principal, v2 bool) {
	name := r.PathValue("table")
	in.mu.RLock()
	t := in.d.tbl(name)
	if t == nil {
		in.mu.RUnlock()
		// UNCONFIRMED wording; the shape is the platform's error body.
		snError(w, http.StatusBadRequest, "Invalid table "+name, "")
		return
	}
	if !in.tableReadable(p, name) {
		in.mu.RUnlock()
		insufficientRights(w)
		return
	}
	lp := parseParams(r.URL.Query(), 10000)
	q := in.parseQuery(t.sc, lp.query, p.tz)
	page, total, more := in.find(t, q, lp.query+"|"+p.tz.String(), lp.offset, lp.limit, !lp.noCount)
	raw := len(page)
	rd := &renderer{in: in, mode: lp.mode, excludeLink: lp.excludeLink, fields: in.fieldsOf(t.sc, lp.fields), tz: p.tz, base: in.linkBase(r)}
	buf := in.getBuffer()
	defer in.putBuffer(buf)
	b := append((*buf)[:0], `{"result":[`...)
	n := 0
	for _, rec := range page {
		// ACLs run on the page sysparm_limit cut, so a page can be short
		// or empty while later pages still hold records.
		if !in.canRead(p, name, rec) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = rd.record(b, t.sc, rec)
		n++
	}
	b = append(b, "]}"...)
	*buf = b
	in.mu.RUnlock()

	if raw == 0 && !v2 {
		noRecord(w)
		return
	}
	h := w.Header()
	if !lp.noCount {
		h.Set("X-Total-Count", strconv.Itoa(total))
	}
	if !lp.suppressPaginationHeader {
		if link := linkHeader(r, lp, total, more); link != "" {
			h.Set("Link", link)
		}
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// linkHeader renders first/prev/next/last links against the host the
// client called, so they can be followed. Without a count (sysparm_no_count)
// last is left out.
func linkHeader(r *http.Request, lp listParams, total int, more bool) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	at := func(offset int, rel string) string {
		q := r.URL.Query()
		q.Set("sysparm_limit", strconv.Itoa(lp.limit))
		q.Set("sysparm_offset", strconv.Itoa(offset))
		return "<" + scheme + "://" + r.Host + r.URL.Path + "?" + q.Encode() + `>;rel="` + rel + `"`
	}
	links := []string{at(0, "first")}
	if lp.offset > 0 {
		links = append(links, at(max(0, lp.offset-lp.limit), "prev"))
	}
	if more {
		links = append(links, at(lp.offset+lp.limit, "next"))
	}
	if !lp.noCount && total > 0 {
		links = append(links, at((total-1)/lp.limit*lp.limit, "last"))
	}
	return strings.Join(links, ",")
}

// getBuffer returns a page buffer from the instance's pool.
func (in *Inst) getBuffer() *[]byte {
	if b, ok := in.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

// putBuffer returns a page buffer; very large ones are left to the GC.
func (in *Inst) putBuffer(b *[]byte) {
	if cap(*b) <= 16<<20 {
		in.bufs.Put(b)
	}
}

// handleGet is GET /api/now/table/{table}/{sys_id}.
func (in *Inst) handleGet(w http.ResponseWriter, r *http.Request, p *principal) {
	name := r.PathValue("table")
	in.mu.RLock()
	t := in.d.tbl(name)
	if t == nil {
		in.mu.RUnlock()
		snError(w, http.StatusBadRequest, "Invalid table "+name, "")
		return
	}
	if !in.tableReadable(p, name) {
		in.mu.RUnlock()
		insufficientRights(w)
		return
	}
	rec := t.byID[r.PathValue("sys_id")]
	if rec == nil || !in.canRead(p, name, rec) {
		in.mu.RUnlock()
		noRecord(w)
		return
	}
	lp := parseParams(r.URL.Query(), 1)
	rd := &renderer{in: in, mode: lp.mode, excludeLink: lp.excludeLink, fields: in.fieldsOf(t.sc, lp.fields), tz: p.tz, base: in.linkBase(r)}
	b := append([]byte(`{"result":`), rd.record(nil, t.sc, rec)...)
	in.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '}'))
}

// --- Attachment API ------------------------------------------------------

// linkBase is the base of rendered links for this request: "" (the
// instance URL) unless Instance.LinksFromRequest.
func (in *Inst) linkBase(r *http.Request) string {
	if !in.cfg.LinksFromRequest {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (in *Inst) downloadLink(base, sysID string) string {
	if base == "" {
		base = in.cfg.URL
	}
	return base + "/api/now/attachment/" + sysID + "/file"
}

// attachmentJSON is an attachment's metadata: its sys_attachment fields
// (display_value=false) plus download_link.
func (in *Inst) attachmentJSON(b []byte, rec *record, base string) []byte {
	rd := &renderer{in: in, base: base}
	b = rd.record(b, in.d.tbl("sys_attachment").sc, rec)
	b = append(b[:len(b)-1], `,"download_link":`...)
	return append(quote(b, in.downloadLink(base, rec.id)), '}')
}

// handleAttachments is GET /api/now/attachment: sysparm_query over
// sys_attachment (table_name, table_sys_id...), default limit 1000.
func (in *Inst) handleAttachments(w http.ResponseWriter, r *http.Request, p *principal) {
	lp := parseParams(r.URL.Query(), 1000)
	in.mu.RLock()
	t := in.d.tbl("sys_attachment")
	q := in.parseQuery(t.sc, lp.query, p.tz)
	page, total, more := in.find(t, q, lp.query+"|"+p.tz.String(), lp.offset, lp.limit, true)
	b := append(make([]byte, 0, 64+len(page)*700), `{"result":[`...)
	n := 0
	for _, rec := range page {
		if !in.canRead(p, "sys_attachment", rec) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = in.attachmentJSON(b, rec, in.linkBase(r))
		n++
	}
	in.mu.RUnlock()
	b = append(b, "]}"...)
	h := w.Header()
	h.Set("X-Total-Count", strconv.Itoa(total))
	if link := linkHeader(r, lp, total, more); link != "" {
		h.Set("Link", link)
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (in *Inst) attachmentOf(w http.ResponseWriter, r *http.Request, p *principal) *record {
	t := in.d.tbl("sys_attachment")
	rec := t.byID[r.PathValue("sys_id")]
	if rec == nil || !in.canRead(p, "sys_attachment", rec) {
		noRecord(w)
		return nil
	}
	return rec
}

// handleAttachment is GET /api/now/attachment/{sys_id} (metadata).
func (in *Inst) handleAttachment(w http.ResponseWriter, r *http.Request, p *principal) {
	in.mu.RLock()
	rec := in.attachmentOf(w, r, p)
	if rec == nil {
		in.mu.RUnlock()
		return
	}
	b := in.attachmentJSON([]byte(`{"result":`), rec, in.linkBase(r))
	in.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '}'))
}

// handleAttachmentFile is GET /api/now/attachment/{sys_id}/file: the
// content, typed by content_type without a " (.ext)" suffix.
func (in *Inst) handleAttachmentFile(w http.ResponseWriter, r *http.Request, p *principal) {
	in.mu.RLock()
	rec := in.attachmentOf(w, r, p)
	if rec == nil {
		in.mu.RUnlock()
		return
	}
	sc := in.d.tbl("sys_attachment").sc
	content, ok := in.d.attach[rec.id]
	if !ok {
		size, _ := strconv.Atoi(rec.get(sc.col("size_bytes")))
		content = genContent(rec.get(sc.col("table_sys_id")), rec.get(sc.col("file_name")), size)
	}
	ctype, _, _ := strings.Cut(rec.get(sc.col("content_type")), " (")
	meta := in.attachmentJSON(nil, rec, in.linkBase(r))
	in.mu.RUnlock()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Attachment-Metadata", string(meta))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(content)
}

// --- Table API writes ----------------------------------------------------

// canWrite: admin writes every table, itil the task tables; nobody writes
// the journal, attachments or the delete log through the Table API.
func (in *Inst) canWrite(p *principal, table string) bool {
	switch table {
	case "sys_journal_field", "sys_attachment", "sys_audit_delete":
		return false
	}
	if p.roles["admin"] {
		return true
	}
	return isTaskTable(table) && p.has("itil")
}

// writeBody reads a JSON object of field values; numbers and booleans are
// taken as their text, fields the table does not have are ignored (as the
// platform does), and comments / work_notes become journal entries.
func (in *Inst) writeBody(w http.ResponseWriter, r *http.Request, sc *schema) (Record, map[string]string, bool) {
	var raw map[string]any
	if err := decodeBody(r, &raw); err != nil {
		snError(w, http.StatusBadRequest, "Exception while reading request", "The payload is not valid JSON.")
		return nil, nil, false
	}
	fields, journal := Record{}, map[string]string{}
	for k, v := range raw {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		case nil:
		default:
			continue
		}
		c := sc.col(k)
		switch {
		case c == nil || k == "sys_id":
		case c.kind == kJournal && k != "comments_and_work_notes":
			if s != "" {
				journal[k] = s
			}
		case c.kind != kJournal:
			fields[k] = s
		}
	}
	return fields, journal, true
}

func (in *Inst) writable(w http.ResponseWriter, r *http.Request, p *principal) *schema {
	name := r.PathValue("table")
	t := in.d.tbl(name)
	if t == nil {
		snError(w, http.StatusBadRequest, "Invalid table "+name, "")
		return nil
	}
	if !in.canWrite(p, name) {
		snError(w, http.StatusForbidden, "Operation Failed", "ACL restricts the record write")
		return nil
	}
	return t.sc
}

// respondRecord renders one record with the request's display parameters.
func (in *Inst) respondRecord(w http.ResponseWriter, r *http.Request, p *principal, sc *schema, sysID string, status int) {
	lp := parseParams(r.URL.Query(), 1)
	in.mu.RLock()
	rec := in.d.tbl(sc.name).byID[sysID]
	if rec == nil {
		in.mu.RUnlock()
		noRecord(w)
		return
	}
	rd := &renderer{in: in, mode: lp.mode, excludeLink: lp.excludeLink, fields: in.fieldsOf(sc, lp.fields), tz: p.tz, base: in.linkBase(r)}
	b := append([]byte(`{"result":`), rd.record(nil, sc, rec)...)
	in.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '}'))
}

// handleCreate is POST /api/now/table/{table}: business rules run, so
// subscribed tables push.
func (in *Inst) handleCreate(w http.ResponseWriter, r *http.Request, p *principal) {
	sc := in.writable(w, r, p)
	if sc == nil {
		return
	}
	fields, journal, ok := in.writeBody(w, r, sc)
	if !ok {
		return
	}
	rec, err := in.Insert(sc.name, fields, WriteOptions{As: p.userName})
	if err != nil {
		snError(w, http.StatusBadRequest, "Operation Failed", err.Error())
		return
	}
	for _, el := range []string{"comments", "work_notes"} {
		if v, ok := journal[el]; ok && sc.task {
			if _, err := in.AddJournal(sc.name, rec["sys_id"], el, v, WriteOptions{As: p.userName}); err != nil {
				snError(w, http.StatusBadRequest, "Operation Failed", err.Error())
				return
			}
		}
	}
	in.respondRecord(w, r, p, sc, rec["sys_id"], http.StatusCreated)
}

// handleUpdate is PUT and PATCH /api/now/table/{table}/{sys_id}.
func (in *Inst) handleUpdate(w http.ResponseWriter, r *http.Request, p *principal) {
	sc := in.writable(w, r, p)
	if sc == nil {
		return
	}
	id := r.PathValue("sys_id")
	in.mu.RLock()
	rec := in.d.tbl(sc.name).byID[id]
	visible := rec != nil && in.canRead(p, sc.name, rec)
	in.mu.RUnlock()
	if !visible {
		noRecord(w)
		return
	}
	fields, journal, ok := in.writeBody(w, r, sc)
	if !ok {
		return
	}
	if len(fields) > 0 || len(journal) == 0 {
		if _, err := in.Update(sc.name, id, fields, WriteOptions{As: p.userName}); err != nil {
			snError(w, http.StatusBadRequest, "Operation Failed", err.Error())
			return
		}
	}
	for _, el := range []string{"comments", "work_notes"} {
		if v, ok := journal[el]; ok && sc.task {
			if _, err := in.AddJournal(sc.name, id, el, v, WriteOptions{As: p.userName}); err != nil {
				snError(w, http.StatusBadRequest, "Operation Failed", err.Error())
				return
			}
		}
	}
	in.respondRecord(w, r, p, sc, id, http.StatusOK)
}

// handleDelete is DELETE /api/now/table/{table}/{sys_id}: 204, no body.
func (in *Inst) handleDelete(w http.ResponseWriter, r *http.Request, p *principal) {
	sc := in.writable(w, r, p)
	if sc == nil {
		return
	}
	id := r.PathValue("sys_id")
	in.mu.RLock()
	rec := in.d.tbl(sc.name).byID[id]
	visible := rec != nil && in.canRead(p, sc.name, rec)
	in.mu.RUnlock()
	if !visible {
		noRecord(w)
		return
	}
	if err := in.Delete(sc.name, id, WriteOptions{As: p.userName}); err != nil {
		noRecord(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
