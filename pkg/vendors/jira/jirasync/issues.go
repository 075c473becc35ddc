package jirasync

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// issueQueries are the JQL restrictions of the issue phase, one per chunk
// of project keys. A full sync covers the projects it resolved; an
// incremental one adds the watermark.
func (r *crawl) issueQueries() []string {
	var base []string
	keys := r.cp.ProjectKeys
	if r.kind == store.SyncIncremental && len(r.conn.Options.ProjectKeysFilter) == 0 {
		base = []string{""} // the date bound alone is a bounded query
	} else {
		for chunk := range slices.Chunk(keys, maxKeysPerQuery) {
			base = append(base, "project IN ("+quoteKeys(chunk)+")")
		}
	}
	if r.kind != store.SyncIncremental {
		return base
	}
	date := fmt.Sprintf(`updated >= "%s"`, r.jqlDate(r.run.From()))
	for i, b := range base {
		if b == "" {
			base[i] = date
		} else {
			base[i] = b + " AND " + date
		}
	}
	return base
}

// issues pages the ids of every issue in scope (ascending id, id-only pages
// of up to 5000), fetches them in bulk and publishes each issue, its
// attachments and its comments. It checkpoints after every page.
func (r *crawl) issues(ctx context.Context) error {
	queries := r.issueQueries()
	if r.kind == store.SyncFull && r.cp.Chunk == 0 && r.cp.NextPageToken == "" && r.cp.AfterID == "" && len(queries) > 0 {
		r.estimate(ctx, queries)
	}
	for ci := r.cp.Chunk; ci < len(queries); ci++ {
		token, after := "", ""
		if ci == r.cp.Chunk {
			token, after = r.cp.NextPageToken, r.cp.AfterID
		}
		search := func(token, after string) <-chan searchResult {
			jql := queries[ci]
			if after != "" {
				jql += " AND id > " + after
			}
			jql += " ORDER BY id ASC"
			ch := make(chan searchResult, 1)
			go func() {
				var res searchResult
				res.err = r.call(ctx, func(ctx context.Context) (err error) {
					res.page, err = r.client.SearchIDs(ctx, jql, token, r.s.cfg.SearchPageSize)
					return err
				})
				ch <- res
			}()
			return ch
		}
		next := search(token, after)
		for {
			res := <-next
			if token != "" && jiracloud.IsStatus(res.err, http.StatusBadRequest) && r.cp.LastIssueID != "" {
				// The page token expired (7 days) or belongs to another
				// query: restart after the last issue of the checkpoint.
				r.log.Info("search page token refused; continuing after the last checkpointed issue", zap.String("after_id", r.cp.LastIssueID))
				token, after = "", r.cp.LastIssueID
				next = search(token, after)
				continue
			}
			if res.err != nil {
				return res.err
			}
			page := res.page
			if !page.IsLast {
				// The next id page is read while this one's issues are.
				next = search(page.NextPageToken, after)
			}
			if err := r.fetchIssues(ctx, page.IDs); err != nil {
				return err
			}
			last := r.cp.LastIssueID
			if n := len(page.IDs); n > 0 {
				last = page.IDs[n-1]
			}
			done := page.IsLast
			nextToken, nextAfter := page.NextPageToken, after
			if err := r.checkpoint(ctx, PhaseIssues, func(cp *cursor) {
				cp.SearchPages++
				if done {
					cp.Chunk, cp.NextPageToken, cp.AfterID, cp.LastIssueID = ci+1, "", "", ""
				} else {
					cp.Chunk, cp.NextPageToken, cp.AfterID, cp.LastIssueID = ci, nextToken, nextAfter, last
				}
			}); err != nil {
				return err
			}
			if done {
				break
			}
			token = nextToken
		}
	}
	return nil
}

type searchResult struct {
	page *jiracloud.IDPage
	err  error
}

// estimate records search/approximate-count for progress; best effort.
func (r *crawl) estimate(ctx context.Context, queries []string) {
	total := 0
	for _, q := range queries {
		var n int
		if err := r.call(ctx, func(ctx context.Context) (err error) {
			n, err = r.client.ApproximateCount(ctx, q)
			return err
		}); err != nil {
			r.log.Debug("approximate count unavailable", zap.Error(err))
			return
		}
		total += n
	}
	r.run.Progress(connector.Progress{Estimate: total})
}

