// Package snwrite is ServiceNow's write-back, native search and
// passthrough: it creates and changes task records, adds comments and work
// notes, and searches a connection's tables with encoded queries through the
// Table API (snclient), translating the model's values through the
// connection's mapping, and answers the fresh records, read back as a sync
// reads them (snsync.Fetch: same fields and annotations, so the same
// version), that the receiver sends down the RAW → normalizer path.
package snwrite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsync"
)

// HTTPClients gives the HTTP client that authenticates as a connection
// (connections.Manager is one).
type HTTPClients interface {
	HTTPClient(ctx context.Context, c *store.Connection) (*http.Client, error)
}

// Config of the ServiceNow writer.
type Config struct {
	// DefaultTable is the table of a create that names none (default
	// incident); it must be one of the connection's tables.
	DefaultTable string
	// Client tunes the API client; its zero MaxWait is 10 s here: a call
	// from the API does not wait out a long rate-limit pause.
	Client snclient.Options
	// MaxClients bounds the API clients kept, one per connection, the
	// least recently used dropped first (default 1024).
	MaxClients int
	Now        func() time.Time
}

// Writer implements the receiver's TicketWriter, NativeSearcher and
// Passthrough for ServiceNow connections.
type Writer struct {
	cfg     Config
	clients HTTPClients

	// mu makes finding or adding a connection's entry one step; the
	// client is made outside it, once per entry.
	mu   sync.Mutex
	kept *lru.Cache[string, *keptClient] // by connection id
}

// keptClient is a connection's API client: kept across calls so that they
// spend one hourly rate budget (snclient counts a client's calls), and
// made anew when what it was made from changes (version).
type keptClient struct {
	version string
	once    sync.Once
	c       *snclient.Client
	err     error
}

// New makes the writer.
func New(cfg Config, clients HTTPClients) *Writer {
	if cfg.DefaultTable == "" {
		cfg.DefaultTable = "incident"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client.MaxWait <= 0 {
		cfg.Client.MaxWait = 10 * time.Second
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 1024
	}
	kept, err := lru.New[string, *keptClient](cfg.MaxClients)
	if err != nil {
		panic(err) // only for a size below 1, set above
	}
	return &Writer{cfg: cfg, clients: clients, kept: kept}
}

// clientVersion names what a connection's client is made from: the
// instance URL and the credentials (their sealed form, hashed). OAuth
// tokens (Connection.Secret) are left out: the connection manager's client
// reads the current token at each request, and a refresh must not reset
// the budget.
func clientVersion(conn *store.Connection) string {
	h := sha256.New()
	for _, s := range []string{conn.SiteURL, string(conn.Detail.Credentials)} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	if a := conn.Options.Auth; a != nil {
		for _, s := range []string{a.Type, a.Username, a.ClientID} {
			fmt.Fprintf(h, "%d:%s", len(s), s)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// client is the connection's API client, shared by every call on it.
func (w *Writer) client(ctx context.Context, conn *store.Connection) (*snclient.Client, error) {
	if conn.SiteURL == "" {
		return nil, fmt.Errorf("connection %s has no ServiceNow instance URL", conn.ID)
	}
	version := clientVersion(conn)
	w.mu.Lock()
	k, ok := w.kept.Get(conn.ID)
	if !ok || k.version != version {
		k = &keptClient{version: version}
		w.kept.Add(conn.ID, k)
	}
	w.mu.Unlock()
	k.once.Do(func() {
		var hc *http.Client
		if hc, k.err = w.clients.HTTPClient(ctx, conn); k.err == nil {
			k.c, k.err = snclient.New(hc, conn.SiteURL, w.cfg.Client)
		}
	})
	if k.err != nil {
		// Not kept: the next call tries again.
		w.mu.Lock()
		if cur, ok := w.kept.Peek(conn.ID); ok && cur == k {
			w.kept.Remove(conn.ID)
		}
		w.mu.Unlock()
		return nil, k.err
	}
	return k.c, nil
}

// vendorError turns the instance's refusals a client can act on into
// connector.VendorError; other errors pass as they are.
func vendorError(err error) error {
	var pe *snclient.PausedError
	if errors.As(err, &pe) || errors.Is(err, snclient.ErrRateLimited) {
		return &connector.VendorError{Status: http.StatusTooManyRequests, Message: "the ServiceNow instance's rate limit is reached; retry later"}
	}
	var ae *snclient.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		msg := ae.Message
		if ae.Detail != "" {
			msg += ": " + ae.Detail
		}
		if msg == "" {
			msg = http.StatusText(ae.Status)
		}
		return &connector.VendorError{Status: ae.Status, Message: msg}
	}
	return err
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", connector.ErrInvalidInput, fmt.Sprintf(format, args...))
}

// CreateTicket inserts a record in the table named by the ticket's type
// (default Config.DefaultTable), one of the connection's tables.
func (w *Writer) CreateTicket(ctx context.Context, conn *store.Connection, in connector.NewTicket) (connector.WriteResult, error) {
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return connector.WriteResult{}, invalid("name is required")
	}
	if in.ProjectVendorID != "" || in.ProjectKey != "" {
		return connector.WriteResult{}, invalid("project: ServiceNow has no projects; leave project_id and project_key out")
	}
	table := in.Type
	if table == "" {
		table = w.cfg.DefaultTable
	}
	tables := snsync.Tables(conn)
	if !slices.Contains(tables, table) {
		return connector.WriteResult{}, invalid("type: %q is not a table of the connection (want one of %s)", table, strings.Join(tables, ", "))
	}
	fields, err := w.fields(conn, table, in.TicketFields)
	if err != nil {
		return connector.WriteResult{}, err
	}
	if in.ParentVendorID != "" {
		fields["parent"] = in.ParentVendorID
	}
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.WriteResult{}, err
	}
	created, err := c.Create(ctx, table, fields)
	if err != nil {
		return connector.WriteResult{}, vendorError(err)
	}
	id := servicenowRow(created).Str("sys_id")
	if id == "" {
		return connector.WriteResult{}, fmt.Errorf("servicenow: the created %s record has no sys_id", table)
	}
	rec, err := w.fresh(ctx, conn, table, id)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket,
			ID: itsm.ObjectID(conn.ID, itsm.KindTicket, id), Err: fmt.Errorf("read created %s %s: %w", table, id, err)}
	}
	return connector.WriteResult{Records: []connector.Written{rec}}, nil
}

