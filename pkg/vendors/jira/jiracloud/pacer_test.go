package jiracloud_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

func TestParseRateInfo(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", "7")
	h.Set("X-RateLimit-Reset", "2026-03-02T10:05Z")
	h.Set("X-RateLimit-Limit", "100")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-NearLimit", "true")
	h.Set("RateLimit-Reason", "jira-quota-tenant-based")
	ri := jiracloud.ParseRateInfo(http.StatusTooManyRequests, h, now)
	require.Equal(t, 7*time.Second, ri.RetryAfter)
	require.Equal(t, now.Add(5*time.Minute), ri.Reset)
	require.Equal(t, 100, ri.Limit)
	require.Equal(t, 0, ri.Remaining)
	require.True(t, ri.NearLimit)
	require.True(t, ri.QuotaBased())

	h = http.Header{}
	h.Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
	ri = jiracloud.ParseRateInfo(http.StatusServiceUnavailable, h, now)
	require.Equal(t, 3*time.Second, ri.RetryAfter, "HTTP-date form")
	require.Equal(t, -1, ri.Limit)
	require.False(t, ri.QuotaBased(), "not a 429")
}

func TestEndpointTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"/ex/jira/abc/rest/api/3/issue/10001/comment": "issue/{id}/comment",
		"/ex/jira/abc/rest/api/3/issue/PROJ-12":       "issue/{id}",
		"/ex/jira/abc/rest/api/3/issue/bulkfetch":     "issue/bulkfetch",
		"/ex/jira/abc/rest/api/3/search/jql":          "search/jql",
		"/ex/jira/abc/rest/api/3/users/search":        "users/search",
	} {
		require.Equal(t, want, jiracloud.EndpointTemplate(in), in)
	}
}

// A quota refusal pauses every call of that tenant, and only that tenant.
func TestPacerQuotaPausesOnlyItsTenant(t *testing.T) {
	ctx := context.Background()
	quota := &jiracloud.APIError{Status: http.StatusTooManyRequests, RetryAfter: 300 * time.Millisecond, RateLimitReason: "jira-quota-tenant-based"}
	a := jiracloud.NewPacer(jiracloud.PacerConfig{MaxInFlight: 2})
	b := jiracloud.NewPacer(jiracloud.PacerConfig{MaxInFlight: 2})

	var calls atomic.Int32
	first := make(chan error, 1)
	go func() {
		first <- a.Do(ctx, func(context.Context) error {
			if calls.Add(1) == 1 {
				return quota
			}
			return nil
		})
	}()
	require.Eventually(t, func() bool { return a.PausedUntil().After(time.Now()) }, time.Second, time.Millisecond)

	// Another tenant is not held up by it.
	start := time.Now()
	require.NoError(t, b.Do(ctx, func(context.Context) error { return nil }))
	require.Less(t, time.Since(start), 100*time.Millisecond)

	// Another call of the paused tenant waits for the pause.
	require.NoError(t, a.Do(ctx, func(context.Context) error { return nil }))
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	require.NoError(t, <-first)
	require.EqualValues(t, 2, calls.Load(), "the refused call was retried once")
}

func TestPacerQuotaBeyondMaxPauseReturnsPausedError(t *testing.T) {
	p := jiracloud.NewPacer(jiracloud.PacerConfig{MaxPause: 100 * time.Millisecond})
	p.Observe(jiracloud.RateInfo{Status: http.StatusTooManyRequests, RetryAfter: time.Hour, Reason: "jira-quota-based", Limit: -1, Remaining: -1})
	other := jiracloud.NewPacer(jiracloud.PacerConfig{MaxPause: 100 * time.Millisecond})

	err := p.Do(context.Background(), func(context.Context) error { return nil })
	var pe *jiracloud.PausedError
	require.ErrorAs(t, err, &pe)
	require.WithinDuration(t, time.Now().Add(time.Hour), pe.Until, 20*time.Minute)

	start := time.Now()
	require.NoError(t, other.Do(context.Background(), func(context.Context) error { return nil }))
	require.Less(t, time.Since(start), 50*time.Millisecond, "other tenants are not paused")
}

func TestPacerBackoffAndGivingUp(t *testing.T) {
	var waits []time.Duration
	p := jiracloud.NewPacer(jiracloud.PacerConfig{
		MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d > 0 {
				waits = append(waits, d)
			}
			return ctx.Err()
		},
	})
	unavailable := &jiracloud.APIError{Status: http.StatusServiceUnavailable}
	var n int
	err := p.Do(context.Background(), func(context.Context) error { n++; return unavailable })
	require.ErrorIs(t, err, unavailable)
	require.Equal(t, 4, n)
	require.Len(t, waits, 3)

	// Retry-After wins over the backoff, never shorter.
	waits, n = nil, 0
	require.NoError(t, p.Do(context.Background(), func(context.Context) error {
		n++
		if n == 1 {
			return &jiracloud.APIError{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second, RateLimitReason: "jira-burst-based"}
		}
		return nil
	}))
	require.Len(t, waits, 1)
	require.GreaterOrEqual(t, waits[0], 2*time.Second)

	// Client errors are not retried.
	n = 0
	err = p.Do(context.Background(), func(context.Context) error { n++; return &jiracloud.APIError{Status: http.StatusBadRequest} })
	require.Error(t, err)
	require.Equal(t, 1, n)

	// Nor are errors the caller calls permanent.
	stop := errors.New("reconnect")
	p = jiracloud.NewPacer(jiracloud.PacerConfig{Permanent: func(err error) bool { return errors.Is(err, stop) }})
	n = 0
	require.ErrorIs(t, p.Do(context.Background(), func(context.Context) error { n++; return stop }), stop)
	require.Equal(t, 1, n)
}
