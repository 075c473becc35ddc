package snsim

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimitPerUserPerHour(t *testing.T) {
	s, clk := testSim(t, func(o *Options) {
		o.Instances = []Instance{{RateRules: []RateRule{{Limit: 3, Role: "itil", ID: "rule-itil"}, {Limit: 100}}}}
	})
	hourEnd := testStart.Truncate(time.Hour).Add(time.Hour)
	for i := 0; i < 3; i++ {
		r := call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
		require.Equal(t, 200, r.status)
		require.Equal(t, "3", r.header.Get("X-RateLimit-Limit"))
		require.Equal(t, "rule-itil", r.header.Get("X-RateLimit-Rule"))
		require.Equal(t, strconv.FormatInt(hourEnd.Unix(), 10), r.header.Get("X-RateLimit-Reset"))
	}
	r := call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, strconv.Itoa(int(hourEnd.Sub(testStart).Seconds())), r.header.Get("Retry-After"))
	require.JSONEq(t, `{"error":{"message":"Rate limit exceeded","detail":"Rate limit of 3 requests per hour for Table API exceeded"},"status":"failure"}`, string(r.body))
	r = call(t, s, asITIL, "/api/now/attachment")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Contains(t, string(r.body), "Attachment API")

	// Other users count separately under the everyone rule.
	r = call(t, s, asAdmin, "/api/now/table/incident?sysparm_limit=1")
	require.Equal(t, 200, r.status)
	require.Equal(t, "100", r.header.Get("X-RateLimit-Limit"))

	// The next hour starts afresh.
	clk.Advance(hourEnd.Sub(testStart))
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)

	// Rules can be changed at runtime; none means no headers.
	require.NoError(t, s.Default().SetRateRules(nil))
	r = call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
	require.Equal(t, 200, r.status)
	require.Empty(t, r.header.Get("X-RateLimit-Limit"))
	require.Error(t, s.Default().SetRateRules([]RateRule{{Limit: -1}}))
}

func TestUserRuleBeatsRoleRule(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Instances = []Instance{{RateRules: []RateRule{{Limit: 50, Role: "itil"}, {Limit: 1, UserName: "itsm.integration"}}}}
	})
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
	require.Equal(t, http.StatusTooManyRequests, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
}

func TestAPIFaults(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.APIFaults = APIFaults{ErrorEveryNth: 2} })
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
	r := call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "text/html", r.header.Get("Content-Type"))

	in := s.Default()
	in.SetAPIFaults(APIFaults{ErrorEveryNth: 1, ErrorStatus: 500})
	r = call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
	require.Equal(t, http.StatusInternalServerError, r.status)
	require.Contains(t, string(r.body), `"status":"failure"`)

	in.SetAPIFaults(APIFaults{Latency: Duration(60 * time.Millisecond)})
	start := time.Now()
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
	require.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond)
	in.SetAPIFaults(APIFaults{})
	require.Equal(t, APIFaults{}, in.APIFaults())
}

func TestShortRateWindowOnTheRealClock(t *testing.T) {
	s, _ := testSim(t, func(o *Options) {
		o.Clock = RealClock{}
		o.Instances = []Instance{{RateRules: []RateRule{{Limit: 1}}, RateWindow: 2 * time.Second}}
	})
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
	r := call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
	if r.status == 200 {
		// The window turned between the two calls; the next one is refused.
		r = call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1")
	}
	require.Equal(t, http.StatusTooManyRequests, r.status)
	wait, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.LessOrEqual(t, wait, 2)
	time.Sleep(time.Duration(wait) * time.Second)
	require.Equal(t, 200, call(t, s, asITIL, "/api/now/table/incident?sysparm_limit=1").status)
}
