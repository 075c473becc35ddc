// Package jirawrite is Jira's write-back, native search and passthrough:
// it creates and changes issues, comments on them and searches them with
// JQL through the REST API v3 (jiracloud), translating the model's values
// through the connection's mapping, and answers the fresh vendor records
// that the receiver sends down the RAW → normalizer path.
package jirawrite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// HTTPClients gives the HTTP client that authenticates as a connection
// (connections.Manager is one: token refresh included).
type HTTPClients interface {
	HTTPClient(ctx context.Context, c *store.Connection) (*http.Client, error)
}

// Config of the Jira writer.
type Config struct {
	Endpoints jiracloud.Endpoints
	// DefaultIssueType is the issue type of a create that names none
	// (default "Task").
	DefaultIssueType string
	// IssueFields are the fields of the fresh issue read after a write:
	// the ones a sync reads, so that the next sync finds the same version
	// and content (default: *all but comments and what the mapping never
	// reads).
	IssueFields []string
	Now         func() time.Time
	// Pacer shapes the pacing of calls: one pacer per Jira site, shared by
	// every call of the writer to it. Zero values: at most 4 calls at once,
	// a call retried at most 3 times within 15 s after a 429 (Retry-After
	// honoured), and a quota pause longer than 10 s answered at once.
	Pacer jiracloud.PacerConfig
	// MaxPacers bounds the sites whose pacers are kept, the least recently
	// used going first (default 1,024): a site whose pacer went starts
	// again with a fresh one.
	MaxPacers int
}

// Writer implements the receiver's TicketWriter, NativeSearcher and
// Passthrough for Jira connections.
type Writer struct {
	cfg     Config
	clients HTTPClients

	mu     sync.Mutex
	pacers *lru.Cache[string, *jiracloud.Pacer] // by cloud id
}

// New makes the writer.
func New(cfg Config, clients HTTPClients) *Writer {
	if cfg.DefaultIssueType == "" {
		cfg.DefaultIssueType = "Task"
	}
	if len(cfg.IssueFields) == 0 {
		cfg.IssueFields = []string{"*all", "-comment", "-worklog", "-watches", "-votes", "-timetracking", "-progress",
			"-aggregateprogress", "-issuerestriction", "-lastViewed", "-workratio"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Pacer.MaxAttempts <= 0 {
		cfg.Pacer.MaxAttempts = 3
	}
	if cfg.Pacer.MaxElapsed <= 0 {
		cfg.Pacer.MaxElapsed = 15 * time.Second
	}
	if cfg.Pacer.MaxPause <= 0 {
		cfg.Pacer.MaxPause = 10 * time.Second
	}
	if cfg.Pacer.MaxBackoff <= 0 {
		cfg.Pacer.MaxBackoff = 5 * time.Second
	}
	more := cfg.Pacer.Permanent
	cfg.Pacer.Permanent = func(err error) bool {
		var p permanent
		return errors.As(err, &p) || more != nil && more(err)
	}
	if cfg.MaxPacers <= 0 {
		cfg.MaxPacers = 1024
	}
	// lru.New fails only for a size below one.
	pacers, _ := lru.New[string, *jiracloud.Pacer](cfg.MaxPacers)
	return &Writer{cfg: cfg, clients: clients, pacers: pacers}
}

// pacer is the site's: its calls from the API are paced and retried after
// 429s as a sync's are, without sharing a sync's budget.
func (w *Writer) pacer(cloudID string) *jiracloud.Pacer {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.pacers.Get(cloudID)
	if !ok {
		p = jiracloud.NewPacer(w.cfg.Pacer)
		w.pacers.Add(cloudID, p)
	}
	return p
}

// Whether a call may be repeated after a failure other than a 429 (which
// Jira answers before doing anything): a create or comment that failed with
// a 5xx or a lost answer may have happened, and must not happen twice.
const (
	repeatable   = true
	onlyAfter429 = false
)

// pace runs call under the site's pacer.
func (w *Writer) pace(ctx context.Context, conn *store.Connection, safe bool, call func(ctx context.Context) error) error {
	p := w.pacer(conn.CloudID)
	return p.Do(ctx, func(ctx context.Context) error {
		err := call(ctx)
		if err != nil && !safe && !jiracloud.IsStatus(err, http.StatusTooManyRequests) {
			return permanent{err}
		}
		return err
	})
}

// permanent stops the pacer's retries of an error.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func (w *Writer) client(ctx context.Context, conn *store.Connection) (*jiracloud.Client, error) {
	if conn.CloudID == "" {
		return nil, fmt.Errorf("connection %s has no Jira site yet", conn.ID)
	}
	hc, err := w.clients.HTTPClient(ctx, conn)
	if err != nil {
		return nil, err
	}
	p := w.pacer(conn.CloudID)
	return jiracloud.NewClient(w.cfg.Endpoints, conn.CloudID, hc).Observe(func(_, _ string, info jiracloud.RateInfo, _ error) {
		p.Observe(info)
	}), nil
}

// vendorError turns Jira's refusals a client can act on into
// connector.VendorError; other errors pass as they are.
func vendorError(err error) error {
	var pe *jiracloud.PausedError
	if errors.As(err, &pe) || jiracloud.IsStatus(err, http.StatusTooManyRequests) {
		return &connector.VendorError{Status: http.StatusTooManyRequests, Message: "Jira's rate limit for the site is reached; retry later"}
	}
	var ae *jiracloud.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
		msg := strings.Join(ae.Messages, "; ")
		if msg == "" {
			msg = http.StatusText(ae.Status)
		}
		return &connector.VendorError{Status: ae.Status, Message: msg}
	}
	return err
}

