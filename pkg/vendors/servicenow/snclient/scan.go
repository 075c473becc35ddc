package snclient

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// TimeLayout is the format of Table API date-times (UTC).
const TimeLayout = "2006-01-02 15:04:05"

// Cursor is a keyset position: the key time and sys_id of the last record
// read. The zero Cursor is the start.
type Cursor struct {
	At string `json:"at,omitempty"`
	ID string `json:"id,omitempty"`
}

// Scan reads a table in keyset order.
type Scan struct {
	// Table to read; "sys_attachment" is read through the Attachment API.
	Table string
	// Key is the time column of the keyset: sys_updated_on (default) or
	// sys_created_on (journal entries, which are never updated).
	Key string
	// Filter is an encoded query ANDed to every page ("name=incident").
	// Only conditions: the scan adds the keyset and its ORDERBY.
	Filter string
	// Since, when not zero, starts the scan at Key>=Since (inclusive: many
	// records share one second).
	Since time.Time
	// From resumes after a cursor (it wins over Since when later).
	From Cursor
	// Fields limits the columns (sysparm_fields); empty = all.
	Fields []string
	// PageSize overrides the client's.
	PageSize int
}

var (
	nameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
)

func checkName(s string) error {
	if !nameRe.MatchString(s) {
		return fmt.Errorf("servicenow: %q is not a table or field name", s)
	}
	return nil
}

// checkValue refuses what would change an encoded query's structure: an
// invalid part is silently ignored by the instance, and a query reading
// more than meant returns everything.
func checkValue(s string) error {
	if strings.ContainsAny(s, "^\n\r") || strings.Contains(s, "ORDERBY") {
		return fmt.Errorf("servicenow: query value %q contains ^ or ORDERBY", s)
	}
	return nil
}

// In is the encoded condition field IN values (validated).
func In(field string, values []string) (string, error) {
	if err := checkName(field); err != nil {
		return "", err
	}
	for _, v := range values {
		if err := checkValue(v); err != nil || strings.Contains(v, ",") {
			return "", fmt.Errorf("servicenow: IN value %q is not valid", v)
		}
	}
	return field + "IN" + strings.Join(values, ","), nil
}

func (s *Scan) query(cur Cursor) (string, error) {
	key := s.Key
	if key == "" {
		key = "sys_updated_on"
	}
	if err := checkName(key); err != nil {
		return "", err
	}
	if strings.ContainsAny(s.Filter, "\n\r") || strings.Contains(s.Filter, "ORDERBY") || strings.Contains(s.Filter, "^NQ") {
		return "", fmt.Errorf("servicenow: scan filter %q may not order or use ^NQ", s.Filter)
	}
	and := func(q string) string {
		if s.Filter == "" {
			return q
		}
		if q == "" {
			return s.Filter
		}
		return q + "^" + s.Filter
	}
	order := "^ORDERBY" + key + "^ORDERBYsys_id"
	since := ""
	if !s.Since.IsZero() {
		since = s.Since.UTC().Format(TimeLayout)
	}
	if cur.At == "" || (since != "" && cur.At < since) {
		q := ""
		if since != "" {
			q = key + ">=" + since
		}
		return strings.TrimPrefix(and(q)+order, "^"), nil
	}
	if _, err := time.Parse(TimeLayout, cur.At); err != nil {
		return "", fmt.Errorf("servicenow: cursor time %q: %w", cur.At, err)
	}
	if err := checkValue(cur.ID); err != nil {
		return "", err
	}
	// (key > At) OR (key = At AND sys_id > ID): ^NQ joins whole queries,
	// since ^OR binds to one term.
	return and(key+">"+cur.At) + "^NQ" + and(key+"="+cur.At+"^sys_id>"+cur.ID) + order, nil
}

// Page is one page of a scan: its rows (compact JSON objects) and the
// cursor after its last row.
type Page struct {
	Rows   []jsontext.Value
	Cursor Cursor
	// Total is X-Total-Count of the page's query (counted before ACLs);
	// -1 when absent.
	Total int
}

