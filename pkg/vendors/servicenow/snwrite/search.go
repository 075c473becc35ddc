package snwrite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsync"
)

// Native search: an encoded query (sysparm_query) run over the
// connection's tables one after the other, paged by offset while the
// instance's Link header names a next page. The instance silently ignores
// a part of a query it does not understand (a misspelt field reads as no
// condition at all), so a query is parsed and every field it names is
// checked against the table's records before it is sent: what cannot be
// checked is refused, never sent wider than written.

// MaxQuery bounds a native search's query.
const MaxQuery = 4000

// Op is an operator of an encoded query condition.
type Op string

// ops an encoded query condition may use, longest first so that ">=" is
// not read as ">" (SERVICENOW.md §2).
var ops = []Op{"ISNOTEMPTY", "ISEMPTY", "STARTSWITH", "ENDSWITH", "NOTLIKE", "NOT LIKE", "NOT IN", "NOTIN", "LIKE",
	"IN", "!=", ">=", "<=", "=", ">", "<"}

// Term is one part of an encoded query: a condition (Or: joined to the
// previous one by ^OR) or an ORDERBY.
type Term struct {
	Field string
	Op    Op
	Value string
	Or    bool
	// Order is "asc" or "desc" for an ORDERBY / ORDERBYDESC part.
	Order string
}

