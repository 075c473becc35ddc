package snsim

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Encoded queries (SERVICENOW.md §2): terms joined by ^ (AND), ^OR (OR with
// the previous term), ^NQ (OR of whole queries), ORDERBY<col> and
// ORDERBYDESC<col>. Operators: = != > >= < <= LIKE NOTLIKE STARTSWITH
// ENDSWITH IN NOT IN ISEMPTY ISNOTEMPTY; fields may be dot-walked
// (assigned_to.user_name). A part naming an unknown field or operator is
// silently ignored, as the platform does, unless the instance sets
// glide.invalid_query.returns_no_rows.

type op uint8

const (
	opEq op = iota
	opNe
	opGt
	opGe
	opLt
	opLe
	opLike
	opNotLike
	opStarts
	opEnds
	opIn
	opNotIn
	opEmpty
	opNotEmpty
)

// Longest first, so that >= is not read as >.
var ops = []struct {
	tok string
	op  op
}{
	{"ISNOTEMPTY", opNotEmpty}, {"ISEMPTY", opEmpty}, {"STARTSWITH", opStarts}, {"ENDSWITH", opEnds},
	{"NOTLIKE", opNotLike}, {"NOT LIKE", opNotLike}, {"NOT IN", opNotIn}, {"NOTIN", opNotIn}, {"LIKE", opLike},
	{"IN", opIn}, {"!=", opNe}, {">=", opGe}, {"<=", opLe}, {"=", opEq}, {">", opGt}, {"<", opLt},
}

// term is one condition, resolved against the schema.
type term struct {
	raw  string    // the part as written, for the counting fast path
	path []*column // dot-walk: every column but the last is a reference
	op   op
	val  string
	set  []string // IN / NOT IN
}

// group is an AND of OR-chains.
type group [][]term

type order struct {
	path []*column
	desc bool
}

type query struct {
	groups  []group // OR of groups (^NQ); none = everything
	orders  []order
	invalid bool // some part was ignored
}

var fieldRe = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*`)

// dateGenerate matches javascript:gs.dateGenerate('2024-01-01','10:00:00'),
// a date-time in the session user's time zone.
var dateGenerate = regexp.MustCompile(`^javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})',\s*'(\d{2}:\d{2}:\d{2})'\)$`)

// parseQuery resolves an encoded query against a table. tz is the caller's
// time zone for gs.dateGenerate.
func (in *Inst) parseQuery(sc *schema, q string, tz *time.Location) query {
	var out query
	for _, part := range splitNQ(q) {
		var g group
		for _, raw := range strings.Split(part, "^") {
			if raw == "" || raw == "EQ" {
				continue
			}
			if rest, ok := strings.CutPrefix(raw, "ORDERBYDESC"); ok {
				if p := in.resolvePath(sc, rest); p != nil {
					out.orders = append(out.orders, order{path: p, desc: true})
				} else {
					out.invalid = true
				}
				continue
			}
			if rest, ok := strings.CutPrefix(raw, "ORDERBY"); ok {
				if p := in.resolvePath(sc, rest); p != nil {
					out.orders = append(out.orders, order{path: p})
				} else {
					out.invalid = true
				}
				continue
			}
			orChain := false
			if rest, ok := strings.CutPrefix(raw, "OR"); ok && len(g) > 0 && fieldRe.MatchString(rest) {
				raw, orChain = rest, true
			}
			t, ok := in.parseTerm(sc, raw, tz)
			if !ok {
				out.invalid = true
				continue
			}
			if orChain {
				g[len(g)-1] = append(g[len(g)-1], t)
			} else {
				g = append(g, []term{t})
			}
		}
		out.groups = append(out.groups, g)
	}
	return out
}

func splitNQ(q string) []string {
	if q == "" {
		return nil
	}
	return strings.Split(q, "^NQ")
}

func (in *Inst) parseTerm(sc *schema, raw string, tz *time.Location) (term, bool) {
	field := fieldRe.FindString(raw)
	if field == "" {
		return term{}, false
	}
	path := in.resolvePath(sc, field)
	if path == nil {
		return term{}, false
	}
	rest := raw[len(field):]
	for _, o := range ops {
		v, ok := strings.CutPrefix(rest, o.tok)
		if !ok {
			continue
		}
		t := term{raw: raw, path: path, op: o.op, val: v}
		last := path[len(path)-1]
		if last.kind == kDateTime {
			if m := dateGenerate.FindStringSubmatch(v); m != nil {
				if lt, err := time.ParseInLocation(snTime, m[1]+" "+m[2], tz); err == nil {
					t.val = fmtTime(lt)
				}
			}
		}
		if o.op == opIn || o.op == opNotIn {
			t.set = strings.Split(v, ",")
		}
		if (o.op == opEmpty || o.op == opNotEmpty) && v != "" {
			return term{}, false
		}
		return t, true
	}
	return term{}, false
}