// fetchIssues bulk-fetches ids in batches of 100, a few batches at once
// (bounded per tenant by the pacer), and publishes what they hold.
func (r *crawl) fetchIssues(ctx context.Context, ids []string) error {
	g, gctx := errgroup.WithContext(ctx)
	// Twice the call bound: while some batches are being split and
	// published, others are in flight (the pacer still bounds the calls).
	g.SetLimit(2 * r.s.cfg.MaxCallsInFlight)
	for batch := range slices.Chunk(ids, jiracloud.MaxBulkFetch) {
		g.Go(func() error {
			buf := r.s.bufs.Get().(*[]byte)
			defer r.s.bufs.Put(buf)
			if err := r.call(gctx, func(ctx context.Context) (err error) {
				*buf, err = r.client.BulkFetchRaw(ctx, batch, r.s.cfg.IssueFields, *buf)
				return err
			}); err != nil {
				return err
			}
			body := *buf
			// The issues are split out of the answer as they are, without
			// decoding them: the normalizer is the one that reads them.
			var issues, issueErrors []byte
			if err := members(body, func(m span) bool {
				switch string(m.name) {
				case "issues":
					issues = m.value
				case "issueErrors":
					issueErrors = m.value
				}
				return true
			}); err != nil {
				return fmt.Errorf("bulkfetch answer: %w", err)
			}
			if n := countElements(issueErrors); n > 0 {
				// Some issues could not be read: they were not seen, so no
				// ticket may be tombstoned on the strength of this sync.
				r.run.Failed(n)
				r.incomplete(fmt.Sprintf("bulkfetch reported errors for %d issue(s)", n))
			}
			if len(issues) == 0 {
				return nil
			}
			// The batch's issues go out before their comments and
			// attachments: the normalizer checks each child's ticket, and
			// finds it in its cache, not the store, once the ticket is
			// written. Publishing each issue's children right behind it had
			// them processed alongside it, and most checks read the store.
			var split []*splitIssue
			if err := elements(issues, func(raw []byte) error {
				is := r.split(raw)
				if is == nil {
					return nil
				}
				split = append(split, is)
				return r.publish(gctx, recIssue, "", is.body, is.id, is.updated)
			}); err != nil {
				return err
			}
			for _, is := range split {
				if err := r.children(gctx, is); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// split is an issue without its embedded comments and attachments, which go
// out as records of their own; nil, counted as an error of the sync, when
// the issue cannot be read.
func (r *crawl) split(raw []byte) *splitIssue {
	is, err := split(raw)
	if err != nil {
		r.run.Failed(1)
		r.incomplete("an unreadable issue")
		r.log.Warn("skipping an issue the backfill cannot read", zap.Error(err))
		return nil
	}
	return is
}

// children publishes an issue's attachments and comments, paging the
// comments the issue did not embed.
func (r *crawl) children(ctx context.Context, is *splitIssue) error {
	for _, a := range is.attachments {
		f, _ := fieldsOf(a, "id", "created")
		if err := r.publish(ctx, recAttachment, is.id, a, text(f["id"]), text(f["created"])); err != nil {
			return err
		}
	}
	if is.hasComments && len(is.comments) >= is.commentsTotal {
		return r.comments(ctx, is.id, is.comments)
	}
	// More comments than the issue embeds (at most 20): page them all.
	for start := 0; ; {
		var p *jiracloud.CommentPage
		err := r.call(ctx, func(ctx context.Context) (err error) {
			p, err = r.client.Comments(ctx, is.id, start, 100)
			return err
		})
		if jiracloud.IsStatus(err, http.StatusNotFound) {
			return nil // deleted since the bulk fetch
		}
		if err != nil {
			return err
		}
		cs := make([][]byte, len(p.Comments))
		for i, c := range p.Comments {
			cs[i] = c
		}
		if err := r.comments(ctx, is.id, cs); err != nil {
			return err
		}
		if p.IsLast() {
			return nil
		}
		start += len(p.Comments)
	}
}

func (r *crawl) comments(ctx context.Context, issueID string, cs [][]byte) error {
	for _, c := range cs {
		f, _ := fieldsOf(c, "id", "updated")
		if err := r.publish(ctx, recComment, issueID, c, text(f["id"]), text(f["updated"])); err != nil {
			return err
		}
	}
	return nil
}

// quoteKeys renders project keys for JQL.
func quoteKeys(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = `"` + strings.ReplaceAll(k, `"`, `\"`) + `"`
	}
	return strings.Join(q, ",")
}
