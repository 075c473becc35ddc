package jirasim

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A JQL subset: what the platform's searches use (JIRA.md §5) and what
// dynamic-webhook filters allow (JIRA.md §2). One parser, two validators.

type tokKind int

const (
	tkEOF tokKind = iota
	tkWord
	tkString
	tkOp
	tkLParen
	tkRParen
	tkComma
)

type tok struct {
	kind tokKind
	s    string
	pos  int // 1-based character position, for error messages
}

func lexJQL(src string) ([]tok, error) {
	var out []tok
	rs := []rune(src)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(':
			out = append(out, tok{tkLParen, "(", i + 1})
			i++
		case r == ')':
			out = append(out, tok{tkRParen, ")", i + 1})
			i++
		case r == ',':
			out = append(out, tok{tkComma, ",", i + 1})
			i++
		case r == '"' || r == '\'':
			start := i
			var b strings.Builder
			i++
			for ; i < len(rs) && rs[i] != r; i++ {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
				}
				b.WriteRune(rs[i])
			}
			if i >= len(rs) {
				return nil, fmt.Errorf("Error in the JQL Query: The quoted string '%s' has not been completed. (line 1, character %d)", string(rs[start:]), start+1)
			}
			i++
			out = append(out, tok{tkString, b.String(), start + 1})
		case strings.ContainsRune("=!<>~", r):
			start := i
			op := string(r)
			if i+1 < len(rs) && rs[i+1] == '=' && r != '=' && r != '~' || r == '!' && i+1 < len(rs) && rs[i+1] == '~' {
				op += string(rs[i+1])
			}
			if op == "!" {
				return nil, fmt.Errorf("Error in the JQL Query: The character '!' is a reserved JQL character. (line 1, character %d)", start+1)
			}
			i += len([]rune(op))
			out = append(out, tok{tkOp, op, start + 1})
		default:
			start := i
			for i < len(rs) && !unicode.IsSpace(rs[i]) && !strings.ContainsRune("()\",'=!<>~", rs[i]) {
				i++
			}
			out = append(out, tok{tkWord, string(rs[start:i]), start + 1})
		}
	}
	out = append(out, tok{kind: tkEOF, pos: len(rs) + 1})
	return out, nil
}

type jqlVal struct {
	s      string
	quoted bool
}

type jqlClause struct {
	field string // lower case
	raw   string // as written
	op    string // = != > >= < <= ~ !~ in "not in" is "is not"
	vals  []jqlVal
	empty bool   // operand EMPTY / NULL
	fn    string // operand is a function call
}

type jqlNode struct {
	op   string // and | or | not | clause
	kids []*jqlNode
	cl   *jqlClause
}

type orderKey struct {
	field string
	desc  bool
}

type jqlQuery struct {
	where *jqlNode // nil = no restriction (unbounded)
	order []orderKey
}

type jqlParser struct {
	toks []tok
	i    int
}

func (p *jqlParser) peek() tok { return p.toks[p.i] }
func (p *jqlParser) next() tok { t := p.toks[p.i]; p.i++; return t }

func (p *jqlParser) isKw(kw string) bool {
	t := p.peek()
	return t.kind == tkWord && strings.EqualFold(t.s, kw)
}

func keyword(s string) bool {
	switch strings.ToLower(s) {
	case "and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc":
		return true
	}
	return false
}

func errAt(t tok, format string, a ...any) error {
	return fmt.Errorf("Error in the JQL Query: "+format+" (line 1, character %d)", append(a, t.pos)...)
}

func describe(t tok) string {
	if t.kind == tkEOF {
		return "end of query"
	}
	return "'" + t.s + "'"
}

