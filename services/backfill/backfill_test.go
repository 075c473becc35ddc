package backfill

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasync"
)

func withHooks(hk testHooks) workerOpt {
	return func(_ *Config, _ *Deps, w *Worker) {
		if w != nil {
			w.hooks = hk
		}
	}
}

// The first full sync after OAuth brings every object type in, and the
// progress the status API shows adds up.
func TestFirstFullSyncAfterOAuth(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 11, Projects: 2, IssuesPerProject: 30, CommentsPerIssue: 22, Users: 12, Groups: 3})
	c := h.connect("org-a", connections.Options{})
	w, _ := h.startWorker("w1", 5*time.Second, newTestConfig())

	ls := h.waitFull(c.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
	h.drained(30 * time.Second)

	p := ProgressOf(ls)
	require.EqualValues(t, 60, p.Counts[raw.TypeIssue])
	require.EqualValues(t, 60*22, p.Counts[raw.TypeComment], "more than 20 comments: paged through issue/{id}/comment")
	require.EqualValues(t, 2, p.Counts[raw.TypeProject])
	require.EqualValues(t, len(h.sim.Default().Users()), p.Counts[raw.TypeUser])
	require.EqualValues(t, 3, p.Counts[raw.TypeGroup])
	require.Equal(t, 60, p.IssuesEstimate)
	var sum int64
	for _, n := range p.Counts {
		sum += n
	}
	require.Equal(t, sum, ls.Objects)
	require.NotNil(t, ls.EndedAt)

	require.Equal(t, 60, h.count(c, itsm.KindTicket, false))
	require.Equal(t, 60*22, h.count(c, itsm.KindComment, false))
	require.Equal(t, 2, h.count(c, itsm.KindProject, false))
	require.Equal(t, 3, h.count(c, itsm.KindGroup, false))
	require.EqualValues(t, p.Counts[raw.TypeAttachment], h.count(c, itsm.KindAttachment, false))
	g := h.count(c, itsm.KindUser, false)
	require.Equal(t, len(h.sim.Default().Users()), g)

	// Metrics.
	require.InDelta(t, 60, testutil.ToFloat64(w.m.objects.WithLabelValues(raw.TypeIssue)), 0)
	require.Positive(t, testutil.ToFloat64(w.m.calls.WithLabelValues("JIRA", "issue/bulkfetch", "200")))
	require.Equal(t, 1, testutil.CollectAndCount(w.m.duration))

	// The watermark moved to the sync's start, for incremental syncs.
	wm := h.conn(c.ID).Detail.Watermark
	require.NotNil(t, wm)
	require.True(t, wm.Equal(ls.StartedAt))
}

// Done (1): webhooks dropped for an hour; every change is in the store
// within one incremental interval of when it happened.
func TestIncrementalRepairsDroppedWebhooks(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 12, Projects: 2, IssuesPerProject: 20, CommentsPerIssue: 1})
	keys := h.sim.Default().ProjectKeys()
	c := h.connect("org-a", connections.Options{ProjectKeysFilter: []string{keys[0]}})
	cfg := newTestConfig()
	h.startWorker("w1", 5*time.Second, cfg)
	first := h.waitFull(c.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, first.Status, first.LastError)
	h.drained(10 * time.Second)
	require.Equal(t, 20, h.count(c, itsm.KindTicket, false), "only the filtered project")

	interval := 5 * time.Minute // the default IncrementalEvery
	for step := range 12 {      // one hour of changes, every webhook dropped
		key := keys[0] + "-" + itoa(step+1)
		summary := "edited while webhooks were down " + itoa(step)
		ref, err := h.sim.UpdateIssue(key, jirasim.IssueUpdate{Summary: &summary})
		require.NoError(t, err)
		cm, err := h.sim.AddComment(key, "comment "+itoa(step))
		require.NoError(t, err)
		created, err := h.sim.CreateIssue(jirasim.IssueInput{Project: keys[0], Summary: "new " + itoa(step)})
		require.NoError(t, err)
		other, err := h.sim.CreateIssue(jirasim.IssueInput{Project: keys[1], Summary: "outside the filter"})
		require.NoError(t, err)
		before := h.conn(c.ID).Detail.LastSync.ID

		h.clock.Advance(interval)
		due := h.clock.Now()
		// The sync that the interval made due: one that started before the
		// changes (a scheduling pass racing the test) may not hold them.
		ls := h.waitSync(c.ID, 20*time.Second, "an incremental sync", func(ls *store.SyncState) bool {
			return ls.ID != before && ls.Kind == store.SyncIncremental && ls.Status != store.SyncRunning && !ls.StartedAt.Before(due)
		})
		require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
		h.drained(10 * time.Second)

		tk := h.doc(c, itsm.KindTicket, ref.ID)
		require.NotNil(t, tk)
		require.Contains(t, string(tk.Body), summary)
		require.NotNil(t, h.doc(c, itsm.KindComment, cm.ID), "step %d: the new comment", step)
		require.NotNil(t, h.doc(c, itsm.KindTicket, created.ID), "step %d: the new issue", step)
		require.Nil(t, h.doc(c, itsm.KindTicket, other.ID), "project outside the filter")
		require.EqualValues(t, 0, h.sim.Deliveries().Delivered, "no webhook ever arrived")
	}
	// Incremental records carry no sync id, and never a reconcile marker.
	require.Equal(t, 32, h.count(c, itsm.KindTicket, false))
	require.Zero(t, h.count(c, itsm.KindTicket, true))
}

