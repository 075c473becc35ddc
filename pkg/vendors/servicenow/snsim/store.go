package snsim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// numberBase starts task numbers where a fresh instance's do: INC0010001.
const numberBase = 10000

// ErrNotFound is returned by the Go API for an unknown table or record.
var ErrNotFound = errors.New("snsim: not found")

// record is one row. vals holds the schema's varying columns; extra holds
// constant columns a write changed.
type record struct {
	id    string
	vals  []string
	extra map[string]string
}

func (r *record) get(c *column) string {
	if c.slot >= 0 {
		return r.vals[c.slot]
	}
	if v, ok := r.extra[c.name]; ok {
		return v
	}
	return c.def
}

func (r *record) set(c *column, v string) {
	if c.slot >= 0 {
		r.vals[c.slot] = v
		return
	}
	if r.extra == nil {
		r.extra = map[string]string{}
	}
	r.extra[c.name] = v
}

// table holds a table's rows in insertion order (the order of a query
// without ORDERBY) and caches sorted orders until the next write.
type table struct {
	sc       *schema
	rows     []*record
	byID     map[string]*record
	nextNum  int
	version  uint64
	sorted   map[string]*sortedRows
	matches  []*matchCache  // guarded by Inst.sortMu
	prefixes []*prefixCache // guarded by Inst.sortMu
}

type sortedRows struct {
	version uint64
	rows    []*record
}

func (t *table) insert(r *record) {
	t.rows = append(t.rows, r)
	t.byID[r.id] = r
	t.version++
}

func (t *table) remove(r *record) {
	i := slices.Index(t.rows, r)
	if i >= 0 {
		t.rows = slices.Delete(t.rows, i, i+1)
	}
	delete(t.byID, r.id)
	t.version++
}

// data is an instance's tables. Callers hold Inst.mu.
type data struct {
	tables  map[string]*table
	journal map[string][]*record // element_id -> journal rows, oldest first
	attach  map[string][]byte    // attachment sys_id -> content written at runtime
}

func (d *data) tbl(name string) *table { return d.tables[name] }

// Record is a record's raw values (display_value=false; references are
// sys_ids), as the Go API reads and writes them.
type Record map[string]string

func toRecord(sc *schema, r *record) Record {
	out := make(Record, len(sc.cols))
	for _, c := range sc.cols {
		out[c.name] = r.get(c)
	}
	return out
}

// WriteOptions say who writes and whether business rules run.
type WriteOptions struct {
	// As is the user_name recorded in sys_updated_by. Default "admin".
	As string `json:"as,omitempty"`
	// SkipWorkflow is GlideRecord.setWorkflow(false): business rules do not
	// run, so no push is sent.
	SkipWorkflow bool `json:"skip_workflow,omitempty"`
	// SkipSysFields is autoSysFields(false): sys_updated_on, sys_updated_by
	// and sys_mod_count stay as they were, so an incremental sync on
	// sys_updated_on cannot see the change.
	SkipSysFields bool `json:"skip_sys_fields,omitempty"`
}

func (o WriteOptions) actor() string {
	if o.As == "" {
		return "admin"
	}
	return o.As
}

// change is one write, handed to the push machinery after the lock is
// released.
type change struct {
	table, sysID, op, updatedOn string
	rec                         Record
	skip                        bool
}

