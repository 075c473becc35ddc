package servicenow

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// TaskTables are the task tables a connection may sync as tickets.
var TaskTables = []string{"incident", "problem", "change_request", "sc_req_item", "sc_task"}

// IsTaskTable reports whether table is one of TaskTables.
func IsTaskTable(table string) bool { return slices.Contains(TaskTables, table) }

// ValidateTables checks a connection's tables option: task tables only,
// none twice. The error names the offending value (for a 400).
func ValidateTables(tables []string) error {
	for i, t := range tables {
		if !IsTaskTable(t) {
			return fmt.Errorf("tables[%d]: %q is not a synced task table (want one of %s)", i, t, strings.Join(TaskTables, ", "))
		}
		if slices.Contains(tables[:i], t) {
			return fmt.Errorf("tables[%d]: %q is listed twice", i, t)
		}
	}
	return nil
}

// numberPrefixes name a task's table when the record lacks sys_class_name.
var numberPrefixes = []struct{ prefix, table string }{
	{"INC", "incident"}, {"PRB", "problem"}, {"CHG", "change_request"}, {"RITM", "sc_req_item"}, {"SCTASK", "sc_task"},
}

// Mapping holds what of one connection affects mapping.
type Mapping struct {
	ConnectionID string
	// InstanceURL (https://dev1.service-now.com) is the base of record
	// URLs; without it the base is taken from the record's reference links.
	InstanceURL string
	// Labels are state labels the instance adds ("incident:18" → "Awaiting
	// Customer Feedback"), for mapping states no built-in code covers.
	Labels map[string]string

	status   map[string]itsm.Status
	priority map[string]itsm.Priority
}

// NewMapping is a mapping with custom status and priority mappings, whose
// keys are codes or labels, optionally per table ("incident:6",
// "Awaiting Vendor"), matched case-insensitively.
func NewMapping(connectionID, instanceURL string, status map[string]itsm.Status, priority map[string]itsm.Priority) *Mapping {
	m := &Mapping{ConnectionID: connectionID, InstanceURL: strings.TrimRight(strings.TrimSpace(instanceURL), "/")}
	if len(status) > 0 {
		m.status = make(map[string]itsm.Status, len(status))
		for k, v := range status {
			m.status[strings.ToLower(strings.TrimSpace(k))] = v
		}
	}
	if len(priority) > 0 {
		m.priority = make(map[string]itsm.Priority, len(priority))
		for k, v := range priority {
			m.priority[strings.ToLower(strings.TrimSpace(k))] = v
		}
	}
	return m
}

// MappingOf is the mapping of a connection's records: its custom mappings,
// its instance URL (SiteURL) and the state labels of its catalog, whose
// statuses a ServiceNow sync records as Name = label, Category =
// "<table>:<code>".
func MappingOf(conn *store.Connection) *Mapping {
	m := NewMapping(conn.ID, conn.SiteURL, conn.Options.StatusMapping.Map(), conn.Options.PriorityMapping.Map())
	if c := conn.Detail.Catalog; c != nil {
		for _, s := range c.Statuses {
			if strings.Contains(s.Category, ":") {
				if m.Labels == nil {
					m.Labels = map[string]string{}
				}
				m.Labels[s.Category] = s.Name
			}
		}
	}
	return m
}

func (m *Mapping) conn() string { return m.ConnectionID }

// base is the instance URL for a record's links.
func (m *Mapping) base(r Row) string {
	if m.InstanceURL != "" {
		return m.InstanceURL
	}
	for _, raw := range r {
		var ref struct {
			Link string `json:"link"`
		}
		if len(raw) > 0 && raw[0] == '{' && jsonUnmarshal(raw, &ref) == nil {
			if i := strings.Index(ref.Link, "/api/now/"); i > 0 {
				return ref.Link[:i]
			}
		}
	}
	return ""
}

// RecordURL is the URL of a record in the instance's UI.
func RecordURL(base, table, sysID string) string {
	if base == "" || table == "" || sysID == "" {
		return ""
	}
	return base + "/" + table + ".do?sys_id=" + sysID
}

