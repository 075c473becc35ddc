package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
)

func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80", "nats://127.0.0.2:4222"} {
		require.NoError(t, CheckLoopback(u), u)
	}
	for _, u := range []string{"http://10.0.0.1:8080", "https://example.com", "http://0.0.0.0:8080", "http://[::]:80", "nats://", "http://127.0.0.1.nip.io/"} {
		require.Error(t, CheckLoopback(u), u)
	}
	_, err := Run(context.Background(), Config{URL: "http://192.168.1.1:8080", Conn: "c", Secret: "s", N: 1})
	require.ErrorContains(t, err, "only loopback")
}

func TestPlanHasDuplicatesReorderingAndIncreasingVersions(t *testing.T) {
	cfg := Config{Conn: "conn-1", Secret: "s", Issues: 10, DupProb: 0.2, ReorderWindow: 16, Seed: 7, VersionBase: 1_700_000_000_000}
	plan, err := Plan(cfg, 1000)
	require.NoError(t, err)
	fresh, dups, outOfOrder := 0, 0, 0
	seen := map[string]Delivery{}
	lastSeq := -1
	for _, d := range plan {
		if d.Dup {
			dups++
			// In a shuffled window a duplicate may even come first.
			if orig, ok := seen[d.ID]; ok {
				require.Equal(t, orig.Body, d.Body, "a duplicate repeats its delivery exactly")
			}
			continue
		}
		fresh++
		seen[d.ID] = d
		if d.Seq < lastSeq {
			outOfOrder++
		}
		lastSeq = d.Seq
		require.EqualValues(t, cfg.VersionBase+int64(d.Seq), d.Version)
		require.Equal(t, d.Seq%10, d.Issue)
	}
	require.Equal(t, 1000, fresh)
	require.InDelta(t, 200, dups, 60)
	require.Positive(t, outOfOrder, "deliveries are reordered within the window")
}

func TestBodiesMapToTicketsAtTheirVersion(t *testing.T) {
	cfg := Config{Conn: "conn-1", Secret: "s", Site: "https://acme.atlassian.net", Issues: 3, VersionBase: 1_700_000_000_123}
	plan, err := Plan(cfg, 8)
	require.NoError(t, err)
	m := jira.Mapping{ConnectionID: "conn-1", SiteURL: cfg.Site}
	for _, d := range plan {
		require.InDelta(t, 3<<10, len(d.Body), 64)
		require.True(t, json.Valid(d.Body))
		recs, err := m.MapWebhook(d.Body)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		require.Equal(t, d.TicketID("conn-1"), recs[0].ID)
		require.Equal(t, d.Version, recs[0].Version.UnixMilli())
	}
}

func TestRunCountsStatusesAndPacesTheRate(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		id := r.Header.Get("X-Atlassian-Webhook-Identifier")
		ids[id]++
		n := ids[id]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		if n == 1 {
			_, _ = w.Write([]byte(`{"status":"accepted"}`))
		} else {
			_, _ = w.Write([]byte(`{"status":"duplicate"}`))
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Conn: "c", Secret: "s", N: 200, Rate: 400, Concurrency: 4, DupProb: 0.1, ReorderWindow: 4})
	require.NoError(t, err)
	s := res.Summary()
	require.Equal(t, 200, s.Fresh)
	require.Equal(t, s.Sent, s.OK)
	require.Equal(t, 200, s.Accepted)
	require.Equal(t, s.Dups, s.Duplicate)
	// 200+ deliveries at 400/s take at least half a second.
	require.GreaterOrEqual(t, s.Elapsed, 450*time.Millisecond)
	require.Len(t, res.Expected(), 200)
}

// ServiceNow pushes: signed as the business rule signs them, and each
// ticket's versions grow strictly with the sequence (one second apart, the
// Table API's precision).
func TestServiceNowPushesAreSignedAndVersioned(t *testing.T) {
	cfg := Config{Vendor: VendorServiceNow, Conn: "conn-sn", Secret: "push-secret", Issues: 3, VersionBase: 1_700_000_000_000}
	plan, err := Plan(cfg, 9)
	require.NoError(t, err)
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		require.Equal(t, "/webhooks/servicenow/conn-sn", r.URL.Path)
		require.NoError(t, servicenow.VerifyPush("push-secret", body, r.Header.Get(servicenow.SignatureHeader)))
		got = append(got, r.Header.Clone())
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	cfg.URL, cfg.Concurrency = srv.URL, 1
	res, err := RunPlan(context.Background(), cfg, plan)
	require.NoError(t, err)
	require.Len(t, got, len(plan))
	require.Equal(t, len(plan), res.Summary().OK)
	last := map[string]int64{}
	for _, d := range plan {
		recs, err := servicenow.Mapper{}.MapWebhook(&store.Connection{ID: "conn-sn", SiteURL: "https://dev10001.service-now.com"}, d.Body)
		require.NoError(t, err)
		require.Equal(t, d.TicketID("conn-sn"), recs[0].ID)
		require.Equal(t, d.Version, recs[0].Version.UnixMilli())
		require.Greater(t, d.Version, last[d.VendorID], "versions of %s grow", d.Key)
		last[d.VendorID] = d.Version
	}
}