// resolvePath resolves "a.b.c": every step but the last must be a reference.
func (in *Inst) resolvePath(sc *schema, field string) []*column {
	var path []*column
	cur := sc
	for i, name := range strings.Split(field, ".") {
		if cur == nil {
			return nil
		}
		c := cur.col(name)
		if c == nil {
			return nil
		}
		path = append(path, c)
		if i < strings.Count(field, ".") {
			if c.kind != kRef {
				return nil
			}
			cur = in.schemaOf(c.ref)
		}
	}
	return path
}

// schemaOf returns the schema of a referenced table; "task" resolves to
// incident's (the task columns are the same).
func (in *Inst) schemaOf(table string) *schema {
	if table == "task" {
		table = "incident"
	}
	if t := in.d.tbl(table); t != nil {
		return t.sc
	}
	return nil
}

// deref finds the record a reference points at; "task" searches the task
// tables.
func (in *Inst) deref(table, sysID string) (*schema, *record) {
	if sysID == "" {
		return nil, nil
	}
	if table == "task" {
		for _, tn := range taskTables {
			t := in.d.tbl(tn)
			if r := t.byID[sysID]; r != nil {
				return t.sc, r
			}
		}
		return nil, nil
	}
	t := in.d.tbl(table)
	if t == nil {
		return nil, nil
	}
	if r := t.byID[sysID]; r != nil {
		return t.sc, r
	}
	return nil, nil
}

// value reads a (dot-walked) field; a broken chain reads "".
func (in *Inst) value(r *record, path []*column) string {
	for i, c := range path {
		v := r.get(c)
		if i == len(path)-1 {
			return v
		}
		_, next := in.deref(c.ref, v)
		if next == nil {
			return ""
		}
		r = next
	}
	return ""
}

func (q *query) match(in *Inst, r *record) bool {
	if len(q.groups) == 0 {
		return true
	}
	for _, g := range q.groups {
		if g.match(in, r) {
			return true
		}
	}
	return false
}