// TableOf is a task record's table: sys_class_name, else its number's
// prefix.
func TableOf(r Row) string {
	if t := r.Str("sys_class_name"); t != "" {
		return t
	}
	n := r.Str("number")
	for _, p := range numberPrefixes {
		if strings.HasPrefix(n, p.prefix) {
			return p.table
		}
	}
	return ""
}

// Ticket maps a task record. deletedAt, when not zero, makes it a
// tombstone of a deletion at that time.
func (m *Mapping) Ticket(r Row, deletedAt time.Time) (itsm.Record, error) {
	id := r.Str("sys_id")
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: task record without sys_id", itsm.ErrMalformed)
	}
	deleted := !deletedAt.IsZero()
	version, ok := versionOf(r)
	if deleted {
		version, ok = deletionVersion(deletedAt), true
	}
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: task %s: missing or unparseable sys_updated_on %q", itsm.ErrMalformed, id, r.Str("sys_updated_on"))
	}
	table := TableOf(r)
	conn := m.conn()
	code, hold, prio := r.Str("state"), r.Str("hold_reason"), r.Str("priority")
	status, statusBy := m.MapStatus(table, code, hold, !r.Bool("active", true))
	if deleted {
		status = itsm.StatusDeleted
	}
	priority, priorityBy := m.MapPriority(table, prio)

	parent := r.Str("parent_incident")
	if parent == "" {
		parent = r.Str("parent")
	}
	tags := []string{}
	if ts, ok := r.Strings(AnnotTags); ok {
		tags = append(tags, ts...)
	}
	for _, t := range strings.Split(r.Str("sys_tags"), ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)

	attrs := itsm.VendorAttributes{
		"vendor":             VendorName,
		"sys_id":             id,
		"table":              table,
		"state":              code,
		"state_label":        m.StateLabel(table, code),
		"hold_reason":        hold,
		"priority":           prio,
		"status_mapped_by":   string(statusBy),
		"priority_mapped_by": string(priorityBy),
		"fields":             attributes(r, "number", "short_description", "description", "sys_id"),
	}
	if deleted {
		attrs["deleted"] = true
	}
	t := &itsm.Ticket{
		ID:               itsm.ObjectID(conn, itsm.KindTicket, id),
		Name:             r.Str("short_description"),
		Description:      r.Str("description"),
		Type:             r.Str("sys_class_name"),
		Active:           r.Bool("active", true) && !deleted,
		Status:           status,
		Priority:         priority,
		ParentTicketID:   itsm.RefID(conn, itsm.KindTicket, parent),
		AssignedUserID:   itsm.RefID(conn, itsm.KindUser, r.Str("assigned_to")),
		CreatedByUserID:  itsm.RefID(conn, itsm.KindUser, r.Str("opened_by")),
		TicketCreatedAt:  timePtr(r.Time("opened_at")),
		DueDate:          timePtr(r.Time("due_date")),
		ClosedAt:         timePtr(r.Time("closed_at")),
		Tags:             tags,
		URL:              RecordURL(m.base(r), table, id),
		Identifier:       r.Str("number"),
		VendorAttributes: attrs,
	}
	if t.Type == "" {
		t.Type = table
	}
	if t.TicketCreatedAt == nil {
		t.TicketCreatedAt = timePtr(r.Time("sys_created_on"))
	}
	return itsm.Record{Kind: itsm.KindTicket, ID: t.ID, Version: version, Deleted: deleted, Object: t}, nil
}

