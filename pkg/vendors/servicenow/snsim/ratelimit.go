package snsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate limits (SERVICENOW.md §2): rules count requests per user per clock
// hour (the sim clock, so tests cross an hour with Advance; RateWindow
// shortens the hour for tests on the real clock). Each answer a
// rule covers carries X-RateLimit-Limit, X-RateLimit-Reset (unix seconds of
// the hour's end) and X-RateLimit-Rule (the rule's sys_id); a request over
// the limit gets 429 with Retry-After in seconds.

type limiter struct {
	in     *Inst
	mu     sync.Mutex
	rs     []RateRule
	counts map[string]int // rule id | user | hour
}

func newLimiter(in *Inst, rules []RateRule) *limiter {
	l := &limiter{in: in}
	l.set(rules)
	return l
}

func (l *limiter) set(rules []RateRule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rs = nil
	for i, r := range rules {
		if r.ID == "" {
			h := sha256.Sum256([]byte(l.in.cfg.Name + "/rate/" + strconv.Itoa(i) + "/" + r.UserName + "/" + r.Role))
			r.ID = hex.EncodeToString(h[:16])
		}
		l.rs = append(l.rs, r)
	}
	l.counts = map[string]int{}
}

func (l *limiter) rules() []RateRule {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rs)
}

// rule picks the most specific rule for a user: by user name, then role,
// then everyone.
func (l *limiter) rule(p *principal) (RateRule, bool) {
	best, rank := RateRule{}, 0
	for _, r := range l.rs {
		k := 0
		switch {
		case r.UserName != "":
			if r.UserName == p.userName {
				k = 3
			}
		case r.Role != "":
			if p.roles[r.Role] {
				k = 2
			}
		default:
			k = 1
		}
		if k > rank {
			best, rank = r, k
		}
	}
	return best, rank > 0
}

// allow counts the request; false means 429 was written.
func (l *limiter) allow(w http.ResponseWriter, p *principal, path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.rule(p)
	if !ok {
		return true
	}
	now := l.in.sim.Now()
	window := l.in.cfg.RateWindow
	hour := now.Truncate(window)
	reset := hour.Add(window)
	key := r.ID + "|" + p.userName + "|" + strconv.FormatInt(hour.Unix(), 10)
	l.counts[key]++
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(r.Limit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Rule", r.ID)
	if l.counts[key] <= r.Limit {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(max(1, int(reset.Sub(now).Seconds()+0.999))))
	api := "Table API"
	if strings.HasPrefix(path, "/api/now/attachment") {
		api = "Attachment API"
	}
	snError(w, http.StatusTooManyRequests, "Rate limit exceeded",
		"Rate limit of "+strconv.Itoa(r.Limit)+" requests per hour for "+api+" exceeded")
	return false
}

// apiFaulter injects 5xx answers and latency into REST calls.
type apiFaulter struct {
	mu  sync.Mutex
	f   APIFaults
	n   int
	rng *rand.Rand
}

func newAPIFaulter(f APIFaults, rng *rand.Rand) *apiFaulter {
	return &apiFaulter{f: f, rng: rng}
}

func (a *apiFaulter) set(f APIFaults) {
	a.mu.Lock()
	a.f, a.n = f, 0
	a.mu.Unlock()
}

func (a *apiFaulter) get() APIFaults {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f
}

// pass applies the faults; false means an error was written.
func (a *apiFaulter) pass(ctx context.Context, w http.ResponseWriter) bool {
	a.mu.Lock()
	f := a.f
	a.n++
	fail := f.ErrorEveryNth > 0 && a.n%f.ErrorEveryNth == 0 || f.ErrorProb > 0 && a.rng.Float64() < f.ErrorProb
	a.mu.Unlock()
	if f.Latency > 0 {
		t := time.NewTimer(time.Duration(f.Latency))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if !fail {
		return true
	}
	status := f.ErrorStatus
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusInternalServerError {
		snError(w, status, "Internal Server Error", "simulated fault")
		return false
	}
	// A node or load balancer failure answers with a page, not JSON.
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("<html><body><h1>" + strconv.Itoa(status) + " " + http.StatusText(status) + "</h1></body></html>"))
	return false
}

// RequestLog is one REST call the instance answered.
type RequestLog struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query"`
	User   string    `json:"user"`
	Status int       `json:"status"`
}

type requestLog struct {
	mu    sync.Mutex
	max   int
	items []RequestLog
	total int
}

func newRequestLog(max int) *requestLog { return &requestLog{max: max} }

func (l *requestLog) add(now time.Time, r *http.Request, user string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if len(l.items) == l.max {
		l.items = slices.Delete(l.items, 0, l.max/10)
	}
	l.items = append(l.items, RequestLog{Time: now, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, User: user, Status: status})
}

// Requests returns the latest REST calls (at most 10,000), oldest first, and
// the number answered since the start.
func (in *Inst) Requests() ([]RequestLog, int) {
	in.log.mu.Lock()
	defer in.log.mu.Unlock()
	return slices.Clone(in.log.items), in.log.total
}
