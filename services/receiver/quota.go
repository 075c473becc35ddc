package receiver

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/itsmhub/itsm/pkg/connections"
)

// orgLimiters hold one token bucket per organization, so that one tenant's
// burst of API calls cannot starve the others. Organizations come from
// authenticated keys only, so the map grows with the tenants, not with the
// callers.
type orgLimiters struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	byOrg map[string]*rate.Limiter
}

func newOrgLimiters(perSecond, burst int) *orgLimiters {
	return &orgLimiters{rate: rate.Limit(perSecond), burst: burst, byOrg: map[string]*rate.Limiter{}}
}

func (l *orgLimiters) limiter(org string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byOrg[org]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.byOrg[org] = lim
	}
	return lim
}

// allow takes a token of org's bucket, or answers 429 with the seconds
// until one is available in Retry-After.
func (l *orgLimiters) allow(c echo.Context, org string) error {
	now := time.Now()
	r := l.limiter(org).ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	r.CancelAt(now)
	secs := int(math.Ceil(delay.Seconds()))
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	return fail(http.StatusTooManyRequests, "rate_limited", "too many requests for this organization; retry after "+strconv.Itoa(max(secs, 1))+"s")
}

// maxOptionName bounds a mapped Jira name: Jira's status and priority names
// are far shorter.
const maxOptionName = 255

// checkOptions bounds what a connection's options make the platform hold:
// each connection is kept in memory by webhook routing and syncs.
func (s *Server) checkOptions(o *connections.Options) error {
	if o == nil {
		return nil
	}
	q := s.cfg.Quotas
	if n := len(o.ProjectKeysFilter); n > q.ProjectKeys {
		return &connections.ValidationError{Field: "options.project_keys_filter",
			Message: fmt.Sprintf("%d entries; at most %d are allowed", n, q.ProjectKeys)}
	}
	for name, m := range map[string][]map[string]string{"priority_mapping": o.PriorityMapping, "status_mapping": o.StatusMapping} {
		if len(m) > q.MappingEntries {
			return &connections.ValidationError{Field: "options." + name,
				Message: fmt.Sprintf("%d entries; at most %d are allowed", len(m), q.MappingEntries)}
		}
		for i, entry := range m {
			for k, v := range entry {
				if len(k) > maxOptionName || len(v) > maxOptionName {
					return &connections.ValidationError{Field: fmt.Sprintf("options.%s[%d]", name, i),
						Message: fmt.Sprintf("names are at most %d bytes", maxOptionName)}
				}
			}
		}
	}
	return nil
}

// checkConnectionQuota refuses a new connection once the organization has
// as many as its quota allows (DELETED ones do not count). Two creates at
// the same moment may both pass: the quota bounds memory, it is not a
// billing limit.
func (s *Server) checkConnectionQuota(ctx context.Context, org string) error {
	n, err := s.store.CountConnections(ctx, org)
	if err != nil {
		return fmt.Errorf("count connections: %w", err)
	}
	if n >= s.cfg.Quotas.ConnectionsPerOrg {
		return fail(http.StatusForbidden, "quota_exceeded",
			fmt.Sprintf("the organization has %d connections, its quota; delete one first or ask the operator to raise the quota", n))
	}
	return nil
}