func servicenowRow(v jsontext.Value) servicenow.Row {
	r, err := servicenow.DecodeRow(v)
	if err != nil {
		return servicenow.Row{}
	}
	return r
}

// locate reads a task record and its table: the table the store knows it
// by (the vendor attribute table), within the connection's tables; a
// ticket stored without one is looked for in each of the connection's
// tables, every miss a call against the instance's rate limit.
func (w *Writer) locate(ctx context.Context, c *snclient.Client, conn *store.Connection, t connector.TicketRef) (string, servicenow.Row, error) {
	tables := snsync.Tables(conn)
	if stored := t.Attr("table"); stored != "" {
		if !slices.Contains(tables, stored) {
			return "", nil, &connector.VendorError{Status: http.StatusNotFound,
				Message: "record " + t.ID + " is in table " + stored + ", not one of the connection's tables"}
		}
		tables = []string{stored}
	}
	for _, table := range tables {
		v, err := c.Get(ctx, table, t.ID)
		if errors.Is(err, snclient.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", nil, vendorError(err)
		}
		return table, servicenowRow(v), nil
	}
	return "", nil, &connector.VendorError{Status: http.StatusNotFound, Message: "no record " + t.ID + " in the connection's tables"}
}

// UpdateTicket changes a record's fields and its state: the state code of
// its table that the connection's mapping maps to the status asked for.
// The Table API sets a state directly (no transitions), so a status is
// refused only when no state of the table maps to it.
func (w *Writer) UpdateTicket(ctx context.Context, conn *store.Connection, t connector.TicketRef, ch connector.TicketChange) (connector.WriteResult, error) {
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.WriteResult{}, err
	}
	sysID := t.ID
	table, cur, err := w.locate(ctx, c, conn, t)
	if err != nil {
		return connector.WriteResult{}, err
	}
	fields, err := w.fields(conn, table, ch.TicketFields)
	if err != nil {
		return connector.WriteResult{}, err
	}
	if ch.Status != nil {
		m := servicenow.MappingOf(conn)
		now, _ := m.MapStatus(table, cur.Str("state"), cur.Str("hold_reason"), !cur.Bool("active", true))
		if now != *ch.Status {
			st, err := StateFor(conn, table, *ch.Status)
			if err != nil {
				var ue *connector.UnreachableError
				if errors.As(err, &ue) {
					ue.Current = m.StateLabel(table, cur.Str("state"))
					if ue.Current == "" {
						ue.Current = cur.Str("state")
					}
				}
				return connector.WriteResult{}, err
			}
			fields["state"] = st.Code
			if table == "incident" {
				// A hold reason belongs to On Hold only.
				fields["hold_reason"] = st.HoldReason
			}
		}
	}
	if len(fields) > 0 {
		if _, err := c.Patch(ctx, table, sysID, fields); err != nil {
			return connector.WriteResult{}, vendorError(err)
		}
	}
	rec, err := w.fresh(ctx, conn, table, sysID)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket,
			ID: itsm.ObjectID(conn.ID, itsm.KindTicket, sysID), Err: fmt.Errorf("read changed %s %s: %w", table, sysID, err)}
	}
	return connector.WriteResult{Records: []connector.Written{rec}}, nil
}

