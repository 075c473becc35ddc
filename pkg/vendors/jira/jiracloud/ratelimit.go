package jiracloud

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateInfo is what one response said about Jira's rate limits (JIRA.md §6).
// Any endpoint may answer 429; some 503s carry Retry-After too.
type RateInfo struct {
	Status int
	// RetryAfter is Retry-After (seconds or an HTTP date); 0 when absent,
	// which happens (JRACLOUD-82801).
	RetryAfter time.Duration
	// Reset is X-RateLimit-Reset (ISO 8601, minute precision); zero when
	// absent.
	Reset time.Time
	// Limit and Remaining are X-RateLimit-Limit/-Remaining; -1 when absent.
	Limit, Remaining int
	// NearLimit is X-RateLimit-NearLimit: under 20 % of the budget is left.
	NearLimit bool
	// Reason is RateLimit-Reason (jira-burst-based, jira-quota-based,
	// jira-quota-tenant-based, jira-per-issue-on-write, jira-cost-based).
	Reason string
}

// Limited tells whether the response refused the call for rate reasons.
func (r RateInfo) Limited() bool { return r.Status == http.StatusTooManyRequests }

// QuotaBased tells whether the refusal is about the tenant's quota (pause
// every call of the tenant until it resets) rather than a burst (slow the
// one call down). Unknown reasons count as bursts: the per-call backoff
// still applies, and a quota refusal that is not recognised only costs a few
// more refused calls.
func (r RateInfo) QuotaBased() bool {
	return r.Limited() && strings.Contains(strings.ToLower(r.Reason), "quota")
}

// ParseRateInfo reads the rate-limit headers of a response.
func ParseRateInfo(status int, h http.Header, now time.Time) RateInfo {
	ri := RateInfo{Status: status, Limit: -1, Remaining: -1, Reason: h.Get("RateLimit-Reason")}
	if ri.Reason == "" {
		ri.Reason = h.Get("X-RateLimit-Reason")
	}
	ri.RetryAfter = parseRetryAfter(h.Get("Retry-After"), now)
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		for _, layout := range []string{"2006-01-02T15:04Z07:00", "2006-01-02T15:04Z", time.RFC3339} {
			if t, err := time.Parse(layout, v); err == nil {
				ri.Reset = t
				break
			}
		}
	}
	if n, err := strconv.Atoi(h.Get("X-RateLimit-Limit")); err == nil {
		ri.Limit = n
	}
	if n, err := strconv.Atoi(h.Get("X-RateLimit-Remaining")); err == nil {
		ri.Remaining = n
	}
	ri.NearLimit = strings.EqualFold(h.Get("X-RateLimit-NearLimit"), "true")
	return ri
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Observer sees every HTTP exchange of a client: the endpoint as a
// low-cardinality template ("issue/{id}/comment"), the status (0 when the
// call failed before an answer) and the rate-limit headers.
type Observer func(method, endpoint string, info RateInfo, err error)

// Observe returns a client that reports every exchange to fn; c itself is
// unchanged. It is how callers count calls and learn the rate-limit headers
// that Do's errors do not carry (X-RateLimit-Reset, -NearLimit).
func (c *Client) Observe(fn Observer) *Client {
	hc := *c.hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &observingTransport{base: base, fn: fn}
	return &Client{hc: &hc, base: c.base}
}

type observingTransport struct {
	base http.RoundTripper
	fn   Observer
}

func (t *observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	ep := EndpointTemplate(req.URL.Path)
	if err != nil {
		t.fn(req.Method, ep, RateInfo{Limit: -1, Remaining: -1}, err)
		return nil, err
	}
	t.fn(req.Method, ep, ParseRateInfo(resp.StatusCode, resp.Header, time.Now()), nil)
	return resp, nil
}

// EndpointTemplate turns a REST path into a metric label: the part after
// /rest/api/3/, with ids and issue keys replaced by {id}.
func EndpointTemplate(path string) string {
	if i := strings.Index(path, "/rest/api/3/"); i >= 0 {
		path = path[i+len("/rest/api/3/"):]
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if isIDSegment(p) {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// isIDSegment: a numeric id or an issue key (ABC-123).
func isIDSegment(s string) bool {
	if s == "" {
		return false
	}
	digits := strings.TrimLeft(s, "0123456789")
	if digits == "" {
		return true
	}
	dash := strings.LastIndexByte(s, '-')
	if dash <= 0 || dash == len(s)-1 {
		return false
	}
	return strings.Trim(s[dash+1:], "0123456789") == "" && strings.ToUpper(s[:dash]) == s[:dash]
}
