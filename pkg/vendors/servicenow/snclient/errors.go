package snclient

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors a call's error wraps, by what the caller should do.
var (
	// ErrUnauthorized: 401, the credentials are wrong or revoked.
	ErrUnauthorized = errors.New("servicenow: not authenticated (check the credentials)")
	// ErrForbidden: 403, the account lacks a role or an ACL denies the
	// table (e.g. itil for incident, admin for sys_audit_delete).
	ErrForbidden = errors.New("servicenow: insufficient rights (check the account's roles)")
	// ErrNotFound: 404, no such record, or an ACL hides it.
	ErrNotFound = errors.New("servicenow: no record found")
	// ErrUnreachable: no HTTP answer from the instance.
	ErrUnreachable = errors.New("servicenow: instance unreachable")
	// ErrRateLimited: 429 and the wait was not taken.
	ErrRateLimited = errors.New("servicenow: rate limited")
)

// APIError is an answer other than 2xx: its status and ServiceNow's error
// message and detail ({"error":{"message","detail"},"status":"failure"}).
// It never holds credentials: the request is named by method and path.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
	Detail       string
	// RetryAfter is the 429's Retry-After; 0 otherwise.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return fmt.Sprintf("servicenow: %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// Is matches the sentinel of the status.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// PausedError says the instance's rate budget is spent until ResumeAt,
// longer than a call should wait: the sync parks (connector.Paused).
type PausedError struct {
	Until time.Time
	Cause error
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("servicenow: rate budget spent until %s: %v", e.Until.UTC().Format(time.RFC3339), e.Cause)
}

// ResumeAt is when the budget allows calls again.
func (e *PausedError) ResumeAt() time.Time { return e.Until }

func (e *PausedError) Unwrap() error { return e.Cause }