// AddComment adds a customer-visible comment (the comments journal field).
func (w *Writer) AddComment(ctx context.Context, conn *store.Connection, t connector.TicketRef, body string) (connector.WriteResult, error) {
	return w.addJournal(ctx, conn, t, "comments", body)
}

// AddWorkNote adds an internal work note (the work_notes journal field).
func (w *Writer) AddWorkNote(ctx context.Context, conn *store.Connection, t connector.TicketRef, body string) (connector.WriteResult, error) {
	return w.addJournal(ctx, conn, t, "work_notes", body)
}

// addJournal PATCHes a journal field, then finds the entry it made (the
// PATCH answers the record, not the entry): the newest entry of that
// element on the record by the same user with the same text. The ticket,
// whose sys_updated_on the entry moved, is published first; the entry
// answers.
func (w *Writer) addJournal(ctx context.Context, conn *store.Connection, t connector.TicketRef, element, body string) (connector.WriteResult, error) {
	if strings.TrimSpace(body) == "" {
		return connector.WriteResult{}, invalid("body is required")
	}
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.WriteResult{}, err
	}
	sysID := t.ID
	table, _, err := w.locate(ctx, c, conn, t)
	if err != nil {
		return connector.WriteResult{}, err
	}
	patched, err := c.Patch(ctx, table, sysID, map[string]any{element: body})
	if err != nil {
		return connector.WriteResult{}, vendorError(err)
	}
	ticketID := itsm.ObjectID(conn.ID, itsm.KindTicket, sysID)
	entry, err := w.findEntry(ctx, c, table, sysID, element, servicenowRow(patched).Str("sys_updated_by"), body)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket, ID: ticketID, Err: err}
	}
	cm, err := w.fresh(ctx, conn, "sys_journal_field", entry)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket, ID: ticketID, Err: fmt.Errorf("read journal entry %s: %w", entry, err)}
	}
	ticket, err := w.fresh(ctx, conn, table, sysID)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: cm.Kind, ID: cm.ID, Err: fmt.Errorf("read commented %s %s: %w", table, sysID, err)}
	}
	return connector.WriteResult{Records: []connector.Written{ticket, cm}, Answer: 1}, nil
}

func (w *Writer) findEntry(ctx context.Context, c *snclient.Client, table, sysID, element, by, body string) (string, error) {
	q := "element_id=" + sysID + "^element=" + element + "^name=" + table
	if by != "" && !strings.ContainsAny(by, "^\r\n") && !strings.Contains(by, "ORDERBY") {
		q += "^sys_created_by=" + by
	}
	page, err := c.List(ctx, "sys_journal_field", q+"^ORDERBYDESCsys_created_on^ORDERBYDESCsys_id",
		[]string{"sys_id", "value"}, 0, 20)
	if err != nil {
		return "", fmt.Errorf("find the new %s entry: %w", element, err)
	}
	for _, row := range page.Rows {
		r := servicenowRow(row)
		if r.Str("value") == body {
			return r.Str("sys_id"), nil
		}
	}
	return "", fmt.Errorf("the new %s entry of %s %s was not found", element, table, sysID)
}