// Insert creates a record. Unset system fields are filled in (sys_id,
// number, sys_created_on/by, sys_updated_on/by, sys_mod_count "0",
// sys_class_name); task tables also get state, impact, urgency and priority
// (impact × urgency) defaults and active.
func (in *Inst) Insert(tableName string, fields Record, o WriteOptions) (Record, error) {
	in.mu.Lock()
	t := in.d.tbl(tableName)
	if t == nil {
		in.mu.Unlock()
		return nil, fmt.Errorf("%w: table %s", ErrNotFound, tableName)
	}
	r := &record{vals: make([]string, t.sc.nslots)}
	for k, v := range fields {
		c := t.sc.col(k)
		if c == nil {
			in.mu.Unlock()
			return nil, fmt.Errorf("snsim: %s has no field %q", tableName, k)
		}
		r.set(c, v)
	}
	now := fmtTime(in.sim.Now())
	setIf := func(name, v string) {
		if c := t.sc.col(name); c != nil && r.get(c) == "" {
			r.set(c, v)
		}
	}
	setIf("sys_id", in.newSysID())
	r.id = r.get(t.sc.col("sys_id"))
	if _, dup := t.byID[r.id]; dup {
		in.mu.Unlock()
		return nil, fmt.Errorf("snsim: %s %s already exists", tableName, r.id)
	}
	setIf("sys_created_on", now)
	setIf("sys_created_by", o.actor())
	setIf("sys_updated_on", now)
	setIf("sys_updated_by", o.actor())
	setIf("sys_mod_count", "0")
	if t.sc.task {
		t.nextNum++
		setIf("number", fmt.Sprintf("%s%07d", t.sc.prefix, numberBase+t.nextNum))
		setIf("task_effective_number", r.get(t.sc.col("number")))
		setIf("sys_class_name", tableName)
		setIf("opened_at", now)
		setIf("impact", "3")
		setIf("urgency", "3")
		setIf("priority", priorityOf(r.get(t.sc.col("impact")), r.get(t.sc.col("urgency"))))
		setIf("state", t.sc.col("state").choices[0].Value)
		if c := t.sc.col("incident_state"); c != nil {
			setIf("incident_state", r.get(t.sc.col("state")))
		}
		setIf("active", strconv.FormatBool(!closedState(tableName, r.get(t.sc.col("state")))))
	}
	t.insert(r)
	in.indexInsert(tableName, r)
	ch := in.changeLocked(t, r, "insert", o)
	out := toRecord(t.sc, r)
	in.mu.Unlock()
	in.sim.push.notify(in, ch)
	return out, nil
}

// Update changes fields of a record. Changing impact or urgency of a task
// recomputes priority unless priority is given too; a closing state sets
// active to false and stamps closed_at / closed_by (resolved_at / _by too
// for incidents and problems) unless the write sets them. The record gets a new sys_updated_on (the sim clock, to
// the second) and sys_mod_count + 1 unless o.SkipSysFields.
func (in *Inst) Update(tableName, sysID string, fields Record, o WriteOptions) (Record, error) {
	if tableName == "sys_journal_field" {
		return nil, errors.New("snsim: journal entries are immutable")
	}
	in.mu.Lock()
	t, r, err := in.lookup(tableName, sysID)
	if err != nil {
		in.mu.Unlock()
		return nil, err
	}
	for k := range fields {
		if t.sc.col(k) == nil {
			in.mu.Unlock()
			return nil, fmt.Errorf("snsim: %s has no field %q", tableName, k)
		}
		if k == "sys_id" && fields[k] != sysID {
			in.mu.Unlock()
			return nil, errors.New("snsim: sys_id cannot change")
		}
	}
	for k, v := range fields {
		r.set(t.sc.col(k), v)
	}
	if t.sc.task {
		_, hasPrio := fields["priority"]
		_, hasI := fields["impact"]
		_, hasU := fields["urgency"]
		if !hasPrio && (hasI || hasU) {
			r.set(t.sc.col("priority"), priorityOf(r.get(t.sc.col("impact")), r.get(t.sc.col("urgency"))))
		}
		if st, ok := fields["state"]; ok {
			if c := t.sc.col("incident_state"); c != nil {
				if _, set := fields["incident_state"]; !set {
					r.set(c, st)
				}
			}
			if _, set := fields["active"]; !set {
				r.set(t.sc.col("active"), strconv.FormatBool(!closedState(tableName, st)))
			}
			in.stampClosure(t, r, st, fields, o)
		}
	}
	in.touch(t, r, o)
	t.version++
	ch := in.changeLocked(t, r, "update", o)
	out := toRecord(t.sc, r)
	in.mu.Unlock()
	in.sim.push.notify(in, ch)
	return out, nil
}