// Done (2): an issue deleted in Jira (its webhook dropped) is not
// tombstoned by a full sync that timed out, and is by the next complete one.
func TestDeletionsOnlyAfterACompleteFullSync(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 13, Projects: 2, IssuesPerProject: 15, CommentsPerIssue: 2})
	c := h.connect("org-a", connections.Options{})
	h.startWorker("w1", 5*time.Second, newTestConfig())
	first := h.waitFull(c.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, first.Status, first.LastError)
	h.drained(10 * time.Second)
	require.Equal(t, 30, h.count(c, itsm.KindTicket, false))

	keys := h.sim.Default().ProjectKeys()
	victim := h.ticketByKey(c, keys[0]+"-3")
	require.NoError(t, h.sim.DeleteIssue(keys[0]+"-3"))
	h.clock.Advance(time.Minute)

	// A full sync cut short by timeout_secs: Jira refuses every other call
	// with Retry-After: 1s, longer than the 1s timeout.
	h.update(c.ID, func(c *store.Connection) { c.TimeoutSecs = 1 })
	h.sim.SetRateLimit(&jirasim.RateLimit{EveryNth: 2})
	require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
	cut := h.waitFull(c.ID, first.ID, 30*time.Second)
	require.Equal(t, store.SyncTimedOut, cut.Status)
	h.drained(10 * time.Second)
	require.False(t, h.get(victim).Deleted, "a sync that was cut short never deletes anything")
	require.Zero(t, h.count(c, itsm.KindTicket, true))

	h.sim.SetRateLimit(nil)
	h.update(c.ID, func(c *store.Connection) { c.TimeoutSecs = 1800 })
	h.clock.Advance(time.Minute)
	require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
	done := h.waitFull(c.ID, cut.ID, 30*time.Second)
	require.Equal(t, store.SyncCompleted, done.Status, done.LastError)
	h.drained(10 * time.Second)

	tk := h.get(victim)
	require.True(t, tk.Deleted, "deleted after the complete full sync")
	require.Contains(t, string(tk.Body), `"status":"DELETED"`)
	require.Equal(t, 1, h.count(c, itsm.KindTicket, true))
	require.Equal(t, 29, h.count(c, itsm.KindTicket, false))
	require.Equal(t, 2, h.count(c, itsm.KindComment, true), "its comments follow it")
}

// A project in the filter that Jira no longer shows may be a lost
// permission rather than a deletion: its tickets are kept, the sync says
// why, and the connection's health tells the customer what to do.
func TestLostProjectHoldsBackTicketTombstones(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 14, Projects: 2, IssuesPerProject: 5, CommentsPerIssue: 1})
	keys := h.sim.Default().ProjectKeys()
	c := h.connect("org-a", connections.Options{ProjectKeysFilter: []string{keys[0], "GONE"}})
	h.startWorker("w1", 5*time.Second, newTestConfig())
	first := h.waitFull(c.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, first.Status)
	require.Contains(t, first.LastError, "lost access to project(s) GONE")
	require.Equal(t, []string{"GONE"}, ProgressOf(first).LostProjects)
	health := h.conn(c.ID).Detail.Health
	require.Equal(t, store.HealthDegraded, health.Status)
	require.Equal(t, store.OwnerCustomer, health.ResolutionOwner)
	require.Contains(t, health.Description, "GONE")
	h.drained(10 * time.Second)

	victim := h.ticketByKey(c, keys[0]+"-2")
	require.NoError(t, h.sim.DeleteIssue(keys[0]+"-2"))
	h.clock.Advance(time.Minute)
	require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
	second := h.waitFull(c.ID, first.ID, 30*time.Second)
	require.Equal(t, store.SyncCompleted, second.Status)
	h.drained(10 * time.Second)
	require.False(t, h.get(victim).Deleted, "not tombstoned while a project in scope is unaccounted for")
	// The second full sync read what the first carried: GONE has been
	// missing since the first, not since the second.
	missingSince := func(carry []byte) string {
		var c struct {
			Missing map[string]string `json:"missing_projects"`
		}
		require.NoError(t, json.Unmarshal(carry, &c))
		return c.Missing["GONE"]
	}
	firstCP, secondCP := decodeCheckpoint(first), decodeCheckpoint(second)
	require.NotEmpty(t, missingSince(firstCP.Carry))
	require.Equal(t, missingSince(firstCP.Carry), missingSince(secondCP.Carried))
	require.Equal(t, missingSince(firstCP.Carry), missingSince(secondCP.Carry))

	// The customer fixes the filter: the next complete sync reconciles
	// tickets again and the health recovers.
	_, err := h.mgr.Patch(h.ctx, "org-a", c.ID, connections.PatchRequest{Options: &connections.Options{ProjectKeysFilter: []string{keys[0]}}})
	require.NoError(t, err)
	h.clock.Advance(time.Minute)
	require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
	third := h.waitFull(c.ID, second.ID, 30*time.Second)
	require.Equal(t, store.SyncCompleted, third.Status, third.LastError)
	require.Empty(t, third.LastError)
	h.drained(10 * time.Second)
	require.True(t, h.get(victim).Deleted)
	require.Equal(t, store.HealthHealthy, h.conn(c.ID).Detail.Health.Status)
}

