package jirasim

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// REST API v3 handlers. Each runs after Sim.api has authenticated the call.

func qInt(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("The '%s' parameter must be an integer.", name)
	}
	return n, nil
}

func requestURL(r *http.Request) *url.URL {
	u := *r.URL
	u.Scheme = "http"
	if r.TLS != nil {
		u.Scheme = "https"
	}
	u.Host = r.Host
	return &u
}

// pageBean builds Jira's PageBean; self and nextPage point back at the
// simulator so a client can follow nextPage.
func pageBean(r *http.Request, startAt, maxResults, total int, values []any) obj {
	if values == nil {
		values = []any{}
	}
	isLast := startAt+len(values) >= total
	m := obj{"self": requestURL(r).String(), "maxResults": maxResults, "startAt": startAt, "total": total, "isLast": isLast, "values": values}
	if !isLast {
		u := requestURL(r)
		q := u.Query()
		q.Set("startAt", strconv.Itoa(startAt+len(values)))
		q.Set("maxResults", strconv.Itoa(maxResults))
		u.RawQuery = q.Encode()
		m["nextPage"] = u.String()
	}
	return m
}

func paging(w http.ResponseWriter, r *http.Request, defMax, capMax int) (startAt, maxResults int, ok bool) {
	q := r.URL.Query()
	startAt, err := qInt(q, "startAt", 0)
	if err == nil {
		maxResults, err = qInt(q, "maxResults", defMax)
	}
	if err != nil {
		jiraError(w, http.StatusBadRequest, err.Error())
		return 0, 0, false
	}
	if startAt < 0 {
		startAt = 0
	}
	if maxResults <= 0 {
		maxResults = defMax
	}
	return startAt, min(maxResults, capMax), true
}

func window[T any](xs []T, startAt, n int) []T {
	if startAt >= len(xs) {
		return nil
	}
	return xs[startAt:min(len(xs), startAt+n)]
}

// flexStrings accepts ["10001","KEY-1"] as well as [10001].
type flexStrings []string

// UnmarshalJSON accepts an array of strings or numbers, or one
// comma-separated string.
func (f *flexStrings) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var one string
		if err2 := json.Unmarshal(b, &one); err2 != nil {
			return err
		}
		*f = strings.Split(one, ",")
		return nil
	}
	for _, r := range raw {
		var s string
		if json.Unmarshal(r, &s) != nil {
			s = strings.TrimSpace(string(r))
		}
		*f = append(*f, s)
	}
	return nil
}

// --- search ------------------------------------------------------------------

type searchRequest struct {
	JQL           string      `json:"jql"`
	NextPageToken string      `json:"nextPageToken"`
	MaxResults    *int        `json:"maxResults"`
	Fields        flexStrings `json:"fields"`
}

// pageToken is the opaque nextPageToken: a keyset position bound to the JQL.
// Like Jira's, it expires after 7 days.
type pageToken struct {
	Q  uint64 `json:"q"`
	O  string `json:"o"`
	K2 string `json:"k2,omitempty"`
	K1 int64  `json:"k1"`
	ID int64  `json:"id"`
	T  int64  `json:"t"`
}

func jqlHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

const unboundedMsg = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."

func (s *Sim) readSearch(w http.ResponseWriter, r *http.Request) (searchRequest, bool) {
	var req searchRequest
	if r.Method == http.MethodPost {
		if err := decodeBody(r, &req); err != nil {
			jiraError(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
			return req, false
		}
		return req, true
	}
	q := r.URL.Query()
	req.JQL, req.NextPageToken = q.Get("jql"), q.Get("nextPageToken")
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			jiraError(w, http.StatusBadRequest, "The 'maxResults' parameter must be an integer.")
			return req, false
		}
		req.MaxResults = &n
	}
	req.Fields = q["fields"]
	return req, true
}

// compileSearch parses and compiles a bounded JQL search.
func (t *Tenant) compileSearch(jql string) (*jqlQuery, pred, error) {
	q, err := parseJQL(jql)
	if err != nil {
		return nil, nil, err
	}
	if q.where == nil {
		return nil, nil, fmt.Errorf("%s", unboundedMsg)
	}
	p, err := t.compile(q.where, true, t.sim.Now())
	if err != nil {
		return nil, nil, err
	}
	return q, p, nil
}