// stampClosure fills what the platform's business rules fill when a task
// closes or resolves: closed_at / closed_by, resolved_at / resolved_by
// (incident and problem), unless the write sets them.
func (in *Inst) stampClosure(t *table, r *record, state string, fields Record, o WriteOptions) {
	now, by := fmtTime(in.sim.Now()), in.userID(o.actor())
	stamp := func(at, who string) {
		if _, set := fields[at]; !set && t.sc.col(at) != nil && r.get(t.sc.col(at)) == "" {
			r.set(t.sc.col(at), now)
			if _, set := fields[who]; !set && t.sc.col(who) != nil {
				r.set(t.sc.col(who), by)
			}
		}
	}
	resolved := map[string]string{"incident": "6", "problem": "106"}[t.sc.name]
	if closedState(t.sc.name, state) && state != resolved {
		stamp("closed_at", "closed_by")
	}
	if resolved != "" && (state == resolved || closedState(t.sc.name, state)) {
		stamp("resolved_at", "resolved_by")
	}
}

// userID is the sys_id of the user with this user_name ("" if none).
// Caller holds in.mu.
func (in *Inst) userID(userName string) string {
	t := in.d.tbl("sys_user")
	c := t.sc.col("user_name")
	for _, u := range t.rows {
		if u.get(c) == userName {
			return u.id
		}
	}
	return ""
}

// touch sets the system fields of an update.
func (in *Inst) touch(t *table, r *record, o WriteOptions) {
	if o.SkipSysFields {
		return
	}
	now := fmtTime(in.sim.Now())
	r.set(t.sc.col("sys_updated_on"), now)
	r.set(t.sc.col("sys_updated_by"), o.actor())
	n, _ := strconv.Atoi(r.get(t.sc.col("sys_mod_count")))
	r.set(t.sc.col("sys_mod_count"), strconv.Itoa(n+1))
}

// Delete removes a record. Unless the table is in Instance.NoAuditDelete, a
// sys_audit_delete row records it (tablename, documentkey = sys_id).
// Deleting a task also deletes its journal entries, attachments and tags.
func (in *Inst) Delete(tableName, sysID string, o WriteOptions) error {
	in.mu.Lock()
	t, r, err := in.lookup(tableName, sysID)
	if err != nil {
		in.mu.Unlock()
		return err
	}
	t.remove(r)
	in.indexRemove(tableName, r)
	if !slices.Contains(in.cfg.NoAuditDelete, tableName) && tableName != "sys_audit_delete" {
		in.auditDelete(t, r, o.actor())
	}
	if t.sc.task {
		for _, j := range in.d.journal[r.id] {
			in.d.tbl("sys_journal_field").remove(j)
		}
		delete(in.d.journal, r.id)
		for _, name := range []string{"sys_attachment", "label_entry"} {
			dt := in.d.tbl(name)
			key := map[string]string{"sys_attachment": "table_sys_id", "label_entry": "table_key"}[name]
			c := dt.sc.col(key)
			for _, x := range slices.Clone(dt.rows) {
				if x.get(c) == r.id {
					dt.remove(x)
					delete(in.d.attach, x.id)
				}
			}
		}
	}
	ch := in.changeLocked(t, r, "delete", o)
	if !o.SkipSysFields {
		ch.updatedOn = fmtTime(in.sim.Now())
	}
	in.mu.Unlock()
	in.sim.push.notify(in, ch)
	return nil
}

// AddJournal adds a comment (element "comments") or work note
// ("work_notes") to a task; like the platform it updates the task (new
// sys_updated_on, sys_mod_count + 1), which business rules see as an update
// (and subscribers of sys_journal_field as an insert).
func (in *Inst) AddJournal(tableName, sysID, element, value string, o WriteOptions) (Record, error) {
	if element != "comments" && element != "work_notes" {
		return nil, fmt.Errorf("snsim: journal element %q: want comments or work_notes", element)
	}
	in.mu.Lock()
	t, r, err := in.lookup(tableName, sysID)
	if err == nil && !t.sc.task {
		err = fmt.Errorf("snsim: %s is not a task table", tableName)
	}
	if err != nil {
		in.mu.Unlock()
		return nil, err
	}
	jt := in.d.tbl("sys_journal_field")
	j := &record{id: in.newSysID(), vals: make([]string, jt.sc.nslots)}
	now := fmtTime(in.sim.Now())
	for k, v := range map[string]string{"sys_id": j.id, "element": element, "element_id": sysID, "name": tableName,
		"value": value, "sys_created_by": o.actor(), "sys_created_on": now} {
		j.set(jt.sc.col(k), v)
	}
	jt.insert(j)
	in.indexInsert("sys_journal_field", j)
	in.touch(t, r, o)
	t.version++
	chJ := in.changeLocked(jt, j, "insert", o)
	ch := in.changeLocked(t, r, "update", o)
	out := toRecord(jt.sc, j)
	in.mu.Unlock()
	in.sim.push.notify(in, chJ)
	in.sim.push.notify(in, ch)
	return out, nil
}