// CreateTicket creates an issue and answers its fresh record.
func (w *Writer) CreateTicket(ctx context.Context, conn *store.Connection, in connector.NewTicket) (connector.WriteResult, error) {
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return connector.WriteResult{}, fmt.Errorf("%w: name is required", connector.ErrInvalidInput)
	}
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.WriteResult{}, err
	}
	fields, err := w.fields(ctx, c, conn, in.TicketFields)
	if err != nil {
		return connector.WriteResult{}, err
	}
	switch {
	case in.ProjectVendorID != "":
		fields["project"] = map[string]string{"id": in.ProjectVendorID}
	case in.ProjectKey != "":
		fields["project"] = map[string]string{"key": in.ProjectKey}
	default:
		return connector.WriteResult{}, fmt.Errorf("%w: project_id or project_key is required", connector.ErrInvalidInput)
	}
	typ := in.Type
	if typ == "" {
		typ = w.cfg.DefaultIssueType
	}
	fields["issuetype"] = map[string]string{"name": typ}
	if in.ParentVendorID != "" {
		fields["parent"] = map[string]string{"id": in.ParentVendorID}
	}
	var created *jiracloud.CreatedIssue
	err = w.pace(ctx, conn, onlyAfter429, func(ctx context.Context) (err error) {
		created, err = c.CreateIssue(ctx, fields)
		return err
	})
	if err != nil {
		return connector.WriteResult{}, vendorError(err)
	}
	rec, err := w.freshIssue(ctx, c, conn, created.ID)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket,
			ID: itsm.ObjectID(conn.ID, itsm.KindTicket, created.ID), Err: fmt.Errorf("read created issue %s: %w", created.Key, err)}
	}
	return connector.WriteResult{Records: []connector.Written{rec}}, nil
}

// UpdateTicket changes an issue's fields and moves it to the status asked
// for through its workflow. A status the workflow cannot reach is refused
// before anything is changed.
func (w *Writer) UpdateTicket(ctx context.Context, conn *store.Connection, t connector.TicketRef, ch connector.TicketChange) (connector.WriteResult, error) {
	issueID := t.ID
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.WriteResult{}, err
	}
	fields, err := w.fields(ctx, c, conn, ch.TicketFields)
	if err != nil {
		return connector.WriteResult{}, err
	}
	var transition string
	if ch.Status != nil {
		if transition, err = w.transitionTo(ctx, c, conn, issueID, *ch.Status); err != nil {
			return connector.WriteResult{}, err
		}
	}
	if len(fields) > 0 {
		if err := w.pace(ctx, conn, repeatable, func(ctx context.Context) error { return c.EditIssue(ctx, issueID, fields) }); err != nil {
			return connector.WriteResult{}, vendorError(err)
		}
	}
	if transition != "" {
		if err := w.pace(ctx, conn, onlyAfter429, func(ctx context.Context) error { return c.DoTransition(ctx, issueID, transition) }); err != nil {
			return connector.WriteResult{}, vendorError(err)
		}
	}
	rec, err := w.freshIssue(ctx, c, conn, issueID)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket,
			ID: itsm.ObjectID(conn.ID, itsm.KindTicket, issueID), Err: fmt.Errorf("read changed issue %s: %w", issueID, err)}
	}
	return connector.WriteResult{Records: []connector.Written{rec}}, nil
}