func (s *Sim) handleSearch(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	req, ok := s.readSearch(w, r)
	if !ok {
		return
	}
	fs := parseFieldSet(req.Fields, "id")
	limit := 50
	if req.MaxResults != nil && *req.MaxResults > 0 {
		limit = *req.MaxResults
	}
	// Page size caps (JIRA.md §5): 5000 when only ids/keys are returned,
	// 100 otherwise (Jira lowers the cap as more fields are requested).
	if fs.smallOnly() {
		limit = min(limit, 5000)
	} else {
		limit = min(limit, 100)
	}

	t.mu.RLock()
	defer t.mu.RUnlock()
	q, p, err := t.compileSearch(req.JQL)
	if err != nil {
		jiraError(w, http.StatusBadRequest, err.Error())
		return
	}
	order := orderKey{field: "id"}
	if len(q.order) > 0 {
		// Only the first ORDER BY field is honoured; ties break by id.
		order = q.order[0]
		switch order.field {
		case "issuekey":
			order.field = "key"
		case "id", "key", "updated", "created":
		default:
			jiraError(w, http.StatusBadRequest, fmt.Sprintf("The simulator cannot sort by field '%s'; use id, key, created or updated.", order.field))
			return
		}
	}
	orderName := order.field
	if order.desc {
		orderName += " desc"
	}
	now := s.Now()
	var after *pageToken
	if req.NextPageToken != "" {
		tok, err := decodePageToken(req.NextPageToken)
		if err != nil || tok.Q != jqlHash(req.JQL) || tok.O != orderName || now.Sub(time.UnixMilli(tok.T)) > 7*24*time.Hour {
			jiraError(w, http.StatusBadRequest, "The provided next page token is invalid or expired.")
			return
		}
		after = &tok
	}

	var hits []sortEntry
	collect := func(c *cand) bool {
		if p(c) {
			hits = append(hits, t.entryFor(order.field, c))
		}
		return len(hits) <= limit
	}
	if order.field == "id" && !order.desc {
		from := int64(issueIDBase - 1)
		if after != nil {
			from = after.ID
		}
		t.scan(from, t.projectRestriction(q.where), collect)
	} else {
		entries := t.index(order.field)
		var c cand
		if !order.desc {
			i := 0
			if after != nil {
				pos := sortEntry{k2: after.K2, k1: after.K1, id: after.ID}
				i, _ = slices.BinarySearchFunc(entries, pos, sortEntry.cmp)
				if i < len(entries) && entries[i] == pos {
					i++
				}
			}
			for ; i < len(entries) && len(hits) <= limit; i++ {
				if t.candFor(entries[i].id, &c) {
					collect(&c)
				}
			}
		} else {
			i := len(entries) - 1
			if after != nil {
				pos := sortEntry{k2: after.K2, k1: after.K1, id: after.ID}
				j, _ := slices.BinarySearchFunc(entries, pos, sortEntry.cmp)
				i = j - 1
			}
			for ; i >= 0 && len(hits) <= limit; i-- {
				if t.candFor(entries[i].id, &c) {
					collect(&c)
				}
			}
		}
	}
	more := len(hits) > limit
	if more {
		hits = hits[:limit]
	}
	issues := make([]any, 0, len(hits))
	for _, h := range hits {
		if fs.idOnly() {
			issues = append(issues, obj{"id": strconv.FormatInt(h.id, 10)})
			continue
		}
		is, _ := t.full(h.id)
		issues = append(issues, t.issueJSON(is, 3, fs))
	}
	resp := obj{"issues": issues, "isLast": !more}
	if more {
		last := hits[len(hits)-1]
		resp["nextPageToken"] = encodePageToken(pageToken{Q: jqlHash(req.JQL), O: orderName, K2: last.k2, K1: last.k1, ID: last.id, T: now.UnixMilli()})
	}
	writeJSON(w, http.StatusOK, resp)
}

func encodePageToken(p pageToken) string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, error) {
	var p pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	return p, err
}