func parseJQL(src string) (*jqlQuery, error) {
	toks, err := lexJQL(src)
	if err != nil {
		return nil, err
	}
	p := &jqlParser{toks: toks}
	q := &jqlQuery{}
	if !p.isKw("order") && p.peek().kind != tkEOF {
		if q.where, err = p.parseOr(); err != nil {
			return nil, err
		}
	}
	if p.isKw("order") {
		p.next()
		if !p.isKw("by") {
			return nil, errAt(p.peek(), "Expecting 'by' but got %s.", describe(p.peek()))
		}
		p.next()
		for {
			t := p.next()
			if t.kind != tkWord && t.kind != tkString || t.kind == tkWord && keyword(t.s) {
				return nil, errAt(t, "Expecting a field name but got %s.", describe(t))
			}
			k := orderKey{field: strings.ToLower(t.s)}
			if p.isKw("asc") {
				p.next()
			} else if p.isKw("desc") {
				p.next()
				k.desc = true
			}
			q.order = append(q.order, k)
			if p.peek().kind != tkComma {
				break
			}
			p.next()
		}
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, errAt(t, "Expecting either 'OR' or 'AND' but got %s.", describe(t))
	}
	return q, nil
}

func (p *jqlParser) parseOr() (*jqlNode, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKw("or") {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &jqlNode{op: "or", kids: []*jqlNode{left, right}}
	}
	return left, nil
}

func (p *jqlParser) parseAnd() (*jqlNode, error) {
	left, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isKw("and") {
		p.next()
		right, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		left = &jqlNode{op: "and", kids: []*jqlNode{left, right}}
	}
	return left, nil
}

func (p *jqlParser) parseNot() (*jqlNode, error) {
	if p.isKw("not") {
		p.next()
		k, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &jqlNode{op: "not", kids: []*jqlNode{k}}, nil
	}
	if p.peek().kind == tkLParen {
		p.next()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tkRParen {
			return nil, errAt(t, "Expecting ')' but got %s.", describe(t))
		}
		return n, nil
	}
	return p.parseClause()
}

func (p *jqlParser) parseClause() (*jqlNode, error) {
	ft := p.next()
	if ft.kind != tkWord && ft.kind != tkString || ft.kind == tkWord && keyword(ft.s) {
		return nil, errAt(ft, "Expecting a field name but got %s.", describe(ft))
	}
	cl := &jqlClause{field: strings.ToLower(ft.s), raw: ft.s}
	ot := p.next()
	switch {
	case ot.kind == tkOp:
		cl.op = ot.s
	case ot.kind == tkWord && strings.EqualFold(ot.s, "in"):
		cl.op = "in"
	case ot.kind == tkWord && strings.EqualFold(ot.s, "not") && p.isKw("in"):
		p.next()
		cl.op = "not in"
	case ot.kind == tkWord && strings.EqualFold(ot.s, "is"):
		cl.op = "is"
		if p.isKw("not") {
			p.next()
			cl.op = "is not"
		}
	default:
		return nil, errAt(ot, "Expecting operator but got %s. Valid operators are '=', '!=', '~', '!~', '>', '>=', '<', '<=', 'IN', 'NOT IN', 'IS' and 'IS NOT'.", describe(ot))
	}
	switch cl.op {
	case "in", "not in":
		if t := p.next(); t.kind != tkLParen {
			if t.kind == tkWord && p.peek().kind == tkLParen {
				cl.fn = t.s
				return &jqlNode{op: "clause", cl: cl}, p.skipArgs()
			}
			return nil, errAt(t, "Expecting '(' but got %s.", describe(t))
		}
		for {
			v, err := p.parseValue(cl)
			if err != nil {
				return nil, err
			}
			if v != nil {
				cl.vals = append(cl.vals, *v)
			}
			t := p.next()
			if t.kind == tkRParen {
				break
			}
			if t.kind != tkComma {
				return nil, errAt(t, "Expecting ',' or ')' but got %s.", describe(t))
			}
		}
	case "is", "is not":
		t := p.next()
		if !(t.kind == tkWord && (strings.EqualFold(t.s, "empty") || strings.EqualFold(t.s, "null"))) {
			return nil, errAt(t, "Expecting 'EMPTY' or 'NULL' but got %s.", describe(t))
		}
		cl.empty = true
	default:
		v, err := p.parseValue(cl)
		if err != nil {
			return nil, err
		}
		if v != nil {
			cl.vals = append(cl.vals, *v)
		}
	}
	return &jqlNode{op: "clause", cl: cl}, nil
}

