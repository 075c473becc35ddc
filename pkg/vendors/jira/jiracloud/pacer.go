package jiracloud

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// PacerConfig configures a Pacer. Zero values mean the documented default.
type PacerConfig struct {
	// MaxInFlight bounds concurrent calls of the tenant. Default 4.
	MaxInFlight int
	// MaxPerSecond spaces call starts; 0 = no spacing beyond MaxInFlight.
	MaxPerSecond float64
	// InitialBackoff and MaxBackoff shape the exponential backoff (with
	// jitter) used when Jira gives no Retry-After. Defaults 500ms and 30s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxAttempts per call, the first included. Default 10.
	MaxAttempts int
	// MaxElapsed gives up retrying a call after this long. Default 10m.
	MaxElapsed time.Duration
	// NearLimitGap spaces call starts while Jira says fewer than 20 % of
	// the budget is left (X-RateLimit-NearLimit), so that the budget lasts
	// instead of running into 429s. Default 200ms.
	NearLimitGap time.Duration
	// MaxPause: when the tenant's quota is exhausted for longer than this,
	// Do returns a *PausedError at once instead of holding the caller (and
	// whatever resources it holds) for the whole pause. 0 = always wait.
	MaxPause time.Duration
	// Permanent marks errors that must not be retried besides the non-
	// retryable HTTP statuses (for example "the customer must reconnect").
	Permanent func(error) bool
	// OnRetry is told about every retry (metrics, logs).
	OnRetry func(err error, wait time.Duration)
	// Now and Sleep are the real clock by default; tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *PacerConfig) setDefaults() {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.MaxElapsed <= 0 {
		c.MaxElapsed = 10 * time.Minute
	}
	if c.NearLimitGap <= 0 {
		c.NearLimitGap = 200 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PausedError: the tenant's quota is exhausted until Until, longer than
// PacerConfig.MaxPause.
type PausedError struct {
	Until time.Time
	Err   error
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("jira quota exhausted until %s: %v", e.Until.UTC().Format(time.RFC3339), e.Err)
}

func (e *PausedError) Unwrap() error { return e.Err }

// Pacer runs the REST calls of one tenant (one Jira site): at most
// MaxInFlight at once, retried on 429, 5xx and transport errors after
// Retry-After (plus jitter, since retrying earlier fails again) or, without
// one, exponential backoff with jitter. A quota refusal pauses every call of
// the tenant until the quota resets; a burst refusal only delays the call
// that got it. Pacers of different tenants share nothing, so one tenant's
// exhausted quota never slows another.
//
// Feed it the headers of every response with Observe (Client.Observe does).
type Pacer struct {
	cfg PacerConfig
	sem chan struct{}

	mu          sync.Mutex
	pausedUntil time.Time
	nearLimit   bool
	nextStart   time.Time
	lastErr     error
}

// NewPacer builds a pacer.
func NewPacer(cfg PacerConfig) *Pacer {
	cfg.setDefaults()
	return &Pacer{cfg: cfg, sem: make(chan struct{}, cfg.MaxInFlight)}
}

// Observe records the rate-limit headers of one response of the tenant.
func (p *Pacer) Observe(info RateInfo) {
	if info.Status == 0 {
		return
	}
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nearLimit = info.NearLimit
	if !info.QuotaBased() {
		return
	}
	until := now.Add(info.RetryAfter)
	if info.Reset.After(until) {
		until = info.Reset
	}
	if until.After(p.pausedUntil) {
		p.pausedUntil = until.Add(jitter(until.Sub(now)))
	}
}

// PausedUntil is when the tenant's quota pause ends (zero or past: none).
func (p *Pacer) PausedUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pausedUntil
}

// jitter spreads the return of calls that waited for the same moment: up to
// a quarter of the wait, at least a little.
func jitter(wait time.Duration) time.Duration {
	span := wait/4 + 100*time.Millisecond
	return time.Duration(rand.Int64N(int64(span)))
}

// admit waits until the call may start: after any quota pause, and spaced
// by MaxPerSecond and the near-limit gap.
func (p *Pacer) admit(ctx context.Context) error {
	for {
		now := p.cfg.Now()
		p.mu.Lock()
		paused := p.pausedUntil
		if !paused.After(now) {
			gap := time.Duration(0)
			if p.cfg.MaxPerSecond > 0 {
				gap = time.Duration(float64(time.Second) / p.cfg.MaxPerSecond)
			}
			if p.nearLimit {
				gap = max(gap, p.cfg.NearLimitGap)
			}
			start := now
			if gap > 0 && p.nextStart.After(now) {
				start = p.nextStart
			}
			p.nextStart = start.Add(gap)
			p.mu.Unlock()
			return p.cfg.Sleep(ctx, start.Sub(now))
		}
		lastErr := p.lastErr
		p.mu.Unlock()
		if wait := paused.Sub(now); p.cfg.MaxPause > 0 && wait > p.cfg.MaxPause {
			if lastErr == nil {
				lastErr = errors.New("rate limited")
			}
			return &PausedError{Until: paused, Err: lastErr}
		}
		if err := p.cfg.Sleep(ctx, paused.Sub(now)); err != nil {
			return err
		}
	}
}

// Retryable tells whether a failed call may succeed if repeated: 429, 408
// and 5xx answers, and transport failures that are not the caller giving up.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTooManyIDs)
}

// Do runs call under the tenant's limits, retrying it while it fails with a
// retryable error. It returns the last error when the attempts or the time
// are used up, ctx's error when ctx ends, and a *PausedError when the quota
// pause exceeds MaxPause.
func (p *Pacer) Do(ctx context.Context, call func(ctx context.Context) error) error {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.cfg.InitialBackoff),
		backoff.WithMaxInterval(p.cfg.MaxBackoff),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMultiplier(2),
		backoff.WithMaxElapsedTime(0),
	)
	start := p.cfg.Now()
	for attempt := 1; ; attempt++ {
		if err := p.admit(ctx); err != nil {
			return err
		}
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := call(ctx)
		<-p.sem
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !Retryable(err) || (p.cfg.Permanent != nil && p.cfg.Permanent(err)) {
			return err
		}
		if attempt >= p.cfg.MaxAttempts || p.cfg.Now().Sub(start) >= p.cfg.MaxElapsed {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		wait := b.NextBackOff()
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			// Retrying before Retry-After fails again (JIRA.md §6): wait it
			// out, plus jitter so the tenant's calls do not all return at once.
			wait = ae.RetryAfter + jitter(ae.RetryAfter)
		}
		p.mu.Lock()
		p.lastErr = err
		if ae != nil && ae.Status == http.StatusTooManyRequests && isQuotaReason(ae.RateLimitReason) {
			if until := p.cfg.Now().Add(wait); until.After(p.pausedUntil) {
				p.pausedUntil = until
			}
		}
		p.mu.Unlock()
		if p.cfg.OnRetry != nil {
			p.cfg.OnRetry(err, wait)
		}
		// A quota pause is waited for in admit (with the MaxPause check);
		// any other retry waits here, for this call only.
		if ae == nil || ae.Status != http.StatusTooManyRequests || !isQuotaReason(ae.RateLimitReason) {
			if err := p.cfg.Sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
}

func isQuotaReason(reason string) bool {
	return RateInfo{Status: http.StatusTooManyRequests, Reason: reason}.QuotaBased()
}

// ResumeAt is when the site's quota resets (connector.Paused).
func (e *PausedError) ResumeAt() time.Time { return e.Until }