// Comment maps a sys_journal_field row (element comments or work_notes).
func (m *Mapping) Comment(r Row, deletedAt time.Time) (itsm.Record, error) {
	id := r.Str("sys_id")
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: journal entry without sys_id", itsm.ErrMalformed)
	}
	element := r.Str("element")
	if element != "comments" && element != "work_notes" {
		return itsm.Record{}, fmt.Errorf("%w: journal element %q", itsm.ErrUnsupportedEvent, element)
	}
	ticket := r.Str("element_id")
	if ticket == "" {
		return itsm.Record{}, fmt.Errorf("%w: journal entry %s without element_id", itsm.ErrMalformed, id)
	}
	created, ok := r.Time("sys_created_on")
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: journal entry %s: missing or unparseable sys_created_on", itsm.ErrMalformed, id)
	}
	deleted := !deletedAt.IsZero()
	conn := m.conn()
	author := r.Str(AnnotAuthor)
	// Entries are immutable: the copy whose author the sync resolved is the
	// better version of the same entry (versionOf).
	version, _ := versionOf(r)
	if deleted {
		version = deletionVersion(deletedAt)
	}
	table := r.Str("name")
	c := &itsm.Comment{
		ID:               itsm.ObjectID(conn, itsm.KindComment, id),
		TicketID:         itsm.ObjectID(conn, itsm.KindTicket, ticket),
		AuthorID:         itsm.RefID(conn, itsm.KindUser, author),
		Body:             r.Str("value"),
		Status:           itsm.ObjectStatusOf(true, deleted),
		Active:           !deleted,
		CommentCreatedAt: &created,
		CommentUpdatedAt: &created,
		URL:              RecordURL(m.base(r), table, ticket),
		VendorAttributes: itsm.VendorAttributes{
			"vendor":     VendorName,
			"sys_id":     id,
			"element":    element,
			"internal":   element == "work_notes",
			"table":      table,
			"element_id": ticket,
			"created_by": r.Str("sys_created_by"),
		},
	}
	return itsm.Record{Kind: itsm.KindComment, ID: c.ID, Version: version, Deleted: deleted, Object: c}, nil
}

// Attachment maps an Attachment API record (or a sys_attachment row).
func (m *Mapping) Attachment(r Row, deletedAt time.Time) (itsm.Record, error) {
	id := r.Str("sys_id")
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: attachment without sys_id", itsm.ErrMalformed)
	}
	ticket := r.Str("table_sys_id")
	if ticket == "" {
		return itsm.Record{}, fmt.Errorf("%w: attachment %s without table_sys_id", itsm.ErrMalformed, id)
	}
	version, ok := versionOf(r)
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: attachment %s: missing or unparseable sys_updated_on", itsm.ErrMalformed, id)
	}
	author := r.Str(AnnotAuthor)
	deleted := !deletedAt.IsZero()
	if deleted {
		version = deletionVersion(deletedAt)
	}
	conn := m.conn()
	ctype := r.Str("content_type")
	// "text/plain (.txt)" is seen in real responses: the MIME type is
	// before the suffix.
	mime, _, _ := strings.Cut(ctype, " (")
	size, _ := strconv.ParseInt(r.Str("size_bytes"), 10, 64)
	url := r.Str("download_link")
	if url == "" && m.base(r) != "" {
		url = m.base(r) + "/api/now/attachment/" + id + "/file"
	}
	a := &itsm.Attachment{
		ID:                  itsm.ObjectID(conn, itsm.KindAttachment, id),
		TicketID:            itsm.ObjectID(conn, itsm.KindTicket, ticket),
		Name:                r.Str("file_name"),
		MimeType:            strings.TrimSpace(mime),
		Size:                size,
		UploadedByUserID:    itsm.RefID(conn, itsm.KindUser, author),
		Status:              itsm.ObjectStatusOf(true, deleted),
		Active:              !deleted,
		URL:                 url,
		AttachmentCreatedAt: timePtr(r.Time("sys_created_on")),
		VendorAttributes: itsm.VendorAttributes{
			"vendor":       VendorName,
			"sys_id":       id,
			"table_name":   r.Str("table_name"),
			"table_sys_id": ticket,
			"content_type": ctype,
			"created_by":   r.Str("sys_created_by"),
			"state":        r.Str("state"),
			"hash":         r.Str("hash"),
		},
	}
	return itsm.Record{Kind: itsm.KindAttachment, ID: a.ID, Version: version, Deleted: deleted, Object: a}, nil
}