// parseValue reads one operand; EMPTY/NULL set cl.empty and functions set
// cl.fn (both return nil).
func (p *jqlParser) parseValue(cl *jqlClause) (*jqlVal, error) {
	t := p.next()
	switch t.kind {
	case tkString:
		return &jqlVal{s: t.s, quoted: true}, nil
	case tkWord:
		if strings.EqualFold(t.s, "empty") || strings.EqualFold(t.s, "null") {
			cl.empty = true
			return nil, nil
		}
		if p.peek().kind == tkLParen {
			cl.fn = t.s
			return nil, p.skipArgs()
		}
		if keyword(t.s) {
			return nil, errAt(t, "Expecting either a value, list or function but got %s.", describe(t))
		}
		return &jqlVal{s: t.s}, nil
	}
	return nil, errAt(t, "Expecting either a value, list or function but got %s.", describe(t))
}

func (p *jqlParser) skipArgs() error {
	p.next() // (
	for depth := 1; depth > 0; {
		t := p.next()
		switch t.kind {
		case tkEOF:
			return errAt(t, "Expecting ')' but got %s.", describe(t))
		case tkLParen:
			depth++
		case tkRParen:
			depth--
		}
	}
	return nil
}

func walkClauses(n *jqlNode, fn func(*jqlClause) error) error {
	if n == nil {
		return nil
	}
	if n.op == "clause" {
		return fn(n.cl)
	}
	for _, k := range n.kids {
		if err := walkClauses(k, fn); err != nil {
			return err
		}
	}
	return nil
}

var (
	reCustomField = regexp.MustCompile(`^(cf\[\d+\]|customfield_\d+)$`)
	reProperty    = regexp.MustCompile(`^issue\.property\[[^\]]+\](\.[\w.]+)?$`)
)

