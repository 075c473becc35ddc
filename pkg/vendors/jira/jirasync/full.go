package jirasync

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// Record types of the sync contract, as this package names them.
const (
	recIssue      = raw.TypeIssue
	recComment    = raw.TypeComment
	recProject    = raw.TypeProject
	recUser       = raw.TypeUser
	recGroup      = raw.TypeGroup
	recAttachment = raw.TypeAttachment
)

// maxKeysPerQuery bounds the project keys of one JQL (and of one
// project/search, whose keys parameter takes at most 50).
const (
	maxKeysPerQuery  = 100
	maxKeysPerSearch = 50
)

// lostAccessPrefix starts the health description this package sets, so it
// can clear its own warning and never someone else's.
const lostAccessPrefix = "Jira no longer shows project"

// reportLost shows on the connection's health the projects in scope that
// Jira no longer shows, and clears that warning once they are back.
func (r *crawl) reportLost(ctx context.Context) error {
	r.mu.Lock()
	lost := slices.Clone(r.cp.LostProjects)
	r.mu.Unlock()
	now := r.run.Now().UTC()
	return r.run.UpdateConnection(ctx, func(c *store.Connection) error {
		h := &c.Detail.Health
		switch {
		case len(lost) > 0 && (h.Status == store.HealthHealthy || strings.HasPrefix(h.Description, lostAccessPrefix)):
			*h = store.Health{Status: store.HealthDegraded, ResolutionOwner: store.OwnerCustomer,
				Description: lostAccessPrefix + "(s) " + strings.Join(lost, ", ") +
					" to this connection: restore the grant's access, or remove them from project_keys_filter; their tickets are kept meanwhile",
				UpdatedAt: now}
		case len(lost) == 0 && strings.HasPrefix(h.Description, lostAccessPrefix):
			*h = store.Health{Status: store.HealthHealthy, UpdatedAt: now}
		}
		return nil
	})
}

type idOnly struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	GroupID string `json:"groupId"`
	Account string `json:"accountId"`
	Updated string `json:"updated"`
	Created string `json:"created"`
}

func peek(raw json.RawMessage) idOnly {
	var v idOnly
	_ = json.Unmarshal(raw, &v)
	return v
}