// User maps a sys_user row.
func (m *Mapping) User(r Row, deletedAt time.Time) (itsm.Record, error) {
	id := r.Str("sys_id")
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: user without sys_id", itsm.ErrMalformed)
	}
	version, ok := versionOf(r)
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: user %s: missing or unparseable sys_updated_on", itsm.ErrMalformed, id)
	}
	deleted := !deletedAt.IsZero()
	if deleted {
		version = deletionVersion(deletedAt)
	}
	name := r.Str("name")
	if name == "" {
		name = strings.TrimSpace(r.Str("first_name") + " " + r.Str("last_name"))
	}
	if name == "" {
		name = r.Str("user_name")
	}
	var email *string
	if e := r.Str("email"); e != "" {
		email = &e
	}
	active := r.Bool("active", true)
	u := &itsm.User{
		ID:     itsm.ObjectID(m.conn(), itsm.KindUser, id),
		Name:   name,
		Email:  email,
		Status: itsm.ObjectStatusOf(active, deleted),
		Active: active && !deleted,
		VendorAttributes: itsm.VendorAttributes{
			"vendor":    VendorName,
			"sys_id":    id,
			"user_name": r.Str("user_name"),
			"fields":    attributes(r, "sys_id", "user_name", "name", "email", "user_password"),
		},
	}
	return itsm.Record{Kind: itsm.KindUser, ID: u.ID, Version: version, Deleted: deleted, Object: u}, nil
}

// Group maps a sys_user_group row with its members (AnnotMembers). Its
// version is the later of sys_updated_on and observed: membership lives in
// sys_user_grmember and does not change the group's sys_updated_on, so a
// group the sync read is versioned at the time it was read.
func (m *Mapping) Group(r Row, observed, deletedAt time.Time) (itsm.Record, error) {
	id := r.Str("sys_id")
	if id == "" {
		return itsm.Record{}, fmt.Errorf("%w: group without sys_id", itsm.ErrMalformed)
	}
	version, ok := versionOf(r)
	if !ok {
		return itsm.Record{}, fmt.Errorf("%w: group %s: missing or unparseable sys_updated_on", itsm.ErrMalformed, id)
	}
	if o := observed.UTC().Truncate(time.Millisecond); o.After(version) {
		version = o
	}
	deleted := !deletedAt.IsZero()
	if deleted {
		version = deletionVersion(deletedAt)
	}
	conn := m.conn()
	members := []string{}
	ids, _ := r.Strings(AnnotMembers)
	for _, u := range ids {
		if u != "" {
			members = append(members, itsm.ObjectID(conn, itsm.KindUser, u))
		}
	}
	slices.Sort(members)
	members = slices.Compact(members)
	active := r.Bool("active", true)
	g := &itsm.Group{
		ID:            itsm.ObjectID(conn, itsm.KindGroup, id),
		Name:          r.Str("name"),
		Description:   r.Str("description"),
		Status:        itsm.ObjectStatusOf(active, deleted),
		Active:        active && !deleted,
		MemberUserIDs: members,
		VendorAttributes: itsm.VendorAttributes{
			"vendor":  VendorName,
			"sys_id":  id,
			"email":   r.Str("email"),
			"manager": r.Str("manager"),
			"parent":  r.Str("parent"),
			"type":    r.Str("type"),
		},
	}
	return itsm.Record{Kind: itsm.KindGroup, ID: g.ID, Version: version, Deleted: deleted, Object: g}, nil
}

// KindOfTable is the model kind a table's records map to; "" for tables
// the platform does not map.
func KindOfTable(table string) itsm.Kind {
	switch {
	case IsTaskTable(table):
		return itsm.KindTicket
	case table == "sys_journal_field":
		return itsm.KindComment
	case table == "sys_attachment":
		return itsm.KindAttachment
	case table == "sys_user":
		return itsm.KindUser
	case table == "sys_user_group":
		return itsm.KindGroup
	}
	return ""
}

// mapRow maps a row of a table; deletedAt makes it a tombstone.
func (m *Mapping) mapRow(table string, r Row, observed, deletedAt time.Time) (itsm.Record, error) {
	switch KindOfTable(table) {
	case itsm.KindTicket:
		return m.Ticket(r, deletedAt)
	case itsm.KindComment:
		return m.Comment(r, deletedAt)
	case itsm.KindAttachment:
		return m.Attachment(r, deletedAt)
	case itsm.KindUser:
		return m.User(r, deletedAt)
	case itsm.KindGroup:
		return m.Group(r, observed, deletedAt)
	}
	return itsm.Record{}, fmt.Errorf("%w: table %q", itsm.ErrUnsupportedEvent, table)
}
