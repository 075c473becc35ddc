package jirasim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter answers REST calls with 429 when RateLimit is set (JIRA.md §6).
// It runs on the real clock: the client waits Retry-After in real time.
type limiter struct {
	mu     sync.Mutex
	rl     *RateLimit
	tokens float64
	last   time.Time
	count  int
}

func newLimiter(rl *RateLimit) *limiter {
	l := &limiter{}
	l.set(rl)
	return l
}

func (l *limiter) set(rl *RateLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rl != nil {
		c := *rl
		if c.Burst <= 0 {
			c.Burst = max(1, int(math.Ceil(c.PerSecond)))
		}
		if c.RetryAfter <= 0 {
			c.RetryAfter = Duration(time.Second)
		}
		rl = &c
		l.tokens = float64(c.Burst)
	}
	l.rl, l.last, l.count = rl, time.Now(), 0
}

func (l *limiter) current() *RateLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rl == nil {
		return nil
	}
	c := *l.rl
	return &c
}

// allow reports whether the request may proceed; if not it has written 429.
func (l *limiter) allow(w http.ResponseWriter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	rl := l.rl
	if rl == nil {
		return true
	}
	now := time.Now()
	l.count++
	if rl.EveryNth > 0 && l.count%rl.EveryNth == 0 {
		refuse(w, now, time.Duration(rl.RetryAfter), rl.EveryNth)
		return false
	}
	if rl.PerSecond > 0 {
		l.tokens = min(float64(rl.Burst), l.tokens+now.Sub(l.last).Seconds()*rl.PerSecond)
		l.last = now
		if l.tokens < 1 {
			wait := time.Duration((1 - l.tokens) / rl.PerSecond * float64(time.Second))
			refuse(w, now, wait, rl.Burst)
			return false
		}
		l.tokens--
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Burst))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(int(l.tokens)))
		if l.tokens < 0.2*float64(rl.Burst) {
			h.Set("X-RateLimit-NearLimit", "true")
		}
	}
	return true
}

func refuse(w http.ResponseWriter, now time.Time, wait time.Duration, limit int) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(secs))
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", "0")
	// ISO 8601 as documented (yyyy-MM-ddTHH:mmZ), rounded up to the minute.
	h.Set("X-RateLimit-Reset", now.Add(time.Duration(secs)*time.Second).UTC().Add(59*time.Second).Truncate(time.Minute).Format("2006-01-02T15:04Z"))
	h.Set("X-RateLimit-NearLimit", "true")
	h.Set("RateLimit-Reason", "jira-burst-based")
	jiraError(w, http.StatusTooManyRequests, "Rate limit exceeded.")
}