// fresh reads a record back as a sync reads it and maps it to find the
// object and version it becomes.
func (w *Writer) fresh(ctx context.Context, conn *store.Connection, table, sysID string) (connector.Written, error) {
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.Written{}, err
	}
	rec, err := snsync.FetchWith(ctx, c, table, sysID)
	if err != nil {
		return connector.Written{}, vendorError(err)
	}
	recs, err := servicenow.MappingOf(conn).MapSync(rec.Type, rec.Body, w.cfg.Now())
	if err != nil || len(recs) == 0 {
		return connector.Written{}, fmt.Errorf("map the written %s: %w", rec.Type, err)
	}
	return connector.Written{Type: rec.Type, ParentID: rec.ParentID, Body: rec.Body, Kind: recs[0].Kind, ID: recs[0].ID, Version: recs[0].Version}, nil
}

// fields translates the model's fields into the table's.
func (w *Writer) fields(conn *store.Connection, table string, f connector.TicketFields) (map[string]any, error) {
	out := map[string]any{}
	if f.Name != nil {
		if strings.TrimSpace(*f.Name) == "" {
			return nil, invalid("name cannot be empty")
		}
		out["short_description"] = *f.Name
	}
	if f.Description != nil {
		out["description"] = *f.Description
	}
	if f.Priority != nil {
		code, err := PriorityCode(conn, table, *f.Priority)
		if err != nil {
			return nil, err
		}
		// The instance computes priority from impact × urgency (its
		// default lookup: priority = impact + urgency - 1); both are set so
		// that the lookup gives the code, and the code itself as well.
		iu := impactUrgency[code]
		out["impact"], out["urgency"], out["priority"] = iu[0], iu[1], code
	}
	if f.AssigneeVendorID != nil {
		out["assigned_to"] = *f.AssigneeVendorID
	}
	if f.Tags != nil {
		return nil, invalid("tags: ServiceNow tags are not written through the Table API")
	}
	if f.DueDate != nil {
		if *f.DueDate == "" {
			out["due_date"] = ""
		} else {
			d, err := time.Parse(time.DateOnly, *f.DueDate)
			if err != nil {
				return nil, invalid("due_date: want a date like 2026-03-01")
			}
			out["due_date"] = d.Format(snclient.TimeLayout)
		}
	}
	return out, nil
}

// impactUrgency gives each priority code under the instance's default
// impact × urgency lookup.
var impactUrgency = map[string][2]string{
	"1": {"1", "1"}, "2": {"1", "2"}, "3": {"2", "2"}, "4": {"2", "3"}, "5": {"3", "3"},
}

// PriorityCode translates an ITSM priority to a ServiceNow priority code
// (1–5): the connection's custom mapping reversed first (its first entry
// with that value whose name is a code or label of one), else the first
// code the mapping gives that value.
func PriorityCode(conn *store.Connection, table string, p itsm.Priority) (string, error) {
	if !slices.Contains(itsm.Priorities, p) || p == itsm.PriorityUnknown {
		return "", invalid("priority: want one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL")
	}
	m := servicenow.MappingOf(conn)
	codes := []string{"1", "2", "3", "4", "5"}
	var cands []string
	for _, e := range conn.Options.PriorityMapping {
		if e.Value != p {
			continue
		}
		name, ok := unscoped(e.Name, table)
		if !ok {
			continue
		}
		for _, code := range codes {
			if name == code || strings.EqualFold(name, priorityLabels[code]) || strings.EqualFold(name, code+" - "+priorityLabels[code]) {
				cands = append(cands, code)
			}
		}
	}
	for _, code := range append(cands, codes...) {
		if got, _ := m.MapPriority(table, code); got == p {
			return code, nil
		}
	}
	return "", invalid("priority: no ServiceNow priority maps to %s with the connection's priority_mapping", p)
}