// Done (3): with 429s switched on the sync still completes.
func TestFullSyncCompletesUnderRateLimiting(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 15, Projects: 2, IssuesPerProject: 20, CommentsPerIssue: 1, Groups: 2})
	h.sim.SetRateLimit(&jirasim.RateLimit{EveryNth: 4})
	c := h.connect("org-a", connections.Options{})
	w, _ := h.startWorker("w1", 5*time.Second, newTestConfig())
	ls := h.waitFull(c.ID, "", 60*time.Second)
	require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
	h.drained(10 * time.Second)
	require.Equal(t, 40, h.count(c, itsm.KindTicket, false))
	require.Equal(t, 40, h.count(c, itsm.KindComment, false))
	limited := testutil.ToFloat64(w.m.limited.WithLabelValues("JIRA"))
	require.GreaterOrEqual(t, limited, 2.0, "the simulator refused calls")
	var refused float64
	for _, ep := range []string{"search/jql", "issue/bulkfetch", "project/search", "users/search", "group/bulk", "group/member", "status", "priority/search", "search/approximate-count"} {
		refused += testutil.ToFloat64(w.m.calls.WithLabelValues("JIRA", ep, "429"))
	}
	require.Equal(t, limited, refused, "429s counted per endpoint")
}

// A tenant whose quota is exhausted parks its sync (slot and lease given
// back, resumed from the checkpoint later) so that another tenant's sync
// runs even on a worker with a single slot.
func TestQuotaPauseDoesNotStarveOtherTenants(t *testing.T) {
	throttled := quotaProxy{retryAfter: "2"}
	h := newHarness(t, jirasim.Options{Seed: 16, Projects: 1, IssuesPerProject: 10, CommentsPerIssue: 1,
		Sites: []jirasim.Site{{Name: "slow"}, {Name: "fast"}}}, throttled.install)
	sites := h.sim.Sites()
	throttled.cloudID.Store(sites[0].ID)
	cfg := newTestConfig()
	cfg.MaxConcurrentSyncs = 1
	cfg.jira.MaxQuotaPause = 500 * time.Millisecond
	h.startWorker("w1", 5*time.Second, cfg)

	slow := h.connect("org-a", connections.Options{SiteURL: sites[0].URL})
	parked := h.waitSync(slow.ID, 10*time.Second, "the throttled sync parks", func(ls *store.SyncState) bool {
		return ls.Status == store.SyncRunning && decodeCheckpoint(ls).NotBefore != nil
	})
	// The worker's only slot is free again: another tenant syncs meanwhile.
	fast := h.connect("org-b", connections.Options{SiteURL: sites[1].URL})
	ls := h.waitFull(fast.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)

	cp := decodeCheckpoint(parked)
	require.True(t, cp.NotBefore.After(h.clock.Now().Add(time.Second)), "resumes when the quota resets: %v", cp.NotBefore)
	require.Contains(t, parked.LastError, "quota")
	require.Equal(t, store.SyncRunning, h.conn(slow.ID).Detail.LastSync.Status, "parked, not failed")
	holder, err := h.leases(5*time.Second).Holder(h.ctx, leaseKey(slow.ID))
	require.NoError(t, err)
	require.Empty(t, holder, "its lease was given back")

	// Once the quota resets, the same sync resumes and completes.
	throttled.cloudID.Store("")
	var done *store.SyncState
	for deadline := time.Now().Add(30 * time.Second); done == nil; {
		require.True(t, time.Now().Before(deadline), "the parked sync resumes")
		h.clock.Advance(time.Second) // the worker's clock passes NotBefore
		if ls := h.conn(slow.ID).Detail.LastSync; ls.Status != store.SyncRunning {
			done = ls
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, parked.ID, done.ID)
	require.Equal(t, store.SyncCompleted, done.Status, done.LastError)
}

// Done (4a): two workers never sync one connection at once.
func TestTwoWorkersNeverSyncOneConnectionAtOnce(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 17, Projects: 1, IssuesPerProject: 30, CommentsPerIssue: 1})
	var conns []*store.Connection
	for i := range 3 {
		conns = append(conns, h.connect("org-"+itoa(i), connections.Options{}))
	}
	var mu sync.Mutex
	active := map[string]int{}
	maxActive := 0
	syncs := map[string]int{}
	hk := testHooks{
		syncStart: func(connID string, _ store.SyncKind) {
			mu.Lock()
			defer mu.Unlock()
			active[connID]++
			maxActive = max(maxActive, active[connID])
		},
		syncEnd: func(connID string, _ store.SyncKind) {
			mu.Lock()
			defer mu.Unlock()
			active[connID]--
			syncs[connID]++
		},
	}
	cfg := newTestConfig()
	cfg.Tick = 10 * time.Millisecond
	h.startWorker("w1", 2*time.Second, cfg, withHooks(hk))
	h.startWorker("w2", 2*time.Second, cfg, withHooks(hk))

	for round := range 4 {
		for _, c := range conns {
			prev := ""
			if ls := h.conn(c.ID).Detail.LastSync; ls != nil && round > 0 {
				prev = ls.ID
			}
			if round > 0 {
				h.clock.Advance(time.Second)
				require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
			}
			ls := h.waitFull(c.ID, prev, 30*time.Second)
			require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
		}
	}
	// A sync's COMPLETED state is stored before its end hook runs: the last
	// round's hooks may still be on their way.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			if syncs[c.ID] < 4 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "every connection synced in every round")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, maxActive, "never two syncs of one connection at once")
}