// transitionTo picks the transition whose target status maps to want, ""
// when the issue is already there.
func (w *Writer) transitionTo(ctx context.Context, c *jiracloud.Client, conn *store.Connection, issueID string, want itsm.Status) (string, error) {
	m := jira.MappingOf(conn)
	var cur json.RawMessage
	err := w.pace(ctx, conn, repeatable, func(ctx context.Context) (err error) {
		cur, err = c.IssueRaw(ctx, issueID, []string{"status"})
		return err
	})
	if err != nil {
		return "", vendorError(err)
	}
	var is struct {
		Fields struct {
			Status struct {
				Name           string `json:"name"`
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(cur, &is); err != nil {
		return "", fmt.Errorf("decode issue %s status: %w", issueID, err)
	}
	if s, _ := m.MapStatus(is.Fields.Status.Name, is.Fields.Status.StatusCategory.Key); s == want {
		return "", nil
	}
	var trs []jiracloud.Transition
	err = w.pace(ctx, conn, repeatable, func(ctx context.Context) (err error) {
		trs, err = c.Transitions(ctx, issueID)
		return err
	})
	if err != nil {
		return "", vendorError(err)
	}
	var reachable []itsm.Status
	for _, tr := range trs {
		s, _ := m.MapStatus(tr.To.Name, tr.To.StatusCategory.Key)
		if s == want {
			return tr.ID, nil
		}
		if !slices.Contains(reachable, s) {
			reachable = append(reachable, s)
		}
	}
	return "", &connector.UnreachableError{Want: want, Current: is.Fields.Status.Name, Reachable: reachable}
}

// AddComment comments on an issue; the answer is the comment, and the
// issue (whose updated the comment moved) goes down the same path first.
func (w *Writer) AddComment(ctx context.Context, conn *store.Connection, t connector.TicketRef, body string) (connector.WriteResult, error) {
	issueID := t.ID
	if strings.TrimSpace(body) == "" {
		return connector.WriteResult{}, fmt.Errorf("%w: body is required", connector.ErrInvalidInput)
	}
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.WriteResult{}, err
	}
	var rawComment json.RawMessage
	err = w.pace(ctx, conn, onlyAfter429, func(ctx context.Context) (err error) {
		rawComment, err = c.AddComment(ctx, issueID, jira.ADF(body))
		return err
	})
	if err != nil {
		return connector.WriteResult{}, vendorError(err)
	}
	cm, err := w.written(conn, raw.TypeComment, issueID, rawComment)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: itsm.KindTicket,
			ID: itsm.ObjectID(conn.ID, itsm.KindTicket, issueID), Err: err}
	}
	issue, err := w.freshIssue(ctx, c, conn, issueID)
	if err != nil {
		return connector.WriteResult{}, &connector.UnreadError{Kind: cm.Kind, ID: cm.ID, Err: fmt.Errorf("read commented issue %s: %w", issueID, err)}
	}
	return connector.WriteResult{Records: []connector.Written{issue, cm}, Answer: 1}, nil
}

func (w *Writer) freshIssue(ctx context.Context, c *jiracloud.Client, conn *store.Connection, issueID string) (connector.Written, error) {
	var body json.RawMessage
	err := w.pace(ctx, conn, repeatable, func(ctx context.Context) (err error) {
		body, err = c.IssueRaw(ctx, issueID, w.cfg.IssueFields)
		return err
	})
	if err != nil {
		return connector.Written{}, vendorError(err)
	}
	return w.written(conn, raw.TypeIssue, "", body)
}

// written maps a fresh record to find the object and version it becomes.
func (w *Writer) written(conn *store.Connection, typ, parentID string, body []byte) (connector.Written, error) {
	v := jsontext.Value(slices.Clone(body))
	if err := v.Compact(); err != nil {
		return connector.Written{}, fmt.Errorf("jira answered a malformed %s: %w", typ, err)
	}
	m := jira.MappingOf(conn)
	recs, err := m.MapRESTAt(typ, parentID, v, w.cfg.Now())
	if err != nil || len(recs) == 0 {
		return connector.Written{}, fmt.Errorf("map the written %s: %w", typ, err)
	}
	return connector.Written{Type: typ, ParentID: parentID, Body: v, Kind: recs[0].Kind, ID: recs[0].ID, Version: recs[0].Version}, nil
}