// Scan reads every record of s in (key, sys_id) order and calls fn with
// each non-empty page. Paging is by keyset: after a page with rows the
// next query starts after its last row. Rows are filtered by ACLs after
// sysparm_limit, so a page can come back short or empty while more
// records exist: an empty page is followed by its Link rel="next", and the
// scan ends only when the answer has no next link.
func (c *Client) Scan(ctx context.Context, s Scan, fn func(Page) error) error {
	table := s.Table
	if err := checkName(table); err != nil {
		return err
	}
	for _, f := range s.Fields {
		if err := checkName(f); err != nil {
			return err
		}
	}
	key := s.Key
	if key == "" {
		key = "sys_updated_on"
	}
	limit := s.PageSize
	if limit <= 0 {
		limit = c.o.PageSize
	}
	fresh := func(cur Cursor) (*url.URL, error) {
		q, err := s.query(cur)
		if err != nil {
			return nil, err
		}
		var u *url.URL
		if table == "sys_attachment" {
			u = c.attachmentURL()
		} else {
			u = c.tableURL(table, "")
		}
		v := url.Values{"sysparm_query": {q}, "sysparm_limit": {fmt.Sprint(limit)},
			"sysparm_display_value": {"false"}}
		if len(s.Fields) > 0 {
			fields := s.Fields
			for _, f := range []string{key, "sys_id"} {
				if !slices.Contains(fields, f) {
					fields = append(slices.Clone(fields), f)
				}
			}
			v.Set("sysparm_fields", strings.Join(fields, ","))
		}
		u.RawQuery = v.Encode()
		return u, nil
	}
	cur := s.From
	u, err := fresh(cur)
	if err != nil {
		return err
	}
	for {
		body, h, err := c.get(ctx, u, table)
		if err != nil {
			return err
		}
		var env struct {
			Result []jsontext.Value `json:"result"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return fmt.Errorf("servicenow: GET %s: answer is not a result list: %w", u.Path, err)
		}
		total := -1
		if n, err := fmt.Sscan(h.Get("X-Total-Count"), &total); n != 1 || err != nil {
			total = -1
		}
		next := nextLink(h.Get("Link"))
		if len(env.Result) > 0 {
			for i := range env.Result {
				if err := env.Result[i].Compact(); err != nil {
					return fmt.Errorf("servicenow: GET %s: %w", u.Path, err)
				}
			}
			last, err := cursorOf(env.Result[len(env.Result)-1], key)
			if err != nil {
				return fmt.Errorf("servicenow: GET %s: %w", u.Path, err)
			}
			cur = last
			if err := fn(Page{Rows: env.Result, Cursor: cur, Total: total}); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		if len(env.Result) > 0 {
			if u, err = fresh(cur); err != nil {
				return err
			}
			continue
		}
		// Every row of this page was hidden: skip on by offset.
		nu, err := c.sameOrigin(next)
		if err != nil {
			return err
		}
		u = nu
	}
}

// sameOrigin parses a Link target and refuses one on another host: the
// client's credentials go only to the instance.
func (c *Client) sameOrigin(link string) (*url.URL, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("servicenow: Link %q: %w", link, err)
	}
	if u.Host != c.base.Host {
		return nil, fmt.Errorf("servicenow: Link to another host %q", u.Host)
	}
	u.Scheme = c.base.Scheme
	return u, nil
}

// nextLink is the rel="next" target of a Link header.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok {
			continue
		}
		if strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) || strings.Contains(params, "rel=next") {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}

func cursorOf(row jsontext.Value, key string) (Cursor, error) {
	var m map[string]jsontext.Value
	if err := json.Unmarshal(row, &m); err != nil {
		return Cursor{}, fmt.Errorf("record: %w", err)
	}
	var c Cursor
	if err := json.Unmarshal(m[key], &c.At); err != nil || c.At == "" {
		return Cursor{}, fmt.Errorf("record without %s (keyset paging needs it)", key)
	}
	if err := json.Unmarshal(m["sys_id"], &c.ID); err != nil || c.ID == "" {
		return Cursor{}, fmt.Errorf("record without sys_id")
	}
	return c, nil
}