// priorityLabels of the codes (SERVICENOW.md §3).
var priorityLabels = map[string]string{"1": "Critical", "2": "High", "3": "Moderate", "4": "Low", "5": "Planning"}

// unscoped strips a custom mapping name's "table:" scope; ok is false for
// another table's entry.
func unscoped(name, table string) (string, bool) {
	name = strings.TrimSpace(name)
	if t, rest, found := strings.Cut(name, ":"); found && t != "" && !strings.HasPrefix(rest, " ") {
		if _, err := strconv.Atoi(t); err != nil {
			return strings.TrimSpace(rest), strings.EqualFold(t, table)
		}
	}
	return name, true
}

// State is a state code to write, with an incident's hold reason ("" for
// any other state).
type State struct {
	Code, HoldReason string
}

// builtinStates are the state codes of each table (SERVICENOW.md §3),
// tried after the instance's own (the connection's catalog, read from
// sys_choice by a full sync); their statuses come from the mapping.
var builtinStates = map[string][]string{
	"incident":       {"1", "2", "3", "6", "7", "8"},
	"problem":        {"101", "102", "103", "104", "106", "107"},
	"change_request": {"-5", "-4", "-3", "-2", "-1", "0", "3", "4"},
	"sc_req_item":    {"-5", "1", "2", "3", "4", "7"},
	"sc_task":        {"-5", "1", "2", "3", "4", "7"},
}

// incidentHoldReasons of On Hold (state 3), which the state model requires
// with it (SERVICENOW.md §3: 1 Awaiting Caller, 3 Awaiting Problem, 4
// Awaiting Vendor, 5 Awaiting Change).
var incidentHoldReasons = []string{"1", "3", "4", "5"}

// StateFor picks the state of a table that the connection's mapping maps
// to want: the custom status mapping reversed first (entries naming a code
// or label of the table), then the instance's states, then the built-in
// ones. No state mapping to want is a *connector.UnreachableError naming
// the statuses that can be set.
func StateFor(conn *store.Connection, table string, want itsm.Status) (State, error) {
	m := servicenow.MappingOf(conn)
	var known []string
	if cat := conn.Detail.Catalog; cat != nil {
		for _, s := range cat.Statuses {
			if t, code, ok := strings.Cut(s.Category, ":"); ok && t == table && !slices.Contains(known, code) {
				known = append(known, code)
			}
		}
	}
	for _, code := range builtinStates[table] {
		if !slices.Contains(known, code) {
			known = append(known, code)
		}
	}
	var cands []string
	for _, e := range conn.Options.StatusMapping {
		if e.Value != want {
			continue
		}
		name, ok := unscoped(e.Name, table)
		if !ok {
			continue
		}
		for _, code := range known {
			if name == code || strings.EqualFold(name, m.StateLabel(table, code)) {
				cands = append(cands, code)
			}
		}
	}
	var reachable []itsm.Status
	for _, code := range append(cands, known...) {
		holds := []string{""}
		if table == "incident" && code == "3" {
			holds = incidentHoldReasons
		}
		for _, h := range holds {
			got, _ := m.MapStatus(table, code, h, false)
			if got == want {
				return State{Code: code, HoldReason: h}, nil
			}
			if got != itsm.StatusUnknown && !slices.Contains(reachable, got) {
				reachable = append(reachable, got)
			}
		}
	}
	return State{}, &connector.UnreachableError{Want: want, Reachable: reachable}
}

// Passthrough makes a call of the connection's choosing under the
// instance's REST API (<instance>/api/now/), as the connection. The
// instance's answer comes back as it is, a 429 included.
func (w *Writer) Passthrough(ctx context.Context, conn *store.Connection, req passthrough.Request, lim passthrough.Limits) (*passthrough.Response, error) {
	if conn.SiteURL == "" {
		return nil, fmt.Errorf("connection %s has no ServiceNow instance URL", conn.ID)
	}
	hc, err := w.clients.HTTPClient(ctx, conn)
	if err != nil {
		return nil, err
	}
	return passthrough.Do(ctx, hc, strings.TrimRight(conn.SiteURL, "/")+"/api/now", req, lim)
}