// projects publishes the projects in scope and resolves the keys the issue
// phase searches. A project that should be there and is not (in the filter,
// or stored before) is either deleted or no longer visible to the grant;
// Jira cannot always tell which, so unless it says the project was deleted
// or archived, tickets are kept out of this sync's reconcile.
func (r *crawl) projects(ctx context.Context) error {
	filter := r.conn.Options.ProjectKeysFilter
	visible := map[string]string{}  // upper key -> key
	visibleIDs := map[string]bool{} // ITSM ids, which survive key changes
	page := func(keys []string) error {
		for start := 0; ; {
			var p *jiracloud.ProjectPage
			if err := r.call(ctx, func(ctx context.Context) (err error) {
				p, err = r.client.SearchProjects(ctx, start, keys)
				return err
			}); err != nil {
				return err
			}
			for _, raw := range p.Values {
				v := peek(raw)
				if v.ID == "" {
					continue
				}
				visible[strings.ToUpper(v.Key)] = v.Key
				visibleIDs[itsm.ObjectID(r.conn.ID, itsm.KindProject, v.ID)] = true
				if err := r.publish(ctx, recProject, "", raw, v.ID, ""); err != nil {
					return err
				}
			}
			if p.IsLast || len(p.Values) == 0 {
				return nil
			}
			start += len(p.Values)
		}
	}
	if len(filter) > 0 {
		for chunk := range slices.Chunk(filter, maxKeysPerSearch) {
			if err := page(chunk); err != nil {
				return err
			}
		}
	} else if err := page(nil); err != nil {
		return err
	}

	var expected []string
	if len(filter) > 0 {
		for _, k := range filter {
			if _, ok := visible[strings.ToUpper(k)]; !ok {
				expected = append(expected, k)
			}
		}
	} else {
		known, err := r.run.Known(ctx, itsm.KindProject)
		if err != nil {
			return err
		}
		for id, key := range known {
			if !visibleIDs[id] {
				expected = append(expected, key)
			}
		}
	}
	now := r.run.Now().UTC()
	missing := map[string]time.Time{}
	var lost []string
	for _, k := range expected {
		gone, err := r.projectDeleted(ctx, k)
		if err != nil {
			return err
		}
		if gone {
			continue // deleted or archived: its tickets may be tombstoned
		}
		since := now
		if t, ok := r.cp.Missing[k]; ok {
			since = t
		}
		missing[k] = since
		if len(filter) == 0 && now.Sub(since) >= r.s.cfg.LostProjectGrace {
			// Missing from every full sync for the grace period, and not in
			// a filter the customer could fix: it was purged, not hidden.
			continue
		}
		lost = append(lost, k)
	}
	keys := make([]string, 0, len(visible))
	for _, k := range visible {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sort.Strings(lost)
	r.mu.Lock()
	r.cp.ProjectKeys, r.cp.LostProjects, r.cp.Missing = keys, lost, missing
	r.mu.Unlock()
	r.run.Carry(carried{Missing: missing})
	r.run.Progress(connector.Progress{Lost: lost})
	if len(lost) > 0 {
		r.incomplete("lost access to project(s) " + strings.Join(lost, ", "))
		r.log.Warn("projects in scope are no longer visible; their tickets are not reconciled", zap.Strings("projects", lost))
	}
	return nil
}

// projectDeleted asks project/search whether a missing project is archived
// or in the trash (the status parameter, JIRA.md §5). Where Jira does not
// answer (404, or a site without the parameter), the project counts as not
// deleted: better a stale ticket than a false tombstone.
func (r *crawl) projectDeleted(ctx context.Context, key string) (bool, error) {
	q := url.Values{"keys": {key}, "status": {"archived", "deleted"}}
	var page jiracloud.ProjectPage
	err := r.call(ctx, func(ctx context.Context) error {
		return r.client.Do(ctx, http.MethodGet, "/project/search?"+q.Encode(), nil, &page)
	})
	if jiracloud.IsStatus(err, http.StatusNotFound) || jiracloud.IsStatus(err, http.StatusBadRequest) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, raw := range page.Values {
		var p struct {
			Key      string `json:"key"`
			Archived bool   `json:"archived"`
			Deleted  bool   `json:"deleted"`
		}
		if json.Unmarshal(raw, &p) == nil && strings.EqualFold(p.Key, key) && (p.Archived || p.Deleted) {
			return true, nil
		}
	}
	return false, nil
}

// statuses reads the site's statuses and priorities: the catalog that
// mapping needs (the priority order ranks priorities no keyword maps), kept
// on the connection, and a bump of its mapping revision when the priority
// order changed, so that stored tickets are re-mapped. Those the
// connection's mapping leaves UNKNOWN are logged and shown in the sync's
// progress, so operators see what to add to the custom mappings.
func (r *crawl) statuses(ctx context.Context) error {
	var cat *store.Catalog
	if err := r.call(ctx, func(ctx context.Context) (err error) {
		cat, err = r.client.Catalog(ctx, r.run.Now().UTC())
		return err
	}); err != nil {
		return err
	}
	m := jira.MappingOf(r.conn)
	m.PriorityScheme = cat.Priorities // the catalog just read, not the stored one
	var unmapped []string
	for _, s := range cat.Statuses {
		if st, _ := m.MapStatus(s.Name, s.Category); st == itsm.StatusUnknown {
			unmapped = append(unmapped, "status:"+s.Name)
		}
	}
	for _, name := range cat.Priorities {
		if p, _ := m.MapPriority(name); p == itsm.PriorityUnknown {
			unmapped = append(unmapped, "priority:"+name)
		}
	}
	if len(unmapped) > 0 {
		r.log.Info("Jira statuses or priorities map to UNKNOWN; add them to the connection's mappings", zap.Strings("values", unmapped))
	}
	if err := r.run.UpdateConnection(ctx, func(c *store.Connection) error {
		if old := c.Detail.Catalog; old == nil || !slices.Equal(old.Priorities, cat.Priorities) {
			c.Detail.MappingRevision++
		}
		c.Detail.Catalog = cat
		return nil
	}); err != nil {
		return err
	}
	r.run.Progress(connector.Progress{Unmapped: unmapped})
	return nil
}

// users publishes every account users/search lists (active, inactive and
// deleted ones). Jira can return short pages before the end, so only an
// empty page ends it.
func (r *crawl) users(ctx context.Context) error {
	for start := 0; ; {
		var page []json.RawMessage
		if err := r.call(ctx, func(ctx context.Context) (err error) {
			page, err = r.client.Users(ctx, start, jiracloud.MaxUsersPage)
			return err
		}); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, raw := range page {
			v := peek(raw)
			if err := r.publish(ctx, recUser, "", raw, v.Account, ""); err != nil {
				return err
			}
		}
		start += len(page)
	}
}

// groups publishes each group with its members (the record the mapping
// takes: the group object plus a "members" array of user objects). Groups
// are read a few at a time; one group's members are held only while it is
// published.
func (r *crawl) groups(ctx context.Context) error {
	for start := 0; ; {
		var p *jiracloud.PageBean
		if err := r.call(ctx, func(ctx context.Context) (err error) {
			p, err = r.client.Groups(ctx, start, 50)
			return err
		}); err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.s.cfg.MaxCallsInFlight)
		for _, raw := range p.Values {
			g.Go(func() error { return r.group(gctx, raw) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if p.Last() {
			return nil
		}
		start += len(p.Values)
	}
}

func (r *crawl) group(ctx context.Context, raw json.RawMessage) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		r.run.Failed(1)
		return nil
	}
	v := peek(raw)
	if v.GroupID == "" {
		r.run.Failed(1)
		r.incomplete("a group without groupId")
		return nil
	}
	members := []json.RawMessage{}
	for start := 0; ; {
		var p *jiracloud.PageBean
		err := r.call(ctx, func(ctx context.Context) (err error) {
			p, err = r.client.GroupMembers(ctx, v.GroupID, start, jiracloud.MaxMembersPage)
			return err
		})
		if jiracloud.IsStatus(err, http.StatusNotFound) {
			return nil // deleted since it was listed
		}
		if err != nil {
			return err
		}
		members = append(members, p.Values...)
		if p.Last() {
			break
		}
		start += len(p.Values)
	}
	b, err := json.Marshal(members)
	if err != nil {
		return err
	}
	obj["members"] = b
	rec, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return r.publish(ctx, recGroup, "", rec, v.GroupID, "")
}