// Done (4b): a worker killed mid-sync loses its lease; another resumes the
// same sync from the last checkpoint instead of starting over: the earlier
// phases and pages are not read again, and RAW does not get the records
// twice.
func TestKilledWorkerIsResumedFromCheckpoint(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 18, Projects: 2, IssuesPerProject: 60, CommentsPerIssue: 1})
	c := h.connect("org-a", connections.Options{})
	cfg := newTestConfig()
	cfg.jira.SearchPageSize = 10 // 12 search pages, a checkpoint after each

	var halt atomic.Value // func(error)
	var killedAt atomic.Pointer[checkpoint]
	var haltedAt atomic.Int64
	wA, stopA := h.startWorker("wA", time.Second, cfg, withHooks(testHooks{
		checkpoint: func(_ string, cp *checkpoint) {
			if cp.Phase == jirasync.PhaseIssues && searchPages(cp) == 4 && killedAt.CompareAndSwap(nil, cp) {
				for halt.Load() == nil {
					time.Sleep(time.Millisecond)
				}
				// Die without a last word: no final write, lease still held.
				haltedAt.Store(time.Now().UnixNano())
				halt.Load().(func(error))(errHalt)
			}
		},
	}))
	halt.Store(func(err error) { go stopA(err) })
	h.waitSync(c.ID, 30*time.Second, "worker A checkpointed 4 pages", func(ls *store.SyncState) bool {
		cp := decodeCheckpoint(ls)
		return searchPages(&cp) >= 4
	})
	stopA(errHalt)
	running := h.conn(c.ID).Detail.LastSync
	require.Equal(t, store.SyncRunning, running.Status, "a crashed worker leaves its sync RUNNING")
	holder, err := h.leases(time.Second).Holder(h.ctx, leaseKey(c.ID))
	require.NoError(t, err)
	if time.Since(time.Unix(0, haltedAt.Load())) < 500*time.Millisecond { // else it may have expired already (a loaded machine)
		require.Equal(t, "wA", holder, "and its lease held until the TTL runs out")
	}

	wB, _ := h.startWorker("wB", time.Second, cfg)
	done := h.waitFull(c.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, done.Status, done.LastError)
	require.Equal(t, running.ID, done.ID, "the same sync, resumed")
	p := ProgressOf(done)
	require.GreaterOrEqual(t, p.Resumes, 1)
	require.Equal(t, 4, searchPages(killedAt.Load()))

	searchesA := testutil.ToFloat64(wA.m.calls.WithLabelValues("JIRA", "search/jql", "200"))
	searchesB := testutil.ToFloat64(wB.m.calls.WithLabelValues("JIRA", "search/jql", "200"))
	require.GreaterOrEqual(t, searchesA, 4.0)
	require.Equal(t, 8.0, searchesB, "B fetched only the pages after the checkpoint (12 in all)")
	require.Zero(t, testutil.ToFloat64(wB.m.calls.WithLabelValues("JIRA", "users/search", "200")), "earlier phases are not redone")

	// Every issue counted once, and RAW holds each record about once: only
	// what A published after its last checkpoint (at most one search page:
	// 10 issues with their comments and attachments) went out twice.
	require.EqualValues(t, 120, p.Counts[raw.TypeIssue])
	var total int64
	for _, n := range p.Counts {
		total += n
	}
	raw := h.rawCount(c.ID)
	require.GreaterOrEqual(t, raw, uint64(total)+1, "records plus the reconcile marker")
	require.LessOrEqual(t, raw, uint64(total)+1+40, "not double: at most one page again")
	t.Logf("%d records, %d RAW messages (the marker and %d published again)", total, raw, raw-uint64(total)-1)
	h.drained(10 * time.Second)
	require.Equal(t, 120, h.count(c, itsm.KindTicket, false))
	require.Zero(t, h.count(c, itsm.KindTicket, true), "nothing seen by A before the crash is tombstoned")
}

