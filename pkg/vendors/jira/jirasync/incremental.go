package jirasync

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// incremental reads the issues updated since the watermark (minus the
// overlap) and publishes them like a full sync does; the worker then moves
// the watermark to this sync's start.
func (r *crawl) incremental(ctx context.Context) error {
	r.run.SetPhase(PhaseIssues)
	if len(r.conn.Options.ProjectKeysFilter) > 0 && r.cp.ProjectKeys == nil {
		// JQL rejects unknown project keys: search only the visible ones.
		keys, err := r.visibleFilterKeys(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.cp.ProjectKeys = keys
		r.mu.Unlock()
		if len(keys) == 0 {
			return nil
		}
	}
	if err := r.loadZone(ctx); err != nil {
		return err
	}
	return r.issues(ctx)
}

func (r *crawl) visibleFilterKeys(ctx context.Context) ([]string, error) {
	keys := []string{}
	for chunk := range slices.Chunk(r.conn.Options.ProjectKeysFilter, maxKeysPerSearch) {
		for start := 0; ; {
			var p *jiracloud.ProjectPage
			if err := r.call(ctx, func(ctx context.Context) (err error) {
				p, err = r.client.SearchProjects(ctx, start, chunk)
				return err
			}); err != nil {
				return nil, err
			}
			for _, raw := range p.Values {
				if v := peek(raw); v.Key != "" {
					keys = append(keys, v.Key)
				}
			}
			if p.IsLast || len(p.Values) == 0 {
				break
			}
			start += len(p.Values)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// loadZone learns the time zone in which Jira reads this user's JQL dates
// (the profile's, JIRA.md §5 search). Without it, the date is widened by the
// largest UTC offset so that nothing is missed.
func (r *crawl) loadZone(ctx context.Context) error {
	var me *jiracloud.Myself
	err := r.call(ctx, func(ctx context.Context) (err error) {
		me, err = r.client.Myself(ctx)
		return err
	})
	if err != nil && !isClientError(err) {
		return err
	}
	if err == nil && me.TimeZone != "" {
		if loc, lerr := time.LoadLocation(me.TimeZone); lerr == nil {
			r.zone = loc
			return nil
		}
	}
	r.log.Info("the Jira user's time zone is unknown; widening the incremental window by 14h")
	r.zone = time.UTC
	r.widen = 14 * time.Hour
	return nil
}

func isClientError(err error) bool {
	var ae *jiracloud.APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests
}

// jqlDate renders t as JQL's "yyyy-MM-dd HH:mm" in the user's zone, rounded
// down to the minute (so the bound only ever widens).
func (r *crawl) jqlDate(t time.Time) string {
	loc := r.zone
	if loc == nil {
		loc = time.UTC
	}
	return t.Add(-r.widen).In(loc).Format("2006-01-02 15:04")
}
