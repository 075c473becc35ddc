package snclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// Create inserts a record (POST /api/now/table/{table}) and answers it as
// the instance rendered it (display_value=false). Fields the table does not
// have are ignored by the instance.
func (c *Client) Create(ctx context.Context, table string, fields map[string]any) (jsontext.Value, error) {
	if err := checkName(table); err != nil {
		return nil, err
	}
	return c.write(ctx, http.MethodPost, c.tableURL(table, ""), table, fields)
}

// Patch changes fields of a record (PATCH /api/now/table/{table}/{sys_id});
// a journal field (comments, work_notes) adds an entry.
func (c *Client) Patch(ctx context.Context, table, sysID string, fields map[string]any) (jsontext.Value, error) {
	if err := checkName(table); err != nil {
		return nil, err
	}
	if err := checkValue(sysID); err != nil || sysID == "" || strings.ContainsAny(sysID, "/?#") {
		return nil, fmt.Errorf("servicenow: sys_id %q is not valid", sysID)
	}
	return c.write(ctx, http.MethodPatch, c.tableURL(table, sysID), table, fields)
}

// write sends one write. It is repeated only after a 429, which the
// instance answers before doing anything; any other failure (a 5xx, a
// lost answer) may have written, and is not repeated.
func (c *Client) write(ctx context.Context, method string, u *url.URL, table string, fields map[string]any) (jsontext.Value, error) {
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("servicenow: encode %s body: %w", method, err)
	}
	u.RawQuery = url.Values{"sysparm_display_value": {"false"}}.Encode()
	for attempt := 0; ; attempt++ {
		if d, until := c.budgetWait(); d > 0 {
			if d > c.o.MaxWait {
				return nil, &PausedError{Until: until, Cause: fmt.Errorf("%.0f%% of the hourly limit spent", c.o.Budget*100)}
			}
			if err := c.sleepF(ctx, d); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("servicenow: %w", err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.observe(table, "error", false)
			return nil, fmt.Errorf("%w: %s %s: %w", ErrUnreachable, method, u.Path, redact(err))
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		c.account(resp.Header)
		limited := resp.StatusCode == http.StatusTooManyRequests
		c.observe(table, strconv.Itoa(resp.StatusCode), limited)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: reading the answer: %v", ErrUnreachable, method, u.Path, err)
		}
		if resp.StatusCode/100 == 2 {
			var env struct {
				Result jsontext.Value `json:"result"`
			}
			if err := json.Unmarshal(answer, &env); err != nil || len(env.Result) == 0 || env.Result[0] != '{' {
				return nil, fmt.Errorf("servicenow: %s %s: answer is not a record", method, u.Path)
			}
			if err := env.Result.Compact(); err != nil {
				return nil, fmt.Errorf("servicenow: %s %s: %w", method, u.Path, err)
			}
			return env.Result, nil
		}
		apiErr := apiError(u.Path, resp, answer)
		apiErr.Method = method
		if !limited {
			return nil, apiErr
		}
		wait := apiErr.RetryAfter
		if wait <= 0 {
			wait = backoff(attempt)
		}
		if wait > c.o.MaxWait || attempt >= c.o.Retries {
			return nil, &PausedError{Until: c.o.Now().Add(wait), Cause: apiErr}
		}
		if err := c.sleepF(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// ListPage is one page of List.
type ListPage struct {
	Rows []jsontext.Value
	// Next is the Link rel="next" target ("" on the last page).
	Next string
	// Total is X-Total-Count (counted before ACLs); -1 when absent.
	Total int
}

// List reads one page of a table: query is an encoded query the caller
// validated, offset and limit its window. Rows are filtered by ACLs after
// the limit, so a page can be short or empty while Next names more.
func (c *Client) List(ctx context.Context, table, query string, fields []string, offset, limit int) (ListPage, error) {
	if err := checkName(table); err != nil {
		return ListPage{}, err
	}
	for _, f := range fields {
		if err := checkName(f); err != nil {
			return ListPage{}, err
		}
	}
	if limit <= 0 {
		limit = c.o.PageSize
	}
	u := c.tableURL(table, "")
	v := url.Values{"sysparm_query": {query}, "sysparm_limit": {strconv.Itoa(limit)},
		"sysparm_offset": {strconv.Itoa(max(0, offset))}, "sysparm_display_value": {"false"}}
	if len(fields) > 0 {
		v.Set("sysparm_fields", strings.Join(fields, ","))
	}
	u.RawQuery = v.Encode()
	body, h, err := c.get(ctx, u, table)
	if err != nil {
		return ListPage{}, err
	}
	var env struct {
		Result []jsontext.Value `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return ListPage{}, fmt.Errorf("servicenow: GET %s: answer is not a result list: %w", u.Path, err)
	}
	for i := range env.Result {
		if err := env.Result[i].Compact(); err != nil {
			return ListPage{}, fmt.Errorf("servicenow: GET %s: %w", u.Path, err)
		}
	}
	total := -1
	if n, err := strconv.Atoi(h.Get("X-Total-Count")); err == nil {
		total = n
	}
	return ListPage{Rows: env.Result, Next: nextLink(h.Get("Link")), Total: total}, nil
}