// AddAttachment attaches a file to a record (Attachment API). It does not
// change the record itself; subscribers of sys_attachment get an insert.
func (in *Inst) AddAttachment(tableName, sysID, fileName, contentType string, content []byte, o WriteOptions) (Record, error) {
	in.mu.Lock()
	if _, _, err := in.lookup(tableName, sysID); err != nil {
		in.mu.Unlock()
		return nil, err
	}
	at := in.d.tbl("sys_attachment")
	a := &record{id: in.newSysID(), vals: make([]string, at.sc.nslots)}
	now := fmtTime(in.sim.Now())
	for k, v := range map[string]string{"sys_id": a.id, "file_name": fileName, "content_type": contentType,
		"size_bytes": strconv.Itoa(len(content)), "size_compressed": strconv.Itoa(len(content)), "table_name": tableName,
		"table_sys_id": sysID, "sys_created_by": o.actor(), "sys_updated_by": o.actor(), "hash": sha256Hex(content),
		"sys_created_on": now, "sys_updated_on": now, "sys_mod_count": "0"} {
		a.set(at.sc.col(k), v)
	}
	at.insert(a)
	in.d.attach[a.id] = slices.Clone(content)
	ch := in.changeLocked(at, a, "insert", o)
	in.mu.Unlock()
	in.sim.push.notify(in, ch)
	return ch.rec, nil
}

// AddTag tags a record: a label_entry row for the label of this name
// (created if needed). Tags do not change the record; subscribers of
// label_entry get an insert.
func (in *Inst) AddTag(tableName, sysID, label string, o WriteOptions) (Record, error) {
	in.mu.Lock()
	t, r, err := in.lookup(tableName, sysID)
	if err != nil {
		in.mu.Unlock()
		return nil, err
	}
	lt := in.d.tbl("label")
	var lab *record
	for _, x := range lt.rows {
		if x.get(lt.sc.col("name")) == label {
			lab = x
		}
	}
	now := fmtTime(in.sim.Now())
	if lab == nil {
		lab = &record{id: in.newSysID(), vals: make([]string, lt.sc.nslots)}
		for k, v := range map[string]string{"sys_id": lab.id, "name": label, "viewable_by": "everyone", "active": "true",
			"sys_created_on": now, "sys_updated_on": now, "sys_created_by": o.actor(), "sys_updated_by": o.actor(), "sys_mod_count": "0"} {
			lab.set(lt.sc.col(k), v)
		}
		lt.insert(lab)
	}
	e := in.labelEntry(lab, t, r, now, o.actor())
	ch := in.changeLocked(in.d.tbl("label_entry"), e, "insert", o)
	in.mu.Unlock()
	in.sim.push.notify(in, ch)
	return ch.rec, nil
}

func (in *Inst) labelEntry(lab *record, t *table, r *record, now, actor string) *record {
	et := in.d.tbl("label_entry")
	e := &record{id: in.newSysID(), vals: make([]string, et.sc.nslots)}
	title := t.sc.name
	if c := t.sc.col("number"); c != nil {
		title = r.get(c)
	}
	for k, v := range map[string]string{"sys_id": e.id, "label": lab.id, "table": t.sc.name, "table_key": r.id,
		"title": title, "url": t.sc.name + ".do?sys_id=" + r.id, "sys_created_on": now, "sys_updated_on": now,
		"sys_created_by": actor, "sys_updated_by": actor, "sys_mod_count": "0"} {
		e.set(et.sc.col(k), v)
	}
	et.insert(e)
	return e
}

// Get returns a record's raw values.
func (in *Inst) Get(tableName, sysID string) (Record, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	t, r, err := in.lookup(tableName, sysID)
	if err != nil {
		return nil, err
	}
	return toRecord(t.sc, r), nil
}