// validateWebhookJQL enforces the dynamic-webhook subset (JIRA.md §2):
// fields issueKey, project, issuetype, status, assignee, reporter,
// issue.property, cf[id]; operators = != IN NOT IN; no functions, no ORDER BY.
// The exact Jira error texts are UNCONFIRMED.
func validateWebhookJQL(src string) (*jqlQuery, error) {
	if strings.TrimSpace(src) == "" {
		// Whether empty JQL is accepted for 3LO apps is UNCONFIRMED; the spec
		// marks jqlFilter required, so the simulator refuses it.
		return nil, errors.New("jqlFilter is required")
	}
	q, err := parseJQL(src)
	if err != nil {
		return nil, err
	}
	if len(q.order) > 0 {
		return nil, errors.New("ORDER BY is not supported in webhook JQL filters")
	}
	if q.where == nil {
		return nil, errors.New("jqlFilter must contain a search restriction")
	}
	var notErr error
	var checkNot func(n *jqlNode)
	checkNot = func(n *jqlNode) {
		if n.op == "not" {
			notErr = errors.New("the NOT keyword is not supported in webhook JQL filters")
		}
		for _, k := range n.kids {
			checkNot(k)
		}
	}
	checkNot(q.where)
	if notErr != nil {
		return nil, notErr
	}
	err = walkClauses(q.where, func(cl *jqlClause) error {
		switch {
		case slices.Contains([]string{"issuekey", "project", "issuetype", "status", "assignee", "reporter"}, cl.field):
		case reCustomField.MatchString(cl.field) && strings.HasPrefix(cl.field, "cf["):
		case reProperty.MatchString(cl.field):
		default:
			return fmt.Errorf("field '%s' is not supported in webhook JQL filters; supported: issueKey, project, issuetype, status, assignee, reporter, issue.property, cf[id]", cl.raw)
		}
		if cl.fn != "" {
			return fmt.Errorf("function '%s' is not supported in webhook JQL filters", cl.fn)
		}
		switch cl.op {
		case "=", "!=", "in", "not in":
		default:
			return fmt.Errorf("operator '%s' is not supported in webhook JQL filters; supported: =, !=, IN, NOT IN", strings.ToUpper(cl.op))
		}
		if cl.empty {
			return errors.New("EMPTY/NULL is not supported in webhook JQL filters")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

type pred func(c *cand) bool

// compile turns a parsed restriction into a predicate over this tenant's
// issues. strict (searches) rejects unknown projects, statuses, issue types
// and priorities as Jira does; webhook filters compile leniently.
func (t *Tenant) compile(n *jqlNode, strict bool, now time.Time) (pred, error) {
	switch n.op {
	case "and", "or":
		l, err := t.compile(n.kids[0], strict, now)
		if err != nil {
			return nil, err
		}
		r, err := t.compile(n.kids[1], strict, now)
		if err != nil {
			return nil, err
		}
		if n.op == "and" {
			return func(c *cand) bool { return l(c) && r(c) }, nil
		}
		return func(c *cand) bool { return l(c) || r(c) }, nil
	case "not":
		k, err := t.compile(n.kids[0], strict, now)
		if err != nil {
			return nil, err
		}
		return func(c *cand) bool { return !k(c) }, nil
	}
	return t.compileClause(n.cl, strict, now)
}

var errNoSuchValue = errors.New("no such value")

func notExist(cl *jqlClause, v string) error {
	return fmt.Errorf("The value '%s' does not exist for the field '%s'.", v, cl.raw)
}

// setPred builds a membership predicate for = != IN NOT IN (and IS [NOT]
// EMPTY when nullable) over an int attribute where -1 means empty.
func setPred(cl *jqlClause, strict bool, resolve func(string) (int, error), get func(c *cand) int, nullable bool) (pred, error) {
	if cl.fn != "" {
		return nil, fmt.Errorf("The simulator does not support the JQL function '%s'.", cl.fn)
	}
	set := map[int]bool{}
	if cl.empty {
		if !nullable {
			return nil, fmt.Errorf("The field '%s' does not support searching for EMPTY values.", cl.raw)
		}
		set[-1] = true
	}
	for _, v := range cl.vals {
		i, err := resolve(v.s)
		if err != nil {
			if strict {
				return nil, err
			}
			continue
		}
		set[i] = true
	}
	switch cl.op {
	case "=", "in", "is":
		return func(c *cand) bool { return set[get(c)] }, nil
	case "!=", "not in", "is not":
		// As in Jira, != and NOT IN do not match empty values.
		return func(c *cand) bool { x := get(c); return !set[x] && (cl.empty || x != -1) }, nil
	}
	return nil, fmt.Errorf("The operator '%s' is not supported by the '%s' field.", cl.op, cl.raw)
}

func (t *Tenant) compileClause(cl *jqlClause, strict bool, now time.Time) (pred, error) {
	f := cl.field
	switch {
	case f == "project":
		return setPred(cl, strict, func(v string) (int, error) {
			if i, ok := t.projByK[strings.ToUpper(v)]; ok {
				return i, nil
			}
			for i, p := range t.projects {
				if strconv.FormatInt(p.id, 10) == v || strings.EqualFold(p.name, v) {
					return i, nil
				}
			}
			return 0, notExist(cl, v)
		}, func(c *cand) int { return c.proj }, false)
	case f == "status":
		return setPred(cl, strict, func(v string) (int, error) {
			for i, s := range t.cat.statuses {
				if s.ID == v || strings.EqualFold(s.Name, v) || strings.EqualFold(s.Untranslated, v) {
					return i, nil
				}
			}
			return 0, notExist(cl, v)
		}, func(c *cand) int { return c.get().status }, false)
	case f == "statuscategory":
		return setPred(cl, strict, func(v string) (int, error) {
			for i, s := range t.cat.cats {
				if strconv.Itoa(s.ID) == v || strings.EqualFold(s.Key, v) || strings.EqualFold(s.Name, v) {
					return i, nil
				}
			}
			return 0, notExist(cl, v)
		}, func(c *cand) int { return t.cat.statuses[c.get().status].Cat }, false)
	case f == "issuetype" || f == "type":
		return setPred(cl, strict, func(v string) (int, error) {
			for i, s := range t.cat.types {
				if s.ID == v || strings.EqualFold(s.Name, v) {
					return i, nil
				}
			}
			return 0, notExist(cl, v)
		}, func(c *cand) int { return c.get().typ }, false)
	case f == "priority":
		return setPred(cl, strict, func(v string) (int, error) {
			for i, s := range t.cat.prios {
				if s.ID == v || strings.EqualFold(s.Name, v) {
					return i, nil
				}
			}
			return 0, notExist(cl, v)
		}, func(c *cand) int { return c.get().prio }, true)
	case f == "assignee" || f == "reporter" || f == "creator":
		get := func(c *cand) int { return c.get().assignee }
		switch f {
		case "reporter":
			get = func(c *cand) int { return c.get().reporter }
		case "creator":
			get = func(c *cand) int { return c.get().creator }
		}
		return setPred(cl, false, func(v string) (int, error) {
			if i, ok := t.userByID[v]; ok {
				return i, nil
			}
			return 0, errNoSuchValue
		}, get, f == "assignee")
	case reCustomField.MatchString(f):
		return setPred(cl, false, func(v string) (int, error) {
			if f != "cf[10050]" && f != "customfield_10050" {
				return 0, errNoSuchValue
			}
			for i, o := range t.cat.envOpts {
				if o.ID == v || strings.EqualFold(o.Value, v) {
					return i, nil
				}
			}
			return 0, errNoSuchValue
		}, func(c *cand) int { return c.get().env }, true)
	case reProperty.MatchString(f):
		// The simulator never sets issue properties: equality never matches,
		// inequality always does.
		neg := cl.op == "!=" || cl.op == "not in" || cl.op == "is not"
		return func(*cand) bool { return neg }, nil
	case f == "key" || f == "issuekey" || f == "id":
		return t.compileID(cl)
	case f == "parent":
		return setPred(cl, false, func(v string) (int, error) {
			if id, ok := t.resolveAny(v); ok {
				return int(id), nil
			}
			return 0, errNoSuchValue
		}, func(c *cand) int {
			if p := c.get().parent; p != 0 {
				return int(p)
			}
			return -1
		}, true)
	case f == "updated" || f == "created" || f == "updateddate" || f == "createddate":
		return t.compileDate(cl, now)
	}
	return nil, fmt.Errorf("Field '%s' does not exist or you do not have permission to view it.", cl.raw)
}

// resolveAny maps an id or key to an id whether or not the issue is live.
func (t *Tenant) resolveAny(v string) (int64, bool) {
	if id, err := strconv.ParseInt(v, 10, 64); err == nil {
		return id, true
	}
	up := strings.ToUpper(v)
	if id, ok := t.createdKeys[up]; ok {
		return id, true
	}
	dash := strings.LastIndexByte(up, '-')
	if dash <= 0 {
		return 0, false
	}
	p, ok := t.projByK[up[:dash]]
	n, err := strconv.Atoi(up[dash+1:])
	if !ok || err != nil || n < 1 || n > t.perProj {
		return 0, false
	}
	return t.genID(p, n-1), true
}

func (t *Tenant) compileID(cl *jqlClause) (pred, error) {
	if cl.fn != "" {
		return nil, fmt.Errorf("The simulator does not support the JQL function '%s'.", cl.fn)
	}
	if cl.empty {
		return nil, fmt.Errorf("The field '%s' does not support searching for EMPTY values.", cl.raw)
	}
	ids := make([]int64, 0, len(cl.vals))
	for _, v := range cl.vals {
		id, ok := t.resolveAny(v.s)
		if !ok {
			if cl.field == "id" {
				return nil, fmt.Errorf("The value '%s' is not a valid issue id.", v.s)
			}
			id = -1 // an unknown key matches nothing
		}
		ids = append(ids, id)
	}
	has := func(id int64) bool { return slices.Contains(ids, id) }
	switch cl.op {
	case "=", "in":
		return func(c *cand) bool { return has(c.id) }, nil
	case "!=", "not in":
		return func(c *cand) bool { return !has(c.id) }, nil
	case ">", ">=", "<", "<=":
		if len(ids) != 1 || cl.field != "id" {
			return nil, fmt.Errorf("The operator '%s' is not supported by the '%s' field in the simulator.", cl.op, cl.raw)
		}
		x := ids[0]
		return func(c *cand) bool { return cmpOp(cl.op, c.id, x) }, nil
	}
	return nil, fmt.Errorf("The operator '%s' is not supported by the '%s' field.", cl.op, cl.raw)
}

func cmpOp[T int64 | int](op string, a, b T) bool {
	switch op {
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case "=":
		return a == b
	case "!=":
		return a != b
	}
	return false
}

var reRelative = regexp.MustCompile(`^\s*([-+]?\d+)\s*([wdhm])\s*`)

// parseJQLDate accepts "yyyy-MM-dd HH:mm", "yyyy/MM/dd HH:mm", "yyyy-MM-dd",
// "yyyy/MM/dd" in the site's zone (Jira uses the user's zone) and relative
// offsets from now such as "-5m", "-1d", "-4w 2d".
func parseJQLDate(v string, loc *time.Location, now time.Time) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04", "2006/01/02 15:04", "2006-01-02", "2006/01/02"} {
		if tm, err := time.ParseInLocation(layout, strings.TrimSpace(v), loc); err == nil {
			return tm, nil
		}
	}
	rest := v
	tm := now
	sign := time.Duration(1)
	matched := false
	for rest != "" {
		m := reRelative.FindStringSubmatch(rest)
		if m == nil {
			matched = false
			break
		}
		matched = true
		n, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[1], "-") {
			sign = -1
		} else if !strings.HasPrefix(m[1], "+") && n >= 0 && sign < 0 {
			// "-4w 2d" means minus four weeks and two days.
			n = -n
		}
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[m[2]]
		tm = tm.Add(time.Duration(n) * unit)
		rest = rest[len(m[0]):]
	}
	if !matched {
		return time.Time{}, fmt.Errorf("Date value '%s' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.", v)
	}
	return tm, nil
}

func (t *Tenant) compileDate(cl *jqlClause, now time.Time) (pred, error) {
	if cl.fn != "" {
		return nil, fmt.Errorf("The simulator does not support the JQL function '%s'.", cl.fn)
	}
	if cl.empty || len(cl.vals) != 1 {
		return nil, fmt.Errorf("The operator '%s' is not supported by the '%s' field in the simulator.", cl.op, cl.raw)
	}
	switch cl.op {
	case "=", "!=", ">", ">=", "<", "<=":
	default:
		return nil, fmt.Errorf("The operator '%s' is not supported by the '%s' field.", cl.op, cl.raw)
	}
	at, err := parseJQLDate(cl.vals[0].s, t.info.Location, now)
	if err != nil {
		return nil, err
	}
	x := at.UnixMilli()
	if strings.HasPrefix(cl.field, "created") {
		return func(c *cand) bool { return cmpOp(cl.op, c.get().created.UnixMilli(), x) }, nil
	}
	return func(c *cand) bool { return cmpOp(cl.op, c.get().updated.UnixMilli(), x) }, nil
}

// projectRestriction returns the projects a query can match when its
// top-level conjunction contains project = / IN clauses (nil = any), so scans
// skip other projects without generating their issues.
func (t *Tenant) projectRestriction(n *jqlNode) []bool {
	if n == nil {
		return nil
	}
	switch n.op {
	case "and":
		a, b := t.projectRestriction(n.kids[0]), t.projectRestriction(n.kids[1])
		if a == nil {
			return b
		}
		if b != nil {
			for i := range a {
				a[i] = a[i] && b[i]
			}
		}
		return a
	case "clause":
		cl := n.cl
		if cl.field != "project" || cl.op != "=" && cl.op != "in" || cl.fn != "" {
			return nil
		}
		set := make([]bool, len(t.projects))
		for _, v := range cl.vals {
			if i, ok := t.projByK[strings.ToUpper(v.s)]; ok {
				set[i] = true
				continue
			}
			for i, p := range t.projects {
				if strconv.FormatInt(p.id, 10) == v.s || strings.EqualFold(p.name, v.s) {
					set[i] = true
				}
			}
		}
		return set
	}
	return nil
}
