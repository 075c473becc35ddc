// Package snclient is a ServiceNow Table API and Attachment API client for
// the sync: keyset paging on (sys_updated_on, sys_id) that follows Link and
// never stops on a short page, inclusive sys_updated_on>= watermarks,
// single records, a connection test, 429 with Retry-After, and an hourly
// rate budget that keeps a sync from spending the customer's whole hour.
//
// Authentication is the caller's: requests go through the *http.Client it
// gives (BasicAuth and Bearer wrap a transport for tests and connection
// tests). Values are read with sysparm_display_value=false (all strings,
// UTC dates) and reference links kept ({"link","value"}).
package snclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// Options tune a Client; zero values are the defaults.
type Options struct {
	// PageSize is sysparm_limit. Default 500.
	PageSize int
	// Budget is the share of an hourly rate limit (X-RateLimit-Limit) the
	// client spends; beyond it, it waits for the next hour. Default 0.5.
	Budget float64
	// MaxWait is the longest a call waits (Retry-After, spent budget); a
	// longer wait returns a *PausedError. Default 1 minute.
	MaxWait time.Duration
	// Retries of a 5xx or transport error, with backoff. Default 3.
	Retries int
	// Now is the clock of ResumeAt and the rate window. Default time.Now.
	Now func() time.Time
	// Observe, when set, counts each call: endpoint (a table), status
	// ("200", "429", "error") and whether a rate limit answered.
	Observe func(endpoint, status string, limited bool)
}

// Client calls one instance.
type Client struct {
	hc   *http.Client
	base *url.URL
	o    Options

	mu     sync.Mutex
	reset  int64 // X-RateLimit-Reset of the current window (unix)
	limit  int
	spent  int
	sleepF func(ctx context.Context, d time.Duration) error
}