// fields translates the model's fields into Jira's.
func (w *Writer) fields(ctx context.Context, c *jiracloud.Client, conn *store.Connection, f connector.TicketFields) (jiracloud.Fields, error) {
	out := jiracloud.Fields{}
	if f.Name != nil {
		if strings.TrimSpace(*f.Name) == "" {
			return nil, fmt.Errorf("%w: name cannot be empty", connector.ErrInvalidInput)
		}
		out["summary"] = *f.Name
	}
	if f.Description != nil {
		if *f.Description == "" {
			out["description"] = nil
		} else {
			out["description"] = jira.ADF(*f.Description)
		}
	}
	if f.Priority != nil {
		name, err := w.priorityName(ctx, c, conn, *f.Priority)
		if err != nil {
			return nil, err
		}
		out["priority"] = map[string]string{"name": name}
	}
	if f.AssigneeVendorID != nil {
		if *f.AssigneeVendorID == "" {
			out["assignee"] = nil
		} else {
			out["assignee"] = map[string]string{"accountId": *f.AssigneeVendorID}
		}
	}
	if f.Tags != nil {
		tags := *f.Tags
		if tags == nil {
			tags = []string{}
		}
		for _, t := range tags {
			if t == "" || strings.ContainsAny(t, " \t\r\n") {
				return nil, fmt.Errorf("%w: tags: Jira labels cannot be empty or contain spaces (%q)", connector.ErrInvalidInput, t)
			}
		}
		out["labels"] = tags
	}
	if f.DueDate != nil {
		if *f.DueDate == "" {
			out["duedate"] = nil
		} else {
			if _, err := time.Parse(time.DateOnly, *f.DueDate); err != nil {
				return nil, fmt.Errorf("%w: due_date: want a date like 2026-03-01", connector.ErrInvalidInput)
			}
			out["duedate"] = *f.DueDate
		}
	}
	return out, nil
}

// priorityName translates an ITSM priority back to a Jira priority name:
// the connection's custom mapping reversed first (its first entry with that
// value that the site has), else the first of the site's priorities
// (highest first) that the automatic mapping gives that value.
func (w *Writer) priorityName(ctx context.Context, c *jiracloud.Client, conn *store.Connection, p itsm.Priority) (string, error) {
	if !slices.Contains(itsm.Priorities, p) || p == itsm.PriorityUnknown {
		return "", fmt.Errorf("%w: priority: want one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL", connector.ErrInvalidInput)
	}
	var scheme []string
	if cat := conn.Detail.Catalog; cat != nil && len(cat.Priorities) > 0 {
		scheme = cat.Priorities
	} else {
		var cat *store.Catalog
		err := w.pace(ctx, conn, repeatable, func(ctx context.Context) (err error) {
			cat, err = c.Catalog(ctx, w.cfg.Now())
			return err
		})
		if err != nil {
			return "", vendorError(err)
		}
		scheme = cat.Priorities
	}
	for _, e := range conn.Options.PriorityMapping {
		if e.Value != p {
			continue
		}
		for _, s := range scheme {
			if strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(e.Name)) {
				return s, nil
			}
		}
	}
	m := jira.MappingOf(conn)
	m.PriorityScheme = scheme
	for _, s := range scheme {
		if got, _ := m.MapPriority(s); got == p {
			return s, nil
		}
	}
	return "", fmt.Errorf("%w: priority: no priority of the Jira site maps to %s (site priorities: %s)",
		connector.ErrInvalidInput, p, strings.Join(scheme, ", "))
}

// MaxJQL bounds a native search's query.
const MaxJQL = 5000

// SearchTickets runs a JQL search, narrowed to the connection's
// project_keys_filter, one page from cursor (Jira's nextPageToken).
func (w *Writer) SearchTickets(ctx context.Context, conn *store.Connection, query, cursor string, limit int) (connector.SearchPage, error) {
	if strings.TrimSpace(query) == "" {
		return connector.SearchPage{}, fmt.Errorf("%w: jql is required", connector.ErrInvalidInput)
	}
	if len(query) > MaxJQL {
		return connector.SearchPage{}, fmt.Errorf("%w: jql exceeds %d characters", connector.ErrInvalidInput, MaxJQL)
	}
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.SearchPage{}, err
	}
	jql, err := NarrowJQL(query, conn.Options.ProjectKeysFilter)
	if err != nil {
		return connector.SearchPage{}, err
	}
	var page *jiracloud.IssuePage
	err = w.pace(ctx, conn, repeatable, func(ctx context.Context) (err error) {
		page, err = c.Search(ctx, jql, cursor, limit, w.cfg.IssueFields)
		return err
	})
	if err != nil {
		return connector.SearchPage{}, vendorError(err)
	}
	m := jira.MappingOf(conn)
	out := connector.SearchPage{NextCursor: page.NextPageToken, Items: make([]connector.SearchItem, 0, len(page.Issues))}
	for _, body := range page.Issues {
		recs, err := m.MapRESTAt(raw.TypeIssue, "", body, w.cfg.Now())
		if err != nil || len(recs) == 0 {
			return connector.SearchPage{}, fmt.Errorf("map a searched issue: %w", err)
		}
		t, _ := recs[0].Object.(*itsm.Ticket)
		out.Items = append(out.Items, connector.SearchItem{Ticket: t, Raw: body})
	}
	return out, nil
}