// An incremental request waits for the first full sync; requests coalesce.
func TestRequestsAndScheduling(t *testing.T) {
	w := New(Config{}, Deps{})
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c := &store.Connection{RefreshIntervalSecs: 3600}
	p, ok := w.plan(c, "", now)
	require.True(t, ok)
	require.Equal(t, plan{kind: store.SyncFull}, p, "never synced: full")
	p, _ = w.plan(c, store.SyncIncremental, now)
	require.Equal(t, store.SyncFull, p.kind, "no watermark yet: the incremental becomes full")

	end := now.Add(time.Minute)
	wm := now
	c.Detail.LastSync = &store.SyncState{ID: "s1", Kind: store.SyncFull, Status: store.SyncCompleted, StartedAt: now, EndedAt: &end}
	c.Detail.Watermark = &wm
	_, ok = w.plan(c, "", now.Add(4*time.Minute))
	require.False(t, ok, "nothing due yet")
	p, _ = w.plan(c, "", now.Add(5*time.Minute))
	require.Equal(t, store.SyncIncremental, p.kind)
	p, _ = w.plan(c, "", now.Add(time.Hour))
	require.Equal(t, store.SyncFull, p.kind, "refresh interval passed")

	// Incrementals do not hide when the last full sync ran.
	cp := checkpoint{Epoch: 1, LastFull: lastFull(c)}
	c.Detail.LastSync = &store.SyncState{ID: "s2", Kind: store.SyncIncremental, Status: store.SyncCompleted, StartedAt: now.Add(30 * time.Minute), Checkpoint: cp.encode()}
	p, _ = w.plan(c, "", now.Add(time.Hour))
	require.Equal(t, store.SyncFull, p.kind)

	// A failed full sync is retried sooner; a timed-out one is not.
	c.Detail.LastSync = &store.SyncState{ID: "s3", Kind: store.SyncFull, Status: store.SyncFailed, StartedAt: now, EndedAt: &end}
	p, _ = w.plan(c, "", now.Add(16*time.Minute))
	require.Equal(t, store.SyncFull, p.kind)
	c.Detail.LastSync.Status = store.SyncTimedOut
	p, _ = w.plan(c, "", now.Add(16*time.Minute))
	require.Equal(t, store.SyncIncremental, p.kind)

	// A RUNNING sync is resumed (if its lease is free), unless parked.
	later := now.Add(time.Hour)
	cp = checkpoint{Epoch: 1, NotBefore: &later}
	c.Detail.LastSync = &store.SyncState{ID: "s4", Kind: store.SyncFull, Status: store.SyncRunning, StartedAt: now, Checkpoint: cp.encode()}
	_, ok = w.plan(c, store.SyncFull, now.Add(time.Minute))
	require.False(t, ok, "parked")
	p, _ = w.plan(c, "", now.Add(2*time.Hour))
	require.Equal(t, plan{kind: store.SyncFull, resume: true}, p)
}

func TestRequesterCoalescesRequests(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 19, Projects: 1, IssuesPerProject: 1})
	ctx := h.ctx
	require.ErrorIs(t, h.reqs.RequestSync(ctx, "c1", "partial"), ErrInvalidKind)
	require.Error(t, h.reqs.RequestSync(ctx, "c.1>", store.SyncFull), "ids that are not KV keys")
	require.NoError(t, h.reqs.RequestSync(ctx, "c1", store.SyncIncremental))
	require.NoError(t, h.reqs.RequestSync(ctx, "c1", store.SyncFull))
	require.NoError(t, h.reqs.RequestSync(ctx, "c1", store.SyncIncremental), "never downgrades a pending full request")
	require.NoError(t, h.reqs.RequestSync(ctx, "c2", store.SyncIncremental))
	pending, err := h.reqs.pending(ctx)
	require.NoError(t, err)
	require.Equal(t, store.SyncFull, pending["c1"].kind)
	require.Equal(t, store.SyncIncremental, pending["c2"].kind)

	// An incremental request renews a pending one of either kind: it takes
	// the newer revision, and never downgrades a full one.
	require.NoError(t, h.reqs.RequestSync(ctx, "c2", store.SyncIncremental))
	renewed, err := h.reqs.pending(ctx)
	require.NoError(t, err)
	require.Equal(t, store.SyncIncremental, renewed["c2"].kind)
	require.Greater(t, renewed["c2"].rev, pending["c2"].rev)
	require.NoError(t, h.reqs.RequestSync(ctx, "c1", store.SyncIncremental))
	renewed, err = h.reqs.pending(ctx)
	require.NoError(t, err)
	require.Equal(t, store.SyncFull, renewed["c1"].kind)
	require.Greater(t, renewed["c1"].rev, pending["c1"].rev)
	pending = renewed

	// A request renewed after it was read survives its consumption.
	require.NoError(t, h.reqs.RequestSync(ctx, "c1", store.SyncFull))
	require.NoError(t, h.reqs.done(ctx, "c1", pending["c1"].rev))
	require.NoError(t, h.reqs.done(ctx, "c2", pending["c2"].rev))
	after, err := h.reqs.pending(ctx)
	require.NoError(t, err)
	require.Contains(t, after, "c1")
	require.NotContains(t, after, "c2")
}

