package jirasim

import (
	"slices"
	"strconv"
	"strings"
)

// Read access to issues. Callers hold t.mu (read or write) unless noted.

// resolve maps an issue id or key to the id of a live issue.
func (t *Tenant) resolve(idOrKey string) (int64, bool) {
	if id, err := strconv.ParseInt(idOrKey, 10, 64); err == nil {
		return id, t.live(id)
	}
	up := strings.ToUpper(idOrKey)
	if id, ok := t.createdKeys[up]; ok {
		return id, t.live(id)
	}
	dash := strings.LastIndexByte(up, '-')
	if dash <= 0 {
		return 0, false
	}
	p, ok := t.projByK[up[:dash]]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(up[dash+1:])
	if err != nil || n < 1 || n > t.perProj {
		return 0, false
	}
	id := t.genID(p, n-1)
	return id, t.live(id)
}

func (t *Tenant) live(id int64) bool {
	if ov, ok := t.overlay[id]; ok {
		return !ov.deleted
	}
	_, ok := t.genIndex(id)
	return ok
}

// full returns the live issue with this id, generating it if it was never
// mutated. Generated results must not be modified.
func (t *Tenant) full(id int64) (*issue, bool) {
	if ov, ok := t.overlay[id]; ok {
		return ov, !ov.deleted
	}
	g, ok := t.genIndex(id)
	if !ok {
		return nil, false
	}
	return t.genFull(g), true
}

func (t *Tenant) commentsOf(is *issue) []*comment {
	if is.stored || is.g < 0 {
		return is.comments
	}
	return t.genComments(&is.issueCore)
}

// childrenOf lists the live sub-tasks of an issue.
func (t *Tenant) childrenOf(is *issue) []int64 {
	var out []int64
	if is.g >= 0 && is.typ != typSubtask {
		for _, id := range t.genChildren(is.proj, is.g/t.nProj) {
			if t.live(id) {
				out = append(out, id)
			}
		}
	}
	for _, id := range t.createdChildren[is.id] {
		if t.live(id) {
			out = append(out, id)
		}
	}
	return out
}

// materialize returns the stored, mutable version of a live issue. Caller
// holds t.mu for writing.
func (t *Tenant) materialize(id int64) (*issue, bool) {
	if ov, ok := t.overlay[id]; ok {
		return ov, !ov.deleted
	}
	g, ok := t.genIndex(id)
	if !ok {
		return nil, false
	}
	is := t.genFull(g)
	is.comments = t.genComments(&is.issueCore)
	is.stored = true
	t.overlay[id] = is
	return is, true
}

// cand is one search candidate; its core is generated only if a predicate
// needs more than id and project.
type cand struct {
	t    *Tenant
	id   int64
	proj int
	g    int
	ov   *issue
	core issueCore
	have bool
}

func (c *cand) get() *issueCore {
	if c.ov != nil {
		return &c.ov.issueCore
	}
	if !c.have {
		c.core = c.t.genCore(c.g)
		c.have = true
	}
	return &c.core
}

func (t *Tenant) candFor(id int64, c *cand) bool {
	*c = cand{t: t, id: id}
	if ov, ok := t.overlay[id]; ok {
		if ov.deleted {
			return false
		}
		c.ov, c.proj = ov, ov.proj
		return true
	}
	g, ok := t.genIndex(id)
	if !ok {
		return false
	}
	c.g, c.proj = g, g%t.nProj
	return true
}

// scan visits live issues with id > after in ascending id order, restricted
// to projects (nil = all), until fn returns false.
func (t *Tenant) scan(after int64, projects []bool, fn func(c *cand) bool) {
	var c cand
	start := max(0, after-issueIDBase+1)
	for g := start; g < int64(t.genTotal); g++ {
		p := int(g) % t.nProj
		if projects != nil && !projects[p] {
			continue
		}
		if !t.candFor(issueIDBase+g, &c) {
			continue
		}
		if !fn(&c) {
			return
		}
	}
	i, _ := slices.BinarySearch(t.createdIDs, after+1)
	for ; i < len(t.createdIDs); i++ {
		id := t.createdIDs[i]
		if !t.candFor(id, &c) || projects != nil && !projects[c.proj] {
			continue
		}
		if !fn(&c) {
			return
		}
	}
}

// sortEntry orders issues for ORDER BY clauses other than id ascending.
type sortEntry struct {
	k2 string // primary (project key for "key"), "" otherwise
	k1 int64  // secondary: key number, updated ms, or id
	id int64
}

func (a sortEntry) cmp(b sortEntry) int {
	if c := strings.Compare(a.k2, b.k2); c != 0 {
		return c
	}
	if a.k1 != b.k1 {
		if a.k1 < b.k1 {
			return -1
		}
		return 1
	}
	switch {
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

type sortIndex struct {
	version uint64
	entries []sortEntry // ascending
}

func (t *Tenant) entryFor(field string, c *cand) sortEntry {
	switch field {
	case "key":
		return sortEntry{k2: t.projects[c.proj].key, k1: int64(c.get().num), id: c.id}
	case "updated":
		return sortEntry{k1: c.get().updated.UnixMilli(), id: c.id}
	case "created":
		return sortEntry{k1: c.get().created.UnixMilli(), id: c.id}
	}
	return sortEntry{k1: c.id, id: c.id}
}

// index returns the live issues sorted by field, cached until the next
// mutation. Caller holds t.mu for reading.
func (t *Tenant) index(field string) []sortEntry {
	t.sim.cacheMu.Lock()
	defer t.sim.cacheMu.Unlock()
	if si, ok := t.sortCache[field]; ok && si.version == t.version {
		return si.entries
	}
	entries := make([]sortEntry, 0, t.genTotal+len(t.createdIDs))
	t.scan(issueIDBase-1, nil, func(c *cand) bool {
		entries = append(entries, t.entryFor(field, c))
		return true
	})
	slices.SortFunc(entries, sortEntry.cmp)
	t.sortCache[field] = &sortIndex{version: t.version, entries: entries}
	return entries
}