// NarrowJQL restricts a query to projects (none: unchanged) without ever
// widening it: "(<query>) AND project in (...)", its ORDER BY kept last. A
// query whose parentheses or quotes do not balance could close the
// parenthesis around it and OR its way out of the filter: it is refused.
func NarrowJQL(query string, projects []string) (string, error) {
	where, order, ok := splitOrderBy(query)
	if !ok {
		return "", fmt.Errorf("%w: jql: unbalanced parentheses or quotes", connector.ErrInvalidInput)
	}
	if order != "" && !orderClause.MatchString(order) {
		return "", fmt.Errorf("%w: jql: ORDER BY takes field names, commas, ASC and DESC only", connector.ErrInvalidInput)
	}
	if len(projects) == 0 {
		return query, nil
	}
	quoted := make([]string, len(projects))
	for i, p := range projects {
		quoted[i] = strconv.Quote(p)
	}
	narrowed := "project in (" + strings.Join(quoted, ", ") + ")"
	if where != "" {
		narrowed = "(" + where + ") AND " + narrowed
	}
	if order != "" {
		narrowed += " " + order
	}
	return narrowed, nil
}

var orderClause = regexp.MustCompile(`(?i)^order\s+by\s+[\w.\[\]"' ,-]+$`)

// splitOrderBy splits a JQL query at its top-level ORDER BY (outside quotes
// and parentheses); ok is false when quotes or parentheses do not balance.
func splitOrderBy(q string) (where, order string, ok bool) {
	depth := 0
	var quote byte
	cut := -1
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
			if depth < 0 {
				return "", "", false
			}
		case cut < 0 && depth == 0 && (ch == 'o' || ch == 'O') && (i == 0 || isSpace(q[i-1])) && isOrderBy(q[i:]):
			cut = i
		}
	}
	if depth != 0 || quote != 0 {
		return "", "", false
	}
	if cut < 0 {
		return strings.TrimSpace(q), "", true
	}
	return strings.TrimSpace(q[:cut]), strings.TrimSpace(q[cut:]), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isOrderBy(s string) bool {
	f := strings.Fields(s)
	return len(f) >= 2 && strings.EqualFold(f[0], "order") && strings.EqualFold(f[1], "by")
}

// Passthrough makes a call of the connection's choosing under the site's
// REST API v3 base, as the connection.
func (w *Writer) Passthrough(ctx context.Context, conn *store.Connection, req passthrough.Request, lim passthrough.Limits) (*passthrough.Response, error) {
	if conn.CloudID == "" {
		return nil, fmt.Errorf("connection %s has no Jira site yet", conn.ID)
	}
	hc, err := w.clients.HTTPClient(ctx, conn)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(w.cfg.Endpoints.APIURL, "/") + "/ex/jira/" + conn.CloudID + "/rest/api/3"
	p := w.pacer(conn.CloudID)
	var resp *passthrough.Response
	err = w.pace(ctx, conn, onlyAfter429, func(ctx context.Context) error {
		r, err := passthrough.Do(ctx, hc, base, req, lim)
		if err != nil {
			return err
		}
		resp = r
		info := jiracloud.ParseRateInfo(r.Status, r.Header, time.Now())
		p.Observe(info)
		if r.Status == http.StatusTooManyRequests {
			// Refused before anything happened: paced and retried like
			// a sync's call.
			return &jiracloud.APIError{Status: r.Status, RetryAfter: info.RetryAfter, RateLimitReason: info.Reason}
		}
		return nil
	})
	if err != nil && resp != nil && resp.Status == http.StatusTooManyRequests {
		// Still refused after the retries: the vendor's answer, as it is.
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}