func TestProgressRendering(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cp := checkpoint{Epoch: 2, IssuesEstimate: 200, Live: map[string]int64{raw.TypeIssue: 50, raw.TypeComment: 150}}
	p := ProgressOf(&store.SyncState{ID: "s", Kind: store.SyncFull, Phase: jirasync.PhaseIssues, Status: store.SyncRunning, Objects: 200,
		StartedAt: start, Checkpoint: cp.encode()})
	f, ok := p.Fraction()
	require.True(t, ok)
	require.InDelta(t, 0.25, f, 1e-9)
	line := p.Render(start.Add(90*time.Second), 20)
	require.Equal(t, "[#####...............]  25% full running issues · tickets 50/200 · 200 objects (comment 150, issue 50) · 1m30s · resumed 1×", line)
	require.True(t, slices.Contains([]store.SyncStatus{store.SyncRunning}, p.Status))
}

func itoa(i int) string { return strconv.Itoa(i) }

type fakeSource struct {
	mu     sync.Mutex
	states []*store.SyncState
	i      int
}

func (f *fakeSource) LookupConnection(context.Context, string) (*store.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ls := f.states[min(f.i, len(f.states)-1)]
	f.i++
	return &store.Connection{Detail: store.ConnectionDetail{LastSync: ls}}, nil
}

// `itsm sync --follow`: waits for the requested sync (not the previous
// one), shows it, and returns its final state.
func TestFollowShowsTheRequestedSyncToTheEnd(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	end := start.Add(time.Minute)
	running := func(phase string, issues int64) *store.SyncState {
		cp := checkpoint{Epoch: 1, IssuesEstimate: 100, Live: map[string]int64{raw.TypeIssue: issues}}
		return &store.SyncState{ID: "new", Kind: store.SyncFull, Phase: phase, Status: store.SyncRunning, Objects: issues, StartedAt: start, Checkpoint: cp.encode()}
	}
	old := &store.SyncState{ID: "old", Kind: store.SyncFull, Status: store.SyncCompleted, StartedAt: start.Add(-time.Hour), EndedAt: &start}
	final := running(PhaseDone, 100)
	final.Status, final.EndedAt = store.SyncCompleted, &end
	src := &fakeSource{states: []*store.SyncState{old, old, running(jirasync.PhaseUsers, 0), running(jirasync.PhaseIssues, 50), final}}

	var out strings.Builder
	p, err := Follow(context.Background(), src, "c1", "old", &out, FollowOptions{Poll: time.Millisecond, Now: func() time.Time { return end }})
	require.NoError(t, err)
	require.Equal(t, "new", p.SyncID)
	require.Equal(t, store.SyncCompleted, p.Status)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Equal(t, "waiting for a worker to start the sync…", lines[0])
	require.Contains(t, lines[2], "[###############...............]  50% full running issues · tickets 50/100")
	require.Contains(t, lines[len(lines)-1], "100% full completed done")

	// Interactive: one line redrawn in place.
	src = &fakeSource{states: []*store.SyncState{running(jirasync.PhaseIssues, 50), final}}
	out.Reset()
	_, err = Follow(context.Background(), src, "c1", "", &out, FollowOptions{Interactive: true, Poll: time.Millisecond, Now: func() time.Time { return end }})
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(out.String(), "\r\033[K"))
	require.True(t, strings.HasSuffix(out.String(), "\n"))
}

// searchPages reads the Jira connector's search pages done from a
// checkpoint's cursor.
func searchPages(cp *checkpoint) int {
	var c struct {
		SearchPages int `json:"search_pages"`
	}
	_ = json.Unmarshal(cp.Cursor, &c)
	return c.SearchPages
}

// A sync checkpointed by the worker before the connector seam (the Jira
// crawl's fields at the checkpoint's top level, no cursor) resumes where
// it stopped after the upgrade: the pages before its checkpoint are not
// read again.
func TestSyncCheckpointedBeforeTheUpgradeResumes(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 18, Projects: 2, IssuesPerProject: 60, CommentsPerIssue: 1})
	c := h.connect("org-a", connections.Options{})
	cfg := newTestConfig()
	cfg.jira.SearchPageSize = 10

	var halted atomic.Bool
	var stop atomic.Value // context.CancelCauseFunc
	_, stopA := h.startWorker("wA", time.Second, cfg, withHooks(testHooks{
		checkpoint: func(_ string, cp *checkpoint) {
			if cp.Phase == jirasync.PhaseIssues && searchPages(cp) == 4 && halted.CompareAndSwap(false, true) {
				for stop.Load() == nil {
					time.Sleep(time.Millisecond)
				}
				go stop.Load().(context.CancelCauseFunc)(errHalt)
			}
		},
	}))
	stop.Store(stopA)
	h.waitSync(c.ID, 30*time.Second, "worker A checkpointed 4 pages", func(ls *store.SyncState) bool {
		cp := decodeCheckpoint(ls)
		return searchPages(&cp) >= 4
	})
	stopA(errHalt)

	// Rewrite the checkpoint as the old worker wrote it.
	conn := h.conn(c.ID)
	var obj map[string]jsontext.Value
	require.NoError(t, json.Unmarshal([]byte(conn.Detail.LastSync.Checkpoint), &obj))
	var cursor map[string]jsontext.Value
	require.NoError(t, json.Unmarshal(obj["cursor"], &cursor))
	require.Contains(t, cursor, "next_page_token")
	delete(obj, "cursor")
	delete(obj, "carry")
	maps.Copy(obj, cursor)
	legacy, err := json.Marshal(obj)
	require.NoError(t, err)
	conn.Detail.LastSync.Checkpoint = string(legacy)
	require.NoError(t, h.st.UpdateConnection(h.ctx, conn))

	wB, _ := h.startWorker("wB", time.Second, cfg)
	done := h.waitFull(c.ID, "", 30*time.Second)
	require.Equal(t, store.SyncCompleted, done.Status, done.LastError)
	require.Equal(t, 8.0, testutil.ToFloat64(wB.m.calls.WithLabelValues("JIRA", "search/jql", "200")),
		"B read only the pages after the old checkpoint (12 in all)")
	require.Zero(t, testutil.ToFloat64(wB.m.calls.WithLabelValues("JIRA", "users/search", "200")), "earlier phases are not redone")
	h.drained(10 * time.Second)
	require.Equal(t, 120, h.count(c, itsm.KindTicket, false))
}