// New is a client of the instance at instanceURL
// (https://dev1.service-now.com, or a simulator's loopback URL) that sends
// its requests through hc.
func New(hc *http.Client, instanceURL string, o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(instanceURL), "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		// The URL is not repeated: it could carry credentials.
		return nil, errors.New("servicenow: instance URL: want https://<instance>.service-now.com without user info")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Budget <= 0 || o.Budget > 1 {
		o.Budget = 0.5
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	if o.Retries <= 0 {
		o.Retries = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{hc: hc, base: u, o: o, sleepF: sleep}, nil
}

// BaseURL is the instance URL.
func (c *Client) BaseURL() string { return c.base.String() }

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// budgetWait is how long the next call must wait for the hourly budget.
func (c *Client) budgetWait() (time.Duration, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit <= 0 || c.reset == 0 {
		return 0, time.Time{}
	}
	reset := time.Unix(c.reset, 0)
	now := c.o.Now()
	if !now.Before(reset) {
		c.spent, c.reset = 0, 0
		return 0, time.Time{}
	}
	allowed := int(float64(c.limit) * c.o.Budget)
	if allowed < 1 {
		allowed = 1
	}
	if c.spent < allowed {
		return 0, time.Time{}
	}
	return reset.Sub(now), reset
}

// account counts a call against the window its answer names.
func (c *Client) account(h http.Header) {
	limit, err1 := strconv.Atoi(h.Get("X-RateLimit-Limit"))
	reset, err2 := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err1 != nil || err2 != nil {
		return
	}
	if reset != c.reset {
		c.reset, c.spent = reset, 0
	}
	c.limit = limit
	c.spent++
}

// get performs a GET with pacing and retries and returns the body and
// headers of a 2xx answer.
func (c *Client) get(ctx context.Context, u *url.URL, endpoint string) ([]byte, http.Header, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if d, until := c.budgetWait(); d > 0 {
			if d > c.o.MaxWait {
				return nil, nil, &PausedError{Until: until, Cause: fmt.Errorf("%.0f%% of the hourly limit spent", c.o.Budget*100)}
			}
			if err := c.sleepF(ctx, d); err != nil {
				return nil, nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("servicenow: %w", err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			c.observe(endpoint, "error", false)
			lastErr = fmt.Errorf("%w: GET %s: %w", ErrUnreachable, u.Path, redact(err))
			if attempt >= c.o.Retries {
				return nil, nil, lastErr
			}
			if err := c.sleepF(ctx, backoff(attempt)); err != nil {
				return nil, nil, err
			}
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		resp.Body.Close()
		c.account(resp.Header)
		limited := resp.StatusCode == http.StatusTooManyRequests
		c.observe(endpoint, strconv.Itoa(resp.StatusCode), limited)
		if err != nil {
			lastErr = fmt.Errorf("%w: GET %s: reading the answer: %v", ErrUnreachable, u.Path, err)
			if attempt >= c.o.Retries {
				return nil, nil, lastErr
			}
			continue
		}
		if resp.StatusCode/100 == 2 {
			return body, resp.Header, nil
		}
		apiErr := apiError(u.Path, resp, body)
		switch {
		case limited:
			wait := apiErr.RetryAfter
			if wait <= 0 {
				wait = backoff(attempt)
			}
			if wait > c.o.MaxWait || attempt >= c.o.Retries+3 {
				return nil, nil, &PausedError{Until: c.o.Now().Add(wait), Cause: apiErr}
			}
			if err := c.sleepF(ctx, wait); err != nil {
				return nil, nil, err
			}
		case resp.StatusCode >= 500 && attempt < c.o.Retries:
			if err := c.sleepF(ctx, backoff(attempt)); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, apiErr
		}
	}
}

func (c *Client) observe(endpoint, status string, limited bool) {
	if c.o.Observe != nil {
		c.o.Observe(endpoint, status, limited)
	}
}

func backoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << attempt
	return min(d, 10*time.Second)
}

// redact drops the URL (which could carry userinfo) from a transport error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func apiError(path string, resp *http.Response, body []byte) *APIError {
	e := &APIError{Method: http.MethodGet, Path: path, Status: resp.StatusCode}
	var env struct {
		Error struct {
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.Message = env.Error.Message
		if s, ok := env.Error.Detail.(string); ok {
			e.Detail = s
		}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && n >= 0 {
		e.RetryAfter = time.Duration(n) * time.Second
	}
	return e
}

// Ping is the connection test: one cheap authenticated call (a single
// sys_id of table). Its error wraps ErrUnauthorized (401), ErrForbidden
// (403: a missing role), ErrUnreachable (no answer) or is an *APIError.
func (c *Client) Ping(ctx context.Context, table string) error {
	if table == "" {
		table = "incident"
	}
	if err := checkName(table); err != nil {
		return err
	}
	u := c.tableURL(table, "")
	q := url.Values{"sysparm_limit": {"1"}, "sysparm_fields": {"sys_id"}, "sysparm_no_count": {"true"}}
	u.RawQuery = q.Encode()
	_, _, err := c.get(ctx, u, table)
	return err
}

// Get reads one record (display_value=false); sys_attachment through the
// Attachment API, whose records carry download_link. A record that does
// not exist or that ACLs hide answers ErrNotFound.
func (c *Client) Get(ctx context.Context, table, sysID string) (jsontext.Value, error) {
	if err := checkName(table); err != nil {
		return nil, err
	}
	if err := checkValue(sysID); err != nil || sysID == "" {
		return nil, fmt.Errorf("servicenow: sys_id %q is not valid", sysID)
	}
	u := c.tableURL(table, sysID)
	if table == "sys_attachment" {
		u = c.attachmentURL()
		u.Path += "/" + sysID
	}
	u.RawQuery = url.Values{"sysparm_display_value": {"false"}}.Encode()
	body, _, err := c.get(ctx, u, table)
	if err != nil {
		return nil, err
	}
	var env struct {
		Result jsontext.Value `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Result) == 0 || env.Result[0] != '{' {
		return nil, fmt.Errorf("servicenow: GET %s: answer is not a record", u.Path)
	}
	if err := env.Result.Compact(); err != nil {
		return nil, fmt.Errorf("servicenow: GET %s: %w", u.Path, err)
	}
	return env.Result, nil
}

// tableURL is /api/now/v2/table/{table}[/{sys_id}]: v2 answers an empty
// list with 200 where v1 answers 404.
func (c *Client) tableURL(table, sysID string) *url.URL {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/api/now/v2/table/" + table
	if sysID != "" {
		u.Path += "/" + sysID
	}
	return &u
}

func (c *Client) attachmentURL() *url.URL {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/api/now/attachment"
	return &u
}
