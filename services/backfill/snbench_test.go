package backfill

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/cputime"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

// basicClients authenticates every request of a ServiceNow connection as
// one account with basic auth: the credentials of a basic-auth connection,
// which the connection manager keeps in the vault in the platform.
type basicClients struct{ user, password string }

func (b basicClients) HTTPClient(context.Context, *store.Connection) (*http.Client, error) {
	return &http.Client{Transport: snclient.BasicAuth(nil, b.user, b.password)}, nil
}

// BenchmarkServiceNowFullSync is BenchmarkFullSync for ServiceNow: a full
// sync of ITSM_BENCH_INCIDENTS incidents (default 100000) with 3 journal
// entries each, from the simulator over loopback HTTP with basic auth,
// through the backfill worker (snsync), RAW, the real normalizer
// (servicenow.Mapper) into SQLite, on embedded defaults:
//
//	go test ./services/backfill/ -run '^$' -bench ServiceNowFullSync -benchtime 1x -timeout 30m
//
// The account is the simulator's admin, so that every incident is visible
// (the itil integration user does not see the restricted group's) and the
// deletions phase reads sys_audit_delete. The worker runs in a child
// process, as in BenchmarkFullSync, so that worker_peak_rss_MiB is its own;
// the simulator, NATS, the normalizer and SQLite are the benchmark's
// process (rest_of_platform_peak_rss_MiB). end_to_end_s runs from the
// connection's creation until every record is stored; sync_s until the
// worker marks the sync COMPLETED.
func BenchmarkServiceNowFullSync(b *testing.B) {
	incidents := 100000
	if v := os.Getenv("ITSM_BENCH_INCIDENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		incidents = n
	}
	for range b.N {
		benchServiceNowFullSync(b, incidents)
	}
}

func benchServiceNowFullSync(b *testing.B, incidents int) {
	genStart := time.Now()
	sim := snsim.NewTestServer(b, snsim.Options{Seed: 100, Instances: []snsim.Instance{{Sizes: snsim.Sizes{
		Incidents: incidents, Problems: -1, Changes: -1, RequestItems: -1, CatalogTasks: -1,
		JournalPerTask: 3, AttachmentEvery: -1}}}})
	b.Logf("simulator generated %d incidents in %s", incidents, time.Since(genStart).Round(time.Millisecond))
	// The harness's Jira site stays empty: only the ServiceNow connection syncs.
	h := newHarness(b, jirasim.Options{Seed: 100, Projects: 1, IssuesPerProject: 1, Clock: jirasim.RealClock{}},
		func(h *harness) { h.embedded = true })

	c := &store.Connection{ID: "conn-servicenow-bench", OrganizationID: "org-bench", Vendor: servicenow.VendorName,
		State: store.StateActive, SiteURL: sim.BaseURL(""), Options: store.ConnectionOptions{Tables: []string{"incident"}},
		RefreshIntervalSecs: 86400, TimeoutSecs: 3600, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	start, cpuStart := time.Now(), cputime.WithChildren()
	require.NoError(b, h.st.CreateConnection(h.ctx, c))
	require.NoError(b, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
	child, childOut := h.startChildWorker(func(cc *childConfig) { cc.SNUser, cc.SNPassword = "admin", "admin-password" })

	var maxLag uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				maxLag = max(maxLag, h.lag())
			}
		}
	}()

	ls := h.waitSync(c.ID, 25*time.Minute, "the full sync completes", func(ls *store.SyncState) bool {
		return ls.Kind == store.SyncFull && ls.Status != store.SyncRunning
	})
	syncDone := time.Since(start)
	require.Equal(b, store.SyncCompleted, ls.Status, ls.LastError)
	h.drained(25 * time.Minute)
	e2e := time.Since(start)
	close(stop)
	<-sampled

	require.NoError(b, child.Process.Signal(syscall.SIGTERM))
	var workerHWM int64
	for childOut.Scan() {
		if v, ok := strings.CutPrefix(childOut.Text(), "VMHWM_KB "); ok {
			workerHWM, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	require.NoError(b, child.Wait())
	selfHWM := rssKB(os.Getpid(), "VmHWM")
	b.ReportMetric((cputime.WithChildren() - cpuStart).Seconds(), "cpu_s")

	p := ProgressOf(ls)
	b.Logf("%d incidents: sync %s, end to end %s, %d records published %v", incidents, syncDone.Round(time.Millisecond),
		e2e.Round(time.Millisecond), ls.Objects, p.Counts)
	require.Equal(b, incidents, h.sqlCount(c, itsm.KindTicket))
	require.Equal(b, 3*incidents, h.sqlCount(c, itsm.KindComment))
	b.ReportMetric(syncDone.Seconds(), "sync_s")
	b.ReportMetric(e2e.Seconds(), "end_to_end_s")
	b.ReportMetric(float64(ls.Objects), "records")
	b.ReportMetric(float64(maxLag), "max_normalizer_lag_msgs")
	b.ReportMetric(float64(workerHWM)/1024, "worker_peak_rss_MiB")
	b.ReportMetric(float64(selfHWM)/1024, "rest_of_platform_peak_rss_MiB")
}