// What an old full sync carried for the next one (since when a project has
// been missing) and the kinds it held back are read from an old checkpoint.
func TestCheckpointOfTheOldFormatDecodes(t *testing.T) {
	since := "2026-01-01T00:00:00Z"
	full := &store.SyncState{ID: "s1", Kind: store.SyncFull, Status: store.SyncCompleted,
		Checkpoint: `{"epoch":1,"phase":"issues","incomplete":["lost access to project(s) GONE"],"lost_projects":["GONE"],"missing_projects":{"GONE":"` + since + `"}}`}
	cp := decodeCheckpoint(full)
	require.Equal(t, legacyExcluded, cp.Excluded)
	require.Equal(t, []string{"GONE"}, cp.LostProjects)
	lf := lastFull(&store.Connection{Detail: store.ConnectionDetail{LastSync: full}})
	var carried struct {
		Missing map[string]string `json:"missing_projects"`
	}
	require.NoError(t, json.Unmarshal(lf.Carry, &carried))
	require.Equal(t, since, carried.Missing["GONE"])

	// An incremental sync written by the old worker keeps its last full
	// sync's summary, with what it carried.
	inc := &store.SyncState{ID: "s2", Kind: store.SyncIncremental, Status: store.SyncCompleted,
		Checkpoint: `{"epoch":1,"phase":"issues","last_full":{"id":"s1","status":"COMPLETED","started_at":"2026-01-02T00:00:00Z","missing_projects":{"GONE":"` + since + `"}}}`}
	lf = lastFull(&store.Connection{Detail: store.ConnectionDetail{LastSync: inc}})
	require.Equal(t, "s1", lf.ID)
	carried.Missing = nil
	require.NoError(t, json.Unmarshal(lf.Carry, &carried))
	require.Equal(t, since, carried.Missing["GONE"])
}

