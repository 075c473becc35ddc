package jiracloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	json "github.com/go-json-experiment/json/v1"
)

// Read endpoints of the backfill (JIRA.md §5). Records come back as raw JSON:
// the normalizer is the one place that interprets them, so the client only
// reads what paging needs.

// MaxIDPage is the largest search/jql page when only ids are asked for.
const MaxIDPage = 5000

// MaxBulkFetch is the most issues issue/bulkfetch takes per call.
const MaxBulkFetch = 100

// IDPage is one page of search/jql with fields=id.
type IDPage struct {
	IDs []string
	// NextPageToken continues the search; empty on the last page. Jira's
	// tokens expire after 7 days.
	NextPageToken string
	IsLast        bool
}

// SearchIDs reads one page of issue ids matching jql (which must be bounded),
// starting at nextPageToken ("" for the first page). maxResults is capped at
// MaxIDPage. POST keeps long JQL out of URLs and logs.
func (c *Client) SearchIDs(ctx context.Context, jql, nextPageToken string, maxResults int) (*IDPage, error) {
	if maxResults <= 0 || maxResults > MaxIDPage {
		maxResults = MaxIDPage
	}
	in := map[string]any{"jql": jql, "maxResults": maxResults, "fields": []string{"id"}}
	if nextPageToken != "" {
		in["nextPageToken"] = nextPageToken
	}
	var out struct {
		Issues []struct {
			ID string `json:"id"`
		} `json:"issues"`
		NextPageToken string `json:"nextPageToken"`
		IsLast        *bool  `json:"isLast"`
	}
	if err := c.Do(ctx, http.MethodPost, "/search/jql", in, &out); err != nil {
		return nil, err
	}
	p := &IDPage{IDs: make([]string, 0, len(out.Issues)), NextPageToken: out.NextPageToken}
	for _, is := range out.Issues {
		if is.ID != "" {
			p.IDs = append(p.IDs, is.ID)
		}
	}
	// The token is missing on the last page; isLast is the explicit flag.
	// Trust either, so that a missing flag never loops forever.
	p.IsLast = out.NextPageToken == "" || (out.IsLast != nil && *out.IsLast)
	if p.IsLast {
		p.NextPageToken = ""
	}
	return p, nil
}

// ApproximateCount estimates how many issues match jql (bounded). Only
// progress reporting uses it: it is an estimate and eventually consistent.
func (c *Client) ApproximateCount(ctx context.Context, jql string) (int, error) {
	var out struct {
		Count int `json:"count"`
	}
	if err := c.Do(ctx, http.MethodPost, "/search/approximate-count", map[string]string{"jql": jql}, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}

// BulkResult is issue/bulkfetch's answer. Issues that do not exist or that
// the grant cannot see are simply left out; IssueErrors carries the partial
// failures Jira reports.
type BulkResult struct {
	Issues      []json.RawMessage `json:"issues"`
	IssueErrors []json.RawMessage `json:"issueErrors"`
}

// ErrTooManyIDs: more than MaxBulkFetch ids in one bulkfetch.
var ErrTooManyIDs = errors.New("jiracloud: bulkfetch takes at most 100 issues")

// BulkFetch reads up to MaxBulkFetch issues by id with the given fields (nil:
// Jira's default, *navigable).
func (c *Client) BulkFetch(ctx context.Context, ids []string, fields []string) (*BulkResult, error) {
	if len(ids) > MaxBulkFetch {
		return nil, ErrTooManyIDs
	}
	if len(ids) == 0 {
		return &BulkResult{}, nil
	}
	in := map[string]any{"issueIdsOrKeys": ids}
	if len(fields) > 0 {
		in["fields"] = fields
	}
	var out BulkResult
	if err := c.Do(ctx, http.MethodPost, "/issue/bulkfetch", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CommentPage is one page of an issue's comments, oldest first.
type CommentPage struct {
	Comments   []json.RawMessage `json:"comments"`
	StartAt    int               `json:"startAt"`
	MaxResults int               `json:"maxResults"`
	Total      int               `json:"total"`
}

// IsLast tells whether the page ends the list.
func (p *CommentPage) IsLast() bool {
	return len(p.Comments) == 0 || p.StartAt+len(p.Comments) >= p.Total
}

// Comments reads one page of an issue's comments in creation order (so that
// paging is stable while comments are added). maxResults <= 0 uses Jira's
// default of 100.
func (c *Client) Comments(ctx context.Context, issueID string, startAt, maxResults int) (*CommentPage, error) {
	if maxResults <= 0 {
		maxResults = 100
	}
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}, "orderBy": {"created"}}
	var p CommentPage
	if err := c.Do(ctx, http.MethodGet, "/issue/"+url.PathEscape(issueID)+"/comment?"+q.Encode(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// MaxRawBody bounds a raw response read into memory (a bulkfetch of 100
// issues with every field is a few MB).
const MaxRawBody = 64 << 20

// BulkFetchRaw is BulkFetch returning Jira's answer unparsed
// ({"issues":[...],"issueErrors":[...]}) in dst[:0] (grown as needed; nil
// is fine), for callers that stream the issues on without decoding them: it
// saves decoding and copying every issue on the hot path of a full sync, and
// lets the caller reuse one buffer for every call.
func (c *Client) BulkFetchRaw(ctx context.Context, ids []string, fields []string, dst []byte) ([]byte, error) {
	if len(ids) > MaxBulkFetch {
		return dst, ErrTooManyIDs
	}
	in := map[string]any{"issueIdsOrKeys": ids}
	if len(fields) > 0 {
		in["fields"] = fields
	}
	return c.doRaw(ctx, http.MethodPost, "/issue/bulkfetch", in, dst)
}

// doRaw is Do that reads the body into dst[:0] instead of decoding it.
func (c *Client) doRaw(ctx context.Context, method, path string, in any, dst []byte) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, pathOnly(path), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: %w", method, pathOnly(path), apiError(resp))
	}
	buf := bytes.NewBuffer(dst[:0])
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, MaxRawBody+1)); err != nil {
		return buf.Bytes(), fmt.Errorf("%s %s: read: %w", method, pathOnly(path), err)
	}
	if buf.Len() > MaxRawBody {
		return buf.Bytes(), fmt.Errorf("%s %s: answer larger than %d bytes", method, pathOnly(path), MaxRawBody)
	}
	return buf.Bytes(), nil
}
