package jiracloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// APIError is a non-2xx answer of Jira.
type APIError struct {
	Status   int
	Messages []string
	// RetryAfter is Jira's Retry-After, when it sent one (429, some 503s).
	RetryAfter time.Duration
	// RateLimitReason is RateLimit-Reason (jira-burst-based, jira-quota-...).
	RateLimitReason string
}

func (e *APIError) Error() string {
	msg := http.StatusText(e.Status)
	if len(e.Messages) > 0 {
		msg = strings.Join(e.Messages, "; ")
	}
	return fmt.Sprintf("jira: HTTP %d: %s", e.Status, msg)
}

// Retryable tells whether the same call may succeed later.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Status == http.StatusRequestTimeout
}

// IsStatus reports whether err is an APIError with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// apiError reads Jira's error body ({errorMessages, errors}) without ever
// echoing request credentials; bodies are bounded.
func apiError(resp *http.Response) *APIError {
	e := &APIError{Status: resp.StatusCode, RateLimitReason: resp.Header.Get("RateLimit-Reason")}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var jb struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		Error         string            `json:"error"`
		Description   string            `json:"error_description"`
	}
	if json.Unmarshal(body, &jb) == nil {
		e.Messages = append(e.Messages, jb.ErrorMessages...)
		for k, v := range jb.Errors {
			e.Messages = append(e.Messages, k+": "+v)
		}
		if jb.Error != "" {
			e.Messages = append(e.Messages, strings.TrimSpace(jb.Error+" "+jb.Description))
		}
	}
	return e
}

// Client calls one site's REST API v3 through the gateway. Its HTTP client
// must add the Bearer token (an oauth2 client does).
type Client struct {
	hc   *http.Client
	base string
}

// NewClient makes a client of the site with that cloud id.
func NewClient(ep Endpoints, cloudID string, hc *http.Client) *Client {
	return &Client{hc: hc, base: strings.TrimRight(ep.APIURL, "/") + "/ex/jira/" + cloudID + "/rest/api/3"}
}

// Do sends a request and decodes a JSON answer into out (nil: discard).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, pathOnly(path), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %w", method, pathOnly(path), apiError(resp))
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, pathOnly(path), err)
	}
	return nil
}

// pathOnly keeps query strings (which may hold JQL) out of errors and logs.
func pathOnly(p string) string {
	path, _, _ := strings.Cut(p, "?")
	return path
}