var (
	fieldPath = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*`)
	// Keywords that join or change whole queries, or run code: the
	// conditions of ^NQ do not keep the rest of the query, and RLQUERY,
	// SUBQUERY and javascript: values cannot be checked.
	refusedParts = []string{"NQ", "EQ", "RLQUERY", "SUBQUERY", "ENDRLQUERY", "ENDSUBQUERY", "GOTO"}
)

// ParseQuery reads an encoded query into its terms. It refuses what it
// cannot read exactly: an empty part, an unknown operator, a field that is
// not a lowercase name (dot-walks allowed), ^NQ, related-list and
// subqueries, scripts (javascript:), an ^OR with nothing before it.
func ParseQuery(q string) ([]Term, error) {
	if strings.TrimSpace(q) == "" {
		return nil, invalid("sysparm_query is required")
	}
	if len(q) > MaxQuery {
		return nil, invalid("sysparm_query exceeds %d characters", MaxQuery)
	}
	if strings.ContainsAny(q, "\r\n") {
		return nil, invalid("sysparm_query: line breaks are not allowed")
	}
	var out []Term
	conds := 0
	for i, part := range strings.Split(q, "^") {
		if part == "" {
			return nil, invalid("sysparm_query: part %d is empty (^^ or a trailing ^)", i+1)
		}
		for _, k := range refusedParts {
			if strings.HasPrefix(part, k) && !fieldPath.MatchString(part) {
				return nil, invalid("sysparm_query: %s is not supported; use conditions joined by ^ and ^OR", k)
			}
		}
		if strings.Contains(strings.ToLower(part), "javascript:") {
			return nil, invalid("sysparm_query: scripts (javascript:) are not allowed")
		}
		if rest, ok := strings.CutPrefix(part, "ORDERBYDESC"); ok {
			if !fieldPath.MatchString(rest) || fieldPath.FindString(rest) != rest {
				return nil, invalid("sysparm_query: ORDERBYDESC takes a field name, not %q", rest)
			}
			out = append(out, Term{Field: rest, Order: "desc"})
			continue
		}
		if rest, ok := strings.CutPrefix(part, "ORDERBY"); ok {
			if !fieldPath.MatchString(rest) || fieldPath.FindString(rest) != rest {
				return nil, invalid("sysparm_query: ORDERBY takes a field name, not %q", rest)
			}
			out = append(out, Term{Field: rest, Order: "asc"})
			continue
		}
		t := Term{}
		if rest, ok := strings.CutPrefix(part, "OR"); ok && fieldPath.MatchString(rest) {
			if conds == 0 {
				return nil, invalid("sysparm_query: ^OR%s has no condition before it", rest)
			}
			part, t.Or = rest, true
		}
		t.Field = fieldPath.FindString(part)
		if t.Field == "" {
			return nil, invalid("sysparm_query: part %q does not start with a field name", part)
		}
		rest := part[len(t.Field):]
		for _, op := range ops {
			if v, ok := strings.CutPrefix(rest, string(op)); ok {
				t.Op, t.Value = op, v
				break
			}
		}
		if t.Op == "" {
			return nil, invalid("sysparm_query: part %q has no known operator (%s)", part, opNames())
		}
		if (t.Op == "ISEMPTY" || t.Op == "ISNOTEMPTY") && t.Value != "" {
			return nil, invalid("sysparm_query: %s takes no value (%q)", t.Op, part)
		}
		out = append(out, t)
		conds++
	}
	return out, nil
}

func opNames() string {
	names := make([]string, len(ops))
	for i, o := range ops {
		names[i] = string(o)
	}
	return strings.Join(names, " ")
}

// encode writes terms back as an encoded query, with the orders last and
// sys_id as the final order, so that offset paging has a total order.
func encode(terms []Term) string {
	var conds, orders []string
	for _, t := range terms {
		switch {
		case t.Order == "asc":
			orders = append(orders, "ORDERBY"+t.Field)
		case t.Order == "desc":
			orders = append(orders, "ORDERBYDESC"+t.Field)
		case t.Or:
			conds = append(conds, "OR"+t.Field+string(t.Op)+t.Value)
		default:
			conds = append(conds, t.Field+string(t.Op)+t.Value)
		}
	}
	if len(orders) == 0 {
		orders = append(orders, "ORDERBYsys_created_on")
	}
	orders = append(orders, "ORDERBYsys_id")
	return strings.Join(append(conds, orders...), "^")
}

// searchCursor is a position: a table of the connection and an offset in
// it.
type searchCursor struct {
	table  string
	offset int
}

func (c searchCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1|" + c.table + "|" + strconv.Itoa(c.offset)))
}

func parseCursor(s string, tables []string) (searchCursor, error) {
	if s == "" {
		return searchCursor{table: tables[0]}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(b), "|")
	if err != nil || len(parts) != 3 || parts[0] != "v1" || !slices.Contains(tables, parts[1]) {
		return searchCursor{}, invalid("cursor: not a cursor of this connection's search")
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 0 {
		return searchCursor{}, invalid("cursor: not a cursor of this connection's search")
	}
	return searchCursor{table: parts[1], offset: n}, nil
}

// maxEmptyPages bounds how many empty pages (ACLs hide rows after the
// limit; a table with no match) one search call reads past.
const maxEmptyPages = 5

// QueryParam names the search API's query parameter for ServiceNow
// connections.
func (w *Writer) QueryParam() string { return "sysparm_query" }

// SearchTickets runs an encoded query over the connection's tables, one
// page from cursor.
func (w *Writer) SearchTickets(ctx context.Context, conn *store.Connection, query, cursor string, limit int) (connector.SearchPage, error) {
	terms, err := ParseQuery(query)
	if err != nil {
		return connector.SearchPage{}, err
	}
	tables := snsync.Tables(conn)
	cur, err := parseCursor(cursor, tables)
	if err != nil {
		return connector.SearchPage{}, err
	}
	if limit <= 0 {
		limit = 50
	}
	c, err := w.client(ctx, conn)
	if err != nil {
		return connector.SearchPage{}, err
	}
	cols := &columns{c: c, of: map[string]map[string]string{}}
	m := servicenow.MappingOf(conn)
	out := connector.SearchPage{Items: []connector.SearchItem{}}
	for range maxEmptyPages {
		empty, err := cols.check(ctx, cur.table, terms)
		if err != nil {
			return connector.SearchPage{}, err
		}
		var page snclient.ListPage
		if !empty {
			if page, err = c.List(ctx, cur.table, encode(terms), nil, cur.offset, limit); err != nil {
				return connector.SearchPage{}, vendorError(err)
			}
		}
		for _, row := range page.Rows {
			recs, err := m.MapSync(raw.TypeTicket, row, w.cfg.Now())
			if err != nil || len(recs) == 0 {
				return connector.SearchPage{}, fmt.Errorf("map a searched %s record: %w", cur.table, err)
			}
			t, _ := recs[0].Object.(*itsm.Ticket)
			out.Items = append(out.Items, connector.SearchItem{Ticket: t, Raw: append([]byte(nil), row...)})
		}
		next := ""
		if page.Next != "" {
			next = searchCursor{table: cur.table, offset: cur.offset + limit}.String()
		} else if i := slices.Index(tables, cur.table); i+1 < len(tables) {
			next = searchCursor{table: tables[i+1]}.String()
		}
		out.NextCursor = next
		if len(out.Items) > 0 || next == "" {
			return out, nil
		}
		cur, _ = parseCursor(next, tables)
	}
	return out, nil
}

// columns are the field names of tables as their records show them, with
// the table a reference field points at ("" for other fields).
type columns struct {
	c  *snclient.Client
	of map[string]map[string]string
}

// sampleSize is how many records of a table are read to learn its fields:
// ACLs may hide some, and a reference field reads "" where it is empty.
const sampleSize = 20

// load reads the fields of a table; empty reports a table with no records
// at all.
func (cs *columns) load(ctx context.Context, table string) (map[string]string, bool, error) {
	if m, ok := cs.of[table]; ok {
		return m, false, nil
	}
	page, err := cs.c.List(ctx, table, "ORDERBYDESCsys_updated_on", nil, 0, sampleSize)
	if errors.Is(err, snclient.ErrForbidden) || errors.Is(err, snclient.ErrNotFound) {
		return nil, false, invalid("sysparm_query: the fields of %s cannot be checked (the connection may not read it)", table)
	}
	if err != nil {
		return nil, false, vendorError(err)
	}
	if len(page.Rows) == 0 {
		if page.Total == 0 {
			return nil, true, nil
		}
		return nil, false, invalid("sysparm_query: the fields of %s cannot be checked (no record of it is readable)", table)
	}
	m := map[string]string{}
	for _, row := range page.Rows {
		for name, v := range servicenowRow(row) {
			if ref := refTable(v); ref != "" {
				m[name] = ref
			} else if _, ok := m[name]; !ok {
				m[name] = ""
			}
		}
	}
	cs.of[table] = m
	return m, false, nil
}

// refTable is the table of a reference value {"link": ".../api/now/table/<t>/<id>", "value"}.
func refTable(v []byte) string {
	if len(v) == 0 || v[0] != '{' {
		return ""
	}
	s := string(v)
	i := strings.Index(s, "/api/now/table/")
	if i < 0 {
		return ""
	}
	rest := s[i+len("/api/now/table/"):]
	t, _, ok := strings.Cut(rest, "/")
	if !ok || !fieldPath.MatchString(t) || strings.Contains(t, ".") {
		return ""
	}
	return t
}

// check verifies that every field of terms is a field of table (walking
// references); empty reports a table with no records.
func (cs *columns) check(ctx context.Context, table string, terms []Term) (bool, error) {
	cols, empty, err := cs.load(ctx, table)
	if err != nil || empty {
		return empty, err
	}
	for _, t := range terms {
		cur, curTable := cols, table
		steps := strings.Split(t.Field, ".")
		for i, step := range steps {
			ref, ok := cur[step]
			if !ok {
				return false, invalid("sysparm_query: %s has no field %q (in %q)", curTable, step, t.Field)
			}
			if i == len(steps)-1 {
				break
			}
			if ref == "" {
				return false, invalid("sysparm_query: %s.%s is not a reference that can be walked (in %q)", curTable, step, t.Field)
			}
			next, refEmpty, err := cs.load(ctx, ref)
			if err != nil {
				return false, err
			}
			if refEmpty {
				return false, invalid("sysparm_query: the fields of %s cannot be checked (it has no records)", ref)
			}
			cur, curTable = next, ref
		}
	}
	return false, nil
}