func (s *Sim) handleCount(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	var req struct {
		JQL string `json:"jql"`
	}
	if err := decodeBody(r, &req); err != nil {
		jiraError(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	q, p, err := t.compileSearch(req.JQL)
	if err != nil {
		jiraError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := 0
	t.scan(issueIDBase-1, t.projectRestriction(q.where), func(c *cand) bool {
		if p(c) {
			n++
		}
		return true
	})
	writeJSON(w, http.StatusOK, obj{"count": n})
}

// --- issues ------------------------------------------------------------------

const issueMissing = "Issue does not exist or you do not have permission to see it."

func (s *Sim) handleBulkFetch(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	var req struct {
		IssueIDsOrKeys flexStrings `json:"issueIdsOrKeys"`
		Fields         flexStrings `json:"fields"`
	}
	if err := decodeBody(r, &req); err != nil {
		jiraError(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return
	}
	if len(req.IssueIDsOrKeys) == 0 {
		jiraError(w, http.StatusBadRequest, "issueIdsOrKeys must contain at least one issue id or key.")
		return
	}
	if len(req.IssueIDsOrKeys) > 100 {
		jiraError(w, http.StatusBadRequest, "A maximum of 100 issues can be requested at a time; "+strconv.Itoa(len(req.IssueIDsOrKeys))+" were requested.")
		return
	}
	// Default fields are *navigable (spec: BulkFetchIssueRequestBean).
	fs := parseFieldSet(req.Fields, "*navigable")
	t.mu.RLock()
	defer t.mu.RUnlock()
	var ids []int64
	for _, k := range req.IssueIDsOrKeys {
		// Missing or invisible issues are left out, not reported in
		// issueErrors (spec: BulkIssueResults).
		if id, ok := t.resolve(strings.TrimSpace(k)); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	issues := make([]any, 0, len(ids))
	for _, id := range ids {
		is, _ := t.full(id)
		issues = append(issues, t.issueJSON(is, 3, fs))
	}
	writeJSON(w, http.StatusOK, obj{"issues": issues, "issueErrors": []any{}})
}

// pathIssue is the live issue the request's {idOrKey} names, under t.mu;
// without one it answers Jira's 404 and reports false.
func (t *Tenant) pathIssue(w http.ResponseWriter, r *http.Request) (*issue, bool) {
	id, ok := t.resolve(r.PathValue("idOrKey"))
	if !ok {
		jiraError(w, http.StatusNotFound, issueMissing)
		return nil, false
	}
	is, _ := t.full(id)
	return is, true
}

func (s *Sim) handleGetIssue(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	fs := parseFieldSet(r.URL.Query()["fields"], "*all")
	t.mu.RLock()
	defer t.mu.RUnlock()
	is, ok := t.pathIssue(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, t.issueJSON(is, 3, fs))
}

func (s *Sim) handleComments(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 100, 5000)
	if !ok {
		return
	}
	desc := false
	switch ob := r.URL.Query().Get("orderBy"); ob {
	case "", "created", "+created":
	case "-created":
		desc = true
	default:
		jiraError(w, http.StatusBadRequest, "Invalid orderBy value '"+ob+"'. Valid values are: created, -created, +created.")
		return
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	is, ok := t.pathIssue(w, r)
	if !ok {
		return
	}
	cs := slices.Clone(t.commentsOf(is))
	slices.SortStableFunc(cs, func(a, b *comment) int {
		c := a.created.Compare(b.created)
		if c == 0 {
			c = cmpInt64(a.id, b.id)
		}
		if desc {
			return -c
		}
		return c
	})
	out := []any{}
	for _, c := range window(cs, startAt, maxResults) {
		out = append(out, t.commentJSON(is, c, 3))
	}
	writeJSON(w, http.StatusOK, obj{"comments": out, "startAt": startAt, "maxResults": maxResults, "total": len(cs)})
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// --- configuration -----------------------------------------------------------

func (s *Sim) handleProjects(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 50, 100)
	if !ok {
		return
	}
	q := r.URL.Query()
	var ids, keys, types []string
	for _, v := range q["id"] {
		ids = append(ids, strings.Split(v, ",")...)
	}
	for _, v := range q["keys"] {
		keys = append(keys, strings.Split(v, ",")...)
	}
	for _, v := range q["typeKey"] {
		types = append(types, strings.Split(v, ",")...)
	}
	query := strings.ToLower(q.Get("query"))
	filtered := len(ids) > 0 || len(keys) > 0 || query != "" || len(types) > 0
	var match []int
	for i, p := range t.projects {
		if len(ids) > 0 && !slices.Contains(ids, strconv.FormatInt(p.id, 10)) {
			continue
		}
		if len(keys) > 0 && !slices.ContainsFunc(keys, func(k string) bool { return strings.EqualFold(k, p.key) }) {
			continue
		}
		if len(types) > 0 && !slices.Contains(types, p.typeKey) {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(p.key), query) && !strings.Contains(strings.ToLower(p.name), query) {
			continue
		}
		match = append(match, i)
	}
	switch ob := q.Get("orderBy"); ob {
	case "", "key", "+key":
		slices.SortFunc(match, func(a, b int) int { return strings.Compare(t.projects[a].key, t.projects[b].key) })
	case "-key":
		slices.SortFunc(match, func(a, b int) int { return strings.Compare(t.projects[b].key, t.projects[a].key) })
	case "name", "+name":
		slices.SortFunc(match, func(a, b int) int { return strings.Compare(t.projects[a].name, t.projects[b].name) })
	case "-name":
		slices.SortFunc(match, func(a, b int) int { return strings.Compare(t.projects[b].name, t.projects[a].name) })
	case "id", "+id":
	default:
		jiraError(w, http.StatusBadRequest, "Invalid orderBy value '"+ob+"'.")
		return
	}
	if filtered && len(match) == 0 {
		// JIRA.md §5: 404 if nothing matches.
		jiraError(w, http.StatusNotFound, "No project could be found matching the search criteria.")
		return
	}
	var values []any
	for _, i := range window(match, startAt, maxResults) {
		values = append(values, t.projectJSON(i, q.Get("expand")))
	}
	writeJSON(w, http.StatusOK, pageBean(r, startAt, maxResults, len(match), values))
}

func (s *Sim) handleStatuses(w http.ResponseWriter, _ *http.Request, t *Tenant, _ *accessToken) {
	out := make([]any, len(t.cat.statuses))
	for i := range t.cat.statuses {
		out[i] = t.statusJSON(i, 3, true)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) handleCategories(w http.ResponseWriter, _ *http.Request, t *Tenant, _ *accessToken) {
	out := []any{obj{"self": t.restURL(3, "statuscategory/1"), "id": 1, "key": "undefined", "colorName": "medium-gray", "name": "No Category"}}
	for i := range t.cat.cats {
		out = append(out, t.categoryJSON(i, 3))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) handlePriorities(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 50, 50)
	if !ok {
		return
	}
	ids := r.URL.Query()["id"]
	var all []any
	for i, p := range t.cat.prios {
		if len(ids) == 0 || slices.Contains(ids, p.ID) {
			all = append(all, t.prioJSON(i, 3, true))
		}
	}
	writeJSON(w, http.StatusOK, pageBean(r, startAt, maxResults, len(all), window(all, startAt, maxResults)))
}

func (s *Sim) handleIssueTypes(w http.ResponseWriter, _ *http.Request, t *Tenant, _ *accessToken) {
	out := make([]any, len(t.cat.types))
	for i := range t.cat.types {
		out[i] = t.typeJSON(i, 3, true)
	}
	writeJSON(w, http.StatusOK, out)
}

// --- users and groups ----------------------------------------------------------

func (t *Tenant) fullUserJSON(u *user) obj {
	m := t.userJSON(u, 3, true)
	m["locale"] = u.locale
	return m
}

func (s *Sim) handleMyself(w http.ResponseWriter, _ *http.Request, t *Tenant, tok *accessToken) {
	m := t.fullUserJSON(t.userFor(tok.grant))
	m["expand"] = "groups,applicationRoles"
	m["groups"] = obj{"size": 0, "items": []any{}}
	m["applicationRoles"] = obj{"size": 0, "items": []any{}}
	writeJSON(w, http.StatusOK, m)
}

// handleUsers lists active, inactive and app/customer accounts as a plain
// array (no PageBean), like Jira.
func (s *Sim) handleUsers(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 50, 1000)
	if !ok {
		return
	}
	out := []any{}
	for _, u := range window(t.users, startAt, maxResults) {
		out = append(out, t.fullUserJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) handleGroups(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 50, 1000)
	if !ok {
		return
	}
	q := r.URL.Query()
	ids, names := q["groupId"], q["groupName"]
	var all []any
	for _, g := range t.groups {
		if len(ids) > 0 || len(names) > 0 {
			if !slices.Contains(ids, g.id) && !slices.Contains(names, g.name) {
				continue
			}
		}
		all = append(all, obj{"name": g.name, "groupId": g.id})
	}
	writeJSON(w, http.StatusOK, pageBean(r, startAt, maxResults, len(all), window(all, startAt, maxResults)))
}

func (s *Sim) handleGroupMembers(w http.ResponseWriter, r *http.Request, t *Tenant, _ *accessToken) {
	startAt, maxResults, ok := paging(w, r, 50, 50)
	if !ok {
		return
	}
	q := r.URL.Query()
	id, name := q.Get("groupId"), q.Get("groupname")
	if id == "" && name == "" {
		jiraError(w, http.StatusBadRequest, "You must specify a group name or a group id.")
		return
	}
	var g *group
	for _, x := range t.groups {
		if id != "" && x.id == id || id == "" && x.name == name {
			g = x
		}
	}
	if g == nil {
		jiraError(w, http.StatusNotFound, "The specified group does not exist.")
		return
	}
	inactive := q.Get("includeInactiveUsers") == "true"
	var all []any
	for _, ui := range g.members {
		if u := t.users[ui]; u.active || inactive {
			all = append(all, t.userJSON(u, 3, true))
		}
	}
	writeJSON(w, http.StatusOK, pageBean(r, startAt, maxResults, len(all), window(all, startAt, maxResults)))
}