// Records returns every record of a table in insertion order.
func (in *Inst) Records(tableName string) ([]Record, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	t := in.d.tbl(tableName)
	if t == nil {
		return nil, fmt.Errorf("%w: table %s", ErrNotFound, tableName)
	}
	out := make([]Record, len(t.rows))
	for i, r := range t.rows {
		out[i] = toRecord(t.sc, r)
	}
	return out, nil
}

// Count returns the number of records of a table (0 for unknown tables).
func (in *Inst) Count(tableName string) int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if t := in.d.tbl(tableName); t != nil {
		return len(t.rows)
	}
	return 0
}

// Tables lists the simulated tables.
func (in *Inst) Tables() []string {
	out := slices.Collect(maps.Keys(in.d.tables))
	sort.Strings(out)
	return out
}

// Choices lists a field's choices (states include ExtraStates).
func (in *Inst) Choices(tableName, field string) []Choice {
	t := in.d.tbl(tableName)
	if t == nil || t.sc.col(field) == nil {
		return nil
	}
	return slices.Clone(t.sc.col(field).choices)
}

func (in *Inst) lookup(tableName, sysID string) (*table, *record, error) {
	t := in.d.tbl(tableName)
	if t == nil {
		return nil, nil, fmt.Errorf("%w: table %s", ErrNotFound, tableName)
	}
	r := t.byID[sysID]
	if r == nil {
		return nil, nil, fmt.Errorf("%w: %s %s", ErrNotFound, tableName, sysID)
	}
	return t, r, nil
}

func (in *Inst) indexInsert(tableName string, r *record) {
	if tableName != "sys_journal_field" {
		return
	}
	c := in.d.tbl(tableName).sc.col("element_id")
	in.d.journal[r.get(c)] = append(in.d.journal[r.get(c)], r)
}

func (in *Inst) indexRemove(tableName string, r *record) {
	if tableName != "sys_journal_field" {
		return
	}
	c := in.d.tbl(tableName).sc.col("element_id")
	key := r.get(c)
	in.d.journal[key] = slices.DeleteFunc(in.d.journal[key], func(x *record) bool { return x == r })
}

func (in *Inst) auditDelete(t *table, r *record, actor string) {
	at := in.d.tbl("sys_audit_delete")
	a := &record{id: in.newSysID(), vals: make([]string, at.sc.nslots)}
	now := fmtTime(in.sim.Now())
	display := r.id
	if c := t.sc.col(t.sc.display); c != nil && r.get(c) != "" {
		display = r.get(c)
	}
	for k, v := range map[string]string{"sys_id": a.id, "tablename": t.sc.name, "documentkey": r.id,
		"display_value": display, "payload": xmlPayload(t.sc, r), "sys_created_on": now, "sys_updated_on": now,
		"sys_created_by": actor, "sys_updated_by": actor, "sys_mod_count": "0"} {
		a.set(at.sc.col(k), v)
	}
	at.insert(a)
}

// xmlPayload is the deleted record as unload XML (a simplified form).
func xmlPayload(sc *schema, r *record) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><record_update table="` + sc.name + `"><` + sc.name + `>`)
	for _, c := range sc.cols {
		v := r.get(c)
		if v == "" || c.kind == kJournal {
			continue
		}
		b.WriteString("<" + c.name + ">" + xmlEscape(v) + "</" + c.name + ">")
	}
	b.WriteString("</" + sc.name + "></record_update>")
	return b.String()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// changeLocked builds the push notice of a write (caller holds in.mu).
// Journal entries have no sys_updated_on: their sys_created_on stands in.
func (in *Inst) changeLocked(t *table, r *record, op string, o WriteOptions) change {
	c := t.sc.col("sys_updated_on")
	if c == nil {
		c = t.sc.col("sys_created_on")
	}
	return change{table: t.sc.name, sysID: r.id, op: op, updatedOn: r.get(c), rec: toRecord(t.sc, r), skip: o.SkipWorkflow}
}

// closedState reports whether a state code ends a task (active = false).
func closedState(table, state string) bool {
	switch table {
	case "incident":
		return state == "6" || state == "7" || state == "8"
	case "problem":
		return state == "106" || state == "107"
	case "change_request":
		return state == "3" || state == "4"
	default:
		return state == "3" || state == "4" || state == "7"
	}
}
