package backfill

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

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

// full runs the phases of a full sync from the checkpoint on, then the
// reconcile.
func (r *run) full(ctx context.Context) error {
	start := slices.Index(fullPhases, r.cp.Phase)
	if r.cp.Phase == PhaseReconcile {
		start = len(fullPhases)
	}
	if start < 0 {
		start = 0
	}
	for i := start; i < len(fullPhases); i++ {
		phase := fullPhases[i]
		r.setPhase(phase)
		var err error
		switch phase {
		case PhaseProjects:
			err = r.projects(ctx)
		case PhaseStatuses:
			err = r.statuses(ctx)
		case PhaseUsers:
			err = r.users(ctx)
		case PhaseGroups:
			err = r.groups(ctx)
		case PhaseIssues:
			err = r.issues(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s phase: %w", phase, err)
		}
		next := PhaseReconcile
		if i+1 < len(fullPhases) {
			next = fullPhases[i+1]
		}
		if err := r.checkpoint(ctx, func(cp *checkpoint) {
			cp.Phase = next
			cp.Chunk, cp.NextPageToken, cp.AfterID, cp.LastIssueID = 0, "", "", ""
		}); err != nil {
			return err
		}
	}
	return r.reconcile(ctx)
}

func (r *run) mergeIncomplete(have []string) []string {
	r.incompleteMu.Lock()
	defer r.incompleteMu.Unlock()
	for _, s := range r.incomplete {
		if !slices.Contains(have, s) {
			have = append(have, s)
		}
	}
	return have
}

// publish sends one record of this sync.
func (r *run) publish(ctx context.Context, typ, issueID string, body []byte, vendorID, version string) error {
	var syncID, id string
	if r.kind == store.SyncFull {
		// No message id: JetStream keeps one dedupe entry per id in server
		// memory for the whole duplicate window (two hours on RAW), some
		// 50 MB per 100,000 issues with their comments. What a resumed sync
		// publishes again is at most one search page since the checkpoint,
		// and the normalizer takes a record it already has as a no-op
		// (equal version: only marked seen).
		syncID = r.state.ID
	} else {
		// Incremental syncs are small and overlap each other by design:
		// the id (the record's version) drops the re-reads of the overlap.
		id = msgID("inc", r.conn.ID, typ, vendorID, version)
	}
	data := raw.AppendSyncRecord(make([]byte, 0, len(body)+192), typ, issueID, syncID, r.w.d.Now().UTC(), body)
	if err := r.pub.publish(ctx, r.pub.message(data, id)); err != nil {
		return err
	}
	r.count(typ, 1)
	return nil
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
func (r *run) projects(ctx context.Context) error {
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
		known, err := r.knownProjects(ctx)
		if err != nil {
			return err
		}
		for id, key := range known {
			if !visibleIDs[id] {
				expected = append(expected, key)
			}
		}
	}
	now := r.w.d.Now().UTC()
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
		if len(filter) == 0 && now.Sub(since) >= r.w.cfg.LostProjectGrace {
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
	r.saveMu.Lock()
	r.cp.ProjectKeys, r.cp.LostProjects, r.cp.Missing = keys, lost, missing
	r.saveMu.Unlock()
	if len(lost) > 0 {
		r.markIncomplete("lost access to project(s) " + strings.Join(lost, ", "))
		r.log.Warn("projects in scope are no longer visible; their tickets are not reconciled", zap.Strings("projects", lost))
	}
	return nil
}

// knownProjects maps the ITSM ids of the connection's stored, live projects
// to their keys.
func (r *run) knownProjects(ctx context.Context) (map[string]string, error) {
	known := map[string]string{}
	f := store.Filter{OrganizationID: r.conn.OrganizationID, ConnectionID: r.conn.ID, Kind: itsm.KindProject,
		ExcludeDeleted: true, Limit: store.MaxLimit}
	for {
		p, err := r.w.d.Store.List(ctx, f)
		if err != nil {
			return nil, &infraError{fmt.Errorf("list known projects: %w", err)}
		}
		for _, d := range p.Docs {
			known[d.ID] = d.Identifier
		}
		if p.NextCursor == "" {
			return known, nil
		}
		f.Cursor = p.NextCursor
	}
}

// projectDeleted asks project/search whether a missing project is archived
// or in the trash (the status parameter, JIRA.md §5). Where Jira does not
// answer (404, or a site without the parameter), the project counts as not
// deleted: better a stale ticket than a false tombstone.
func (r *run) projectDeleted(ctx context.Context, key string) (bool, error) {
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
func (r *run) statuses(ctx context.Context) error {
	var cat *store.Catalog
	if err := r.call(ctx, func(ctx context.Context) (err error) {
		cat, err = r.client.Catalog(ctx, r.w.d.Now().UTC())
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
	if _, err := r.w.updateConn(ctx, r.conn.ID, func(c *store.Connection) error {
		if old := c.Detail.Catalog; old == nil || !slices.Equal(old.Priorities, cat.Priorities) {
			c.Detail.MappingRevision++
		}
		c.Detail.Catalog = cat
		return nil
	}); err != nil {
		return err
	}
	r.saveMu.Lock()
	r.cp.Unmapped = unmapped
	r.saveMu.Unlock()
	return nil
}

// users publishes every account users/search lists (active, inactive and
// deleted ones). Jira can return short pages before the end, so only an
// empty page ends it.
func (r *run) users(ctx context.Context) error {
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
func (r *run) groups(ctx context.Context) error {
	for start := 0; ; {
		var p *jiracloud.PageBean
		if err := r.call(ctx, func(ctx context.Context) (err error) {
			p, err = r.client.Groups(ctx, start, 50)
			return err
		}); err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.w.cfg.MaxCallsInFlight)
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

func (r *run) group(ctx context.Context, raw json.RawMessage) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		r.errs.Add(1)
		return nil
	}
	v := peek(raw)
	if v.GroupID == "" {
		r.errs.Add(1)
		r.markIncomplete("a group without groupId")
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

// reconcile publishes the reconcile marker of a full sync that completed:
// the normalizer tombstones the objects of the listed kinds that this sync
// did not see. Kinds the sync could not cover completely (lost projects,
// unreadable issues) are left out, so nothing is deleted on their account.
func (r *run) reconcile(ctx context.Context) error {
	r.setPhase(PhaseReconcile)
	if err := r.checkDeadline(); err != nil {
		return err
	}
	if err := r.pub.flush(ctx); err != nil {
		return err
	}
	r.saveMu.Lock()
	incomplete := r.mergeIncomplete(append([]string(nil), r.cp.Incomplete...))
	lost := append([]string(nil), r.cp.LostProjects...)
	r.saveMu.Unlock()
	kinds := []itsm.Kind{itsm.KindUser, itsm.KindGroup}
	ticketsComplete := len(incomplete) == 0
	if ticketsComplete {
		kinds = append(kinds, itsm.KindProject, itsm.KindTicket, itsm.KindComment, itsm.KindAttachment)
	}
	if err := r.barrier(ctx); err != nil {
		return err
	}
	marker := &raw.SyncRecord{Type: raw.TypeReconcile, SyncID: r.state.ID, StartedAt: r.state.StartedAt,
		Kinds: kinds, ObservedAt: r.w.d.Now().UTC()}
	if err := r.pub.record(ctx, marker, msgID(r.state.ID, raw.TypeReconcile)); err != nil {
		return err
	}
	if err := r.pub.flush(ctx); err != nil {
		return err
	}
	lastErr := ""
	if !ticketsComplete {
		lastErr = "not reconciled for tickets: " + strings.Join(incomplete, "; ")
	}
	now := r.w.d.Now().UTC()
	return r.complete(ctx, store.SyncCompleted, lastErr, func(c *store.Connection) {
		r.advanceWatermark(c)
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
	})
}

// advanceWatermark moves the incremental watermark to the sync's start:
// everything updated before it has been read.
func (r *run) advanceWatermark(c *store.Connection) {
	start := r.state.StartedAt.UTC()
	if c.Detail.Watermark == nil || c.Detail.Watermark.Before(start) {
		c.Detail.Watermark = &start
	}
}

// barrier waits until the normalizer has acknowledged every record of this
// sync. It processes RAW concurrently, so without this a reconcile marker
// could overtake records that it would then tombstone as unseen.
func (r *run) barrier(ctx context.Context) error {
	name := r.w.cfg.BarrierConsumer
	last := r.pub.last()
	if name == "" || last == 0 {
		return nil
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		cons, err := r.w.d.JS.Consumer(ctx, "RAW", name)
		if err == nil {
			info, err := cons.Info(ctx)
			if err == nil && info.AckFloor.Stream >= last {
				return nil
			}
		}
		if err := r.checkDeadline(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