func (g group) match(in *Inst, r *record) bool {
	for _, chain := range g {
		ok := false
		for _, t := range chain {
			if t.match(in, r) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (t *term) match(in *Inst, r *record) bool {
	var v string
	if len(t.path) == 1 {
		v = r.get(t.path[0])
	} else {
		v = in.value(r, t.path)
	}
	k := t.path[len(t.path)-1].kind
	switch t.op {
	case opEq:
		return v == t.val
	case opNe:
		return v != t.val
	case opGt:
		return compare(k, v, t.val) > 0
	case opGe:
		return compare(k, v, t.val) >= 0
	case opLt:
		return compare(k, v, t.val) < 0
	case opLe:
		return compare(k, v, t.val) <= 0
	case opLike:
		return containsFold(v, t.val)
	case opNotLike:
		return !containsFold(v, t.val)
	case opStarts:
		return len(v) >= len(t.val) && strings.EqualFold(v[:len(t.val)], t.val)
	case opEnds:
		return len(v) >= len(t.val) && strings.EqualFold(v[len(v)-len(t.val):], t.val)
	case opIn:
		return slices.Contains(t.set, v)
	case opNotIn:
		return !slices.Contains(t.set, v)
	case opEmpty:
		return v == ""
	case opNotEmpty:
		return v != ""
	}
	return false
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// compare orders two values of a column kind: integers numerically (when
// both parse), everything else (dates in their sortable layout) as strings.
func compare(k kind, a, b string) int {
	if k == kInt || k == kChoice {
		x, e1 := strconv.ParseInt(a, 10, 64)
		y, e2 := strconv.ParseInt(b, 10, 64)
		if e1 == nil && e2 == nil {
			return cmp.Compare(x, y)
		}
	}
	return strings.Compare(a, b)
}

// orderKey identifies a sort order for the cache.
func orderKey(os []order) string {
	var b strings.Builder
	for _, o := range os {
		for _, c := range o.path {
			b.WriteString(c.name)
			b.WriteByte('.')
		}
		if o.desc {
			b.WriteString("D")
		}
		b.WriteByte('^')
	}
	return b.String()
}

// ordered returns the table's rows in the query's order. Ties keep insertion
// order: a keyset must name sys_id as its last key. Caller holds in.mu.
func (in *Inst) ordered(t *table, os []order) []*record {
	if len(os) == 0 {
		return t.rows
	}
	key := orderKey(os)
	in.sortMu.Lock()
	defer in.sortMu.Unlock()
	if s, ok := t.sorted[key]; ok && s.version == t.version {
		return s.rows
	}
	rows := slices.Clone(t.rows)
	slices.SortStableFunc(rows, func(a, b *record) int {
		for _, o := range os {
			k := o.path[len(o.path)-1].kind
			var c int
			if len(o.path) == 1 {
				c = compare(k, a.get(o.path[0]), b.get(o.path[0]))
			} else {
				c = compare(k, in.value(a, o.path), in.value(b, o.path))
			}
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	t.sorted[key] = &sortedRows{version: t.version, rows: rows}
	return rows
}

// start is where a scan of rows sorted by os can begin: when every ^NQ group
// has a lower bound (>, >= or =, outside an OR chain) on the first order
// column, rows before the smallest bound cannot match. This keeps keyset
// paging over 100,000 records cheap.
func (q *query) start(in *Inst, rows []*record, os []order) int {
	if len(os) == 0 || os[0].desc || len(os[0].path) != 1 || len(q.groups) == 0 {
		return 0
	}
	c := os[0].path[0]
	bound, have := "", false
	for _, g := range q.groups {
		gb, ok := "", false
		for _, chain := range g {
			if len(chain) != 1 || len(chain[0].path) != 1 || chain[0].path[0] != c {
				continue
			}
			switch chain[0].op {
			case opGt, opGe, opEq:
				if !ok || compare(c.kind, chain[0].val, gb) > 0 {
					gb, ok = chain[0].val, true
				}
			}
		}
		if !ok {
			return 0
		}
		if !have || compare(c.kind, gb, bound) < 0 {
			bound, have = gb, true
		}
	}
	i, _ := slices.BinarySearchFunc(rows, bound, func(r *record, b string) int {
		if compare(c.kind, r.get(c), b) < 0 {
			return -1
		}
		return 1
	})
	return i
}

// find returns the page [offset, offset+limit) of the rows matching q in
// its order. With count it also returns the number of matches (for
// X-Total-Count): a first page of a keyset-shaped query is counted with
// prefix sums (fastCount); otherwise the match list is built once and kept,
// so paging one query by offset (following Link) scans once. Without count
// (sysparm_no_count) it stops after the page and reports whether more rows
// match. key identifies the query (its text and the caller's zone). Caller
// holds in.mu.
func (in *Inst) find(t *table, q query, key string, offset, limit int, count bool) (page []*record, total int, more bool) {
	if q.invalid && in.cfg.InvalidQueryReturnsNoRows {
		return nil, 0, false
	}
	rows := in.ordered(t, q.orders)
	start := q.start(in, rows, q.orders)
	if count {
		all := in.cachedMatches(t, key)
		if all == nil && offset == 0 {
			if n, ok := in.fastCount(t, q, key, rows, start); ok {
				page, _ = in.scan(q, rows[start:], 0, limit)
				return page, n, limit < n
			}
		}
		if all == nil {
			all = []*record{}
			for _, r := range rows[start:] {
				if q.match(in, r) {
					all = append(all, r)
				}
			}
			in.keepMatches(t, key, all)
		}
		if offset < len(all) {
			page = all[offset:min(len(all), offset+limit)]
		}
		return page, len(all), offset+limit < len(all)
	}
	page, more = in.scan(q, rows[start:], offset, limit)
	return page, -1, more
}

// scan collects matches [offset, offset+limit) and reports whether more
// rows match after them.
func (in *Inst) scan(q query, rows []*record, offset, limit int) ([]*record, bool) {
	var page []*record
	seen := 0
	for _, r := range rows {
		if !q.match(in, r) {
			continue
		}
		if seen >= offset {
			if len(page) == limit {
				return page, true
			}
			page = append(page, r)
		}
		seen++
	}
	return page, false
}

// fastCount counts the matches of a keyset-shaped query without scanning
// the whole table: every ^NQ group is the same residual filter R plus
// bounds on the first order column K (and any other terms), and one group
// is R plus only a lower bound on K. Past that bound's position p1 a row
// matches exactly when it matches R, which prefix sums of R over the
// sorted rows answer; rows in [start, p1) are evaluated one by one. This
// is what keeps a counted keyset sync over 100,000 records linear.
func (in *Inst) fastCount(t *table, q query, key string, rows []*record, start int) (int, bool) {
	if len(q.orders) == 0 || q.orders[0].desc || len(q.orders[0].path) != 1 || len(q.groups) == 0 {
		return 0, false
	}
	k := q.orders[0].path[0]
	isBound := func(c []term) bool {
		return len(c) == 1 && len(c[0].path) == 1 && (c[0].path[0] == k || c[0].path[0].name == "sys_id")
	}
	residual := ""
	var residualChains [][]term
	p1 := -1
	for i, g := range q.groups {
		var texts []string
		var chains [][]term
		lower, onlyLower := -1, true
		for _, c := range g {
			if isBound(c) {
				if c[0].path[0] == k && (c[0].op == opGt || c[0].op == opGe) {
					pos := bound(rows, k, c[0].val, c[0].op == opGt)
					lower = max(lower, pos)
				} else {
					onlyLower = false
				}
				continue
			}
			raws := make([]string, len(c))
			for j, tm := range c {
				raws[j] = tm.raw
			}
			texts = append(texts, strings.Join(raws, "^OR"))
			chains = append(chains, c)
		}
		slices.Sort(texts)
		r := strings.Join(texts, "^")
		if i == 0 {
			residual, residualChains = r, chains
		} else if r != residual {
			return 0, false
		}
		if onlyLower && lower >= 0 && (p1 < 0 || lower < p1) {
			p1 = lower
		}
	}
	if p1 < 0 {
		return 0, false
	}
	p1 = max(p1, start)
	n := 0
	for _, r := range rows[start:p1] {
		if q.match(in, r) {
			n++
		}
	}
	prefix := in.prefixCounts(t, orderKey(q.orders)+"|"+residual+"|"+key[strings.LastIndexByte(key, '|')+1:], rows, residualChains)
	if prefix == nil {
		return n + len(rows) - p1, true
	}
	return n + int(prefix[len(rows)]-prefix[p1]), true
}

// bound is the first position of rows (sorted by column k) whose value is
// above v (strict) or at least v.
func bound(rows []*record, k *column, v string, strict bool) int {
	i, _ := slices.BinarySearchFunc(rows, v, func(r *record, b string) int {
		c := compare(k.kind, r.get(k), b)
		if c < 0 || strict && c == 0 {
			return -1
		}
		return 1
	})
	return i
}

type prefixCache struct {
	version uint64
	key     string
	sums    []int32
}

// prefixCounts returns prefix sums of the residual filter over the sorted
// rows (nil for an empty filter), kept until the table changes.
func (in *Inst) prefixCounts(t *table, key string, rows []*record, chains [][]term) []int32 {
	if len(chains) == 0 {
		return nil
	}
	in.sortMu.Lock()
	for _, p := range t.prefixes {
		if p.key == key && p.version == t.version {
			in.sortMu.Unlock()
			return p.sums
		}
	}
	in.sortMu.Unlock()
	g := group(chains)
	sums := make([]int32, len(rows)+1)
	for i, r := range rows {
		sums[i+1] = sums[i]
		if g.match(in, r) {
			sums[i+1]++
		}
	}
	in.sortMu.Lock()
	defer in.sortMu.Unlock()
	t.prefixes = append(t.prefixes, &prefixCache{version: t.version, key: key, sums: sums})
	if len(t.prefixes) > keptMatchLists {
		t.prefixes = t.prefixes[1:]
	}
	return sums
}

// matchCache keeps the match lists of a table's latest queries.
type matchCache struct {
	version uint64
	key     string
	rows    []*record
}

const keptMatchLists = 4

func (in *Inst) cachedMatches(t *table, key string) []*record {
	in.sortMu.Lock()
	defer in.sortMu.Unlock()
	for _, m := range t.matches {
		if m.key == key && m.version == t.version {
			return m.rows
		}
	}
	return nil
}

func (in *Inst) keepMatches(t *table, key string, rows []*record) {
	in.sortMu.Lock()
	defer in.sortMu.Unlock()
	t.matches = append(t.matches, &matchCache{version: t.version, key: key, rows: rows})
	if len(t.matches) > keptMatchLists {
		t.matches = t.matches[1:]
	}
}
