package wiretest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
	"github.com/itsmhub/itsm/wiretest"
)

// TestStoreOutage stops the database server under the running platform and
// starts it again on the same port and files a few seconds later: a real
// outage of the MongoDB store (the driver's connections are cut, new ones
// refused), not an injected error. Deliveries keep being accepted
// throughout (the receiver needs only JetStream and its cached connection),
// /readyz says the store is gone while it is, and once it is back every
// ticket ends at its newest version, with nothing dead-lettered.
func TestStoreOutage(t *testing.T) {
	const issues, rounds = 20, 3
	srv := wiretest.StartTest(t)
	current := srv
	t.Cleanup(func() { current.Stop() })
	env := startOnWire(t, srv, func(c *config.Config) {
		// Retries must outlast the outage rather than dead-letter.
		c.NormalizerMaxDeliver = 100
	})
	env.AddConnection(t, "conn-1", "org-a", siteA)
	deliveries, err := load.Plan(load.Config{Conn: "conn-1", Secret: env.Config.JiraClientSecret, Site: siteA,
		Issues: issues, IssueBase: 30000, RunID: "outage"}, issues*rounds)
	require.NoError(t, err)
	post := func(ds []load.Delivery) {
		t.Helper()
		// The receiver closes keep-alive connections idle for 5 s (its
		// ReadHeaderTimeout); a POST on one of those fails in the client.
		http.DefaultClient.CloseIdleConnections()
		for _, d := range ds {
			status, body := env.PostWebhook(t, "conn-1", d.ID, d.Body)
			require.Equal(t, http.StatusAccepted, status, body)
		}
	}
	ctx := context.Background()
	storedAt := func(ds []load.Delivery) func() bool {
		return func() bool {
			for _, d := range ds {
				doc, err := env.Store().Get(ctx, "org-a", itsm.KindTicket, d.TicketID("conn-1"))
				if err != nil || doc.Version != d.Version {
					return false
				}
			}
			return true
		}
	}

	post(deliveries[:issues])
	apptest.Eventually(t, 30*time.Second, "the first versions stored", storedAt(deliveries[:issues]))
	require.Equal(t, http.StatusOK, readyz(env))

	current.Stop()
	down := time.Now()
	require.Equal(t, http.StatusServiceUnavailable, readyz(env), "/readyz while the store is down")
	events := func() uint64 {
		st, err := env.JetStream().Stream(ctx, broker.StreamITSM)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}
	before := events()
	post(deliveries[issues : 2*issues])
	time.Sleep(3*time.Second - time.Since(down))
	// The outage is real: nothing is written, so nothing is published.
	require.Equal(t, before, events(), "events published while the store was down")
	current, err = srv.Restart()
	require.NoError(t, err)
	require.Equal(t, srv.Addr(), current.Addr())
	t.Logf("store down for %v", time.Since(down).Round(time.Millisecond))
	post(deliveries[2*issues:])

	apptest.Eventually(t, 60*time.Second, "every ticket at its newest version", storedAt(deliveries[2*issues:]))
	apptest.Eventually(t, 30*time.Second, "/readyz again", func() bool { return readyz(env) == http.StatusOK })
	dlq, err := env.JetStream().Stream(ctx, broker.StreamDLQ)
	require.NoError(t, err)
	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "nothing dead-lettered")
}

// readyz is /readyz's status, or 0 when it does not answer within 5 s (the
// receiver bounds its store ping to 2 s).
func readyz(env *apptest.Env) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(env.URL + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