// A sync covers a request made while it ran, running or completed: a full
// sync a full request, any sync an incremental request made before it
// started. Nothing covers a request made after the sync ended, and a failed
// sync covers nothing. The connection's activation requests a full sync
// that the scheduler may have started on its own, and ended, before it sees
// the request: that must not cost a second full sync.
func TestLastSyncCoversRequestsMadeWhileItRan(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 23, Projects: 1, IssuesPerProject: 1})
	w := New(Config{}, Deps{JS: h.js})
	pending := func() request {
		reqs, err := w.requests.pending(h.ctx)
		require.NoError(t, err)
		return reqs["c1"]
	}
	// A sync's start and end are the bucket's revision then: "before" the
	// request is the revision before the request's, "after" its own; a
	// sync still running has no end.
	const (
		before  = -1
		after   = 1
		running = 0
	)
	for _, tc := range []struct {
		name           string
		request, sync  store.SyncKind
		status         store.SyncStatus
		started, ended int
		covered        bool
	}{
		{"incremental request, incremental sync running since before", store.SyncIncremental, store.SyncIncremental, store.SyncRunning, before, running, false},
		{"incremental request, incremental sync running since after", store.SyncIncremental, store.SyncIncremental, store.SyncRunning, after, running, true},
		{"incremental request, full sync running since before", store.SyncIncremental, store.SyncFull, store.SyncRunning, before, running, false},
		{"incremental request, full sync running since after", store.SyncIncremental, store.SyncFull, store.SyncRunning, after, running, true},
		{"full request, incremental sync running", store.SyncFull, store.SyncIncremental, store.SyncRunning, after, running, false},
		{"full request, full sync running since before", store.SyncFull, store.SyncFull, store.SyncRunning, before, running, true},
		{"full request, full sync completed after it", store.SyncFull, store.SyncFull, store.SyncCompleted, before, after, true},
		{"full request, full sync completed before it", store.SyncFull, store.SyncFull, store.SyncCompleted, before, before, false},
		{"full request, full sync failed after it", store.SyncFull, store.SyncFull, store.SyncFailed, before, after, false},
		{"incremental request, sync started and completed after it", store.SyncIncremental, store.SyncIncremental, store.SyncCompleted, after, after, true},
		{"incremental request, sync completed before it", store.SyncIncremental, store.SyncFull, store.SyncCompleted, before, before, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, w.requests.RequestSync(h.ctx, "c1", tc.request))
			r := pending()
			at := func(off int) uint64 {
				if off == before {
					return r.rev - 1
				}
				return r.rev
			}
			cp := checkpoint{Epoch: 1, RequestsFrom: at(tc.started)}
			if tc.ended != running {
				cp.RequestsTo = at(tc.ended)
			}
			ls := &store.SyncState{ID: "s", Kind: tc.sync, Status: tc.status, Checkpoint: cp.encode()}
			left := w.coalesce(h.ctx, &store.Connection{ID: "c1", Detail: store.ConnectionDetail{LastSync: ls}}, r)
			if tc.covered {
				require.Empty(t, left.kind, "covered: nothing left to plan")
				require.Empty(t, pending().kind, "covered: the request is dropped")
				return
			}
			require.Equal(t, r, left, "not covered: planned with the request")
			require.Equal(t, tc.request, pending().kind, "not covered: the request stays")
			require.NoError(t, w.requests.done(h.ctx, "c1", r.rev))
		})
	}

	// A completing sync drops what it covers itself, before it is recorded
	// completed, and leaves what it does not.
	require.NoError(t, w.requests.RequestSync(h.ctx, "c1", store.SyncFull))
	r0 := pending()
	done := func(to uint64) *run {
		cp := checkpoint{Epoch: 1, RequestsFrom: r0.rev - 1, RequestsTo: to}
		return &run{w: w, conn: &store.Connection{ID: "c1"}, log: zap.NewNop(),
			state: store.SyncState{ID: "s", Kind: store.SyncFull, Status: store.SyncCompleted, Checkpoint: cp.encode()}}
	}
	done(r0.rev - 1).dropCovered(h.ctx)
	require.Equal(t, r0, pending(), "made after the sync ended: it stays")
	done(r0.rev).dropCovered(h.ctx)
	require.Empty(t, pending().kind, "made while the sync ran: dropped")

	// A sync of an earlier version knows no revisions: while it runs it
	// covers full requests only, and once it has ended, nothing.
	require.NoError(t, w.requests.RequestSync(h.ctx, "c1", store.SyncIncremental))
	r := pending()
	old := &store.Connection{ID: "c1", Detail: store.ConnectionDetail{LastSync: &store.SyncState{ID: "s", Kind: store.SyncFull, Status: store.SyncRunning}}}
	require.Equal(t, r, w.coalesce(h.ctx, old, r))
	old.Detail.LastSync.Status = store.SyncCompleted
	require.Equal(t, r, w.coalesce(h.ctx, old, r))
}

// A sync records the request bucket's revisions when it starts and when it
// completes. A full request made while it runs is dropped by its
// completion, before anyone can see it completed: an incremental request
// made then is one of its own, not merged into a request already served.
// One made after it completed runs another sync.
func TestSyncRecordsTheRequestsItCovers(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 29, Projects: 1, IssuesPerProject: 3})
	c := h.connect("org-a", connections.Options{}) // requests the first full sync
	requested := make(chan error, 1)
	var once sync.Once
	h.startWorker("a", LeaseTTL, newTestConfig(), func(_ *Config, _ *Deps, w *Worker) {
		if w != nil {
			w.hooks.syncStart = func(connID string, _ store.SyncKind) {
				once.Do(func() { requested <- h.reqs.RequestSync(h.ctx, connID, store.SyncFull) })
			}
		}
	})
	first := h.waitFull(c.ID, "", 30*time.Second)
	require.NoError(t, <-requested)
	require.Equal(t, store.SyncCompleted, first.Status)
	cp := decodeCheckpoint(first)
	require.NotZero(t, cp.RequestsFrom)
	require.Greater(t, cp.RequestsTo, cp.RequestsFrom, "the request made while it ran")
	reqs, err := h.reqs.pending(h.ctx)
	require.NoError(t, err)
	require.NotContains(t, reqs, c.ID, "the full request made while it ran was dropped by its completion")

	require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncIncremental))
	next := h.waitSync(c.ID, 30*time.Second, "an incremental sync ends", func(ls *store.SyncState) bool {
		return ls.ID != first.ID && ls.Status != store.SyncRunning
	})
	require.Equal(t, store.SyncIncremental, next.Kind, "the request made after the full sync is its own")

	// A full request after it ended is not covered: it runs another sync.
	h.clock.Advance(time.Minute)
	require.NoError(t, h.reqs.RequestSync(h.ctx, c.ID, store.SyncFull))
	second := h.waitFull(c.ID, first.ID, 30*time.Second)
	require.Equal(t, store.SyncCompleted, second.Status)
	require.Greater(t, decodeCheckpoint(second).RequestsFrom, cp.RequestsTo)
}
