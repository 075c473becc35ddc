package backfill

import (
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/store"
)

// Phases of a sync, in order (SyncState.Phase). An incremental sync only
// runs PhaseIssues.
const (
	PhaseStarting  = "starting"
	PhaseProjects  = "projects"
	PhaseStatuses  = "statuses"
	PhaseUsers     = "users"
	PhaseGroups    = "groups"
	PhaseIssues    = "issues"
	PhaseReconcile = "reconcile"
	PhaseDone      = "done"
)

var fullPhases = []string{PhaseProjects, PhaseStatuses, PhaseUsers, PhaseGroups, PhaseIssues}

// checkpoint is what SyncState.Checkpoint holds (JSON): where a sync
// resumes, and what scheduling must remember across syncs (the connection
// keeps only its last sync).
type checkpoint struct {
	// Epoch fences writers: each worker that takes a sync over increments it,
	// and a worker whose epoch is no longer the stored one stops writing.
	Epoch int `json:"epoch"`
	// Phase is the first phase not yet completed.
	Phase string `json:"phase,omitempty"`
	// ProjectKeys are the projects the issue phase covers, resolved once.
	ProjectKeys []string `json:"project_keys,omitempty"`
	// LostProjects were expected (filter, or known before) but Jira no
	// longer shows them; tickets are then left out of the reconcile.
	LostProjects []string `json:"lost_projects,omitempty"`
	// Missing: since when each known project has been missing, carried
	// from sync to sync for LostProjectGrace.
	Missing map[string]time.Time `json:"missing_projects,omitempty"`
	// Issue search position: chunk of ProjectKeys, the search's page token
	// and, should the token be refused, the id to restart after.
	Chunk         int    `json:"chunk,omitempty"`
	NextPageToken string `json:"next_page_token,omitempty"`
	AfterID       string `json:"after_id,omitempty"`
	LastIssueID   string `json:"last_issue_id,omitempty"`
	SearchPages   int    `json:"search_pages,omitempty"`
	// Done counts the records published up to this checkpoint, by type.
	Done map[string]int64 `json:"done,omitempty"`
	// Live counts include the records published since (progress only).
	Live map[string]int64 `json:"live,omitempty"`
	// IssuesEstimate is search/approximate-count at the issue phase's start.
	IssuesEstimate int `json:"issues_estimate,omitempty"`
	// Incomplete says why kinds were left out of the reconcile.
	Incomplete []string `json:"incomplete,omitempty"`
	// Unmapped lists Jira statuses and priorities that map to UNKNOWN.
	Unmapped []string `json:"unmapped,omitempty"`
	// From is an incremental sync's lower bound (watermark - overlap).
	From *time.Time `json:"from,omitempty"`
	// NotBefore: the sync was parked (quota, infrastructure) and resumes
	// after this time.
	NotBefore *time.Time `json:"not_before,omitempty"`
	// LastFull summarizes the last full sync while incrementals follow it.
	LastFull *fullSummary `json:"last_full,omitempty"`
}

type fullSummary struct {
	ID        string               `json:"id"`
	Status    store.SyncStatus     `json:"status"`
	StartedAt time.Time            `json:"started_at"`
	EndedAt   *time.Time           `json:"ended_at,omitempty"`
	Missing   map[string]time.Time `json:"missing_projects,omitempty"`
}

func decodeCheckpoint(s *store.SyncState) checkpoint {
	var cp checkpoint
	if s != nil && s.Checkpoint != "" {
		_ = json.Unmarshal([]byte(s.Checkpoint), &cp) // an unreadable one restarts from scratch
	}
	return cp
}

func (cp *checkpoint) encode() string {
	b, _ := json.Marshal(cp)
	return string(b)
}

func (cp *checkpoint) clone() checkpoint {
	c := *cp
	c.ProjectKeys = append([]string(nil), cp.ProjectKeys...)
	c.LostProjects = append([]string(nil), cp.LostProjects...)
	c.Incomplete = append([]string(nil), cp.Incomplete...)
	c.Unmapped = append([]string(nil), cp.Unmapped...)
	c.Done = cloneCounts(cp.Done)
	c.Live = nil
	if cp.Missing != nil {
		c.Missing = make(map[string]time.Time, len(cp.Missing))
		for k, v := range cp.Missing {
			c.Missing[k] = v
		}
	}
	return c
}

func cloneCounts(m map[string]int64) map[string]int64 {
	if m == nil {
		return nil
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// lastFull is the connection's last full sync, whatever ran after it.
func lastFull(c *store.Connection) *fullSummary {
	ls := c.Detail.LastSync
	if ls == nil {
		return nil
	}
	cp := decodeCheckpoint(ls)
	if ls.Kind == store.SyncFull {
		return &fullSummary{ID: ls.ID, Status: ls.Status, StartedAt: ls.StartedAt, EndedAt: ls.EndedAt, Missing: cp.Missing}
	}
	return cp.LastFull
}

// plan is the sync a worker should run for a connection now.
type plan struct {
	kind   store.SyncKind
	resume bool
}

// plan decides what, if anything, to run: first a RUNNING sync whose worker
// is gone (the lease tells), then a request, then a due full sync, then a
// due incremental one.
func (w *Worker) plan(c *store.Connection, requested store.SyncKind, now time.Time) (plan, bool) {
	if ls := c.Detail.LastSync; ls != nil && ls.Status == store.SyncRunning {
		cp := decodeCheckpoint(ls)
		if cp.NotBefore != nil && now.Before(*cp.NotBefore) {
			return plan{}, false
		}
		return plan{kind: ls.Kind, resume: true}, true
	}
	if requested.Valid() {
		if requested == store.SyncIncremental && c.Detail.Watermark == nil {
			requested = store.SyncFull // nothing to be incremental to yet
		}
		return plan{kind: requested}, true
	}
	if w.fullDue(c, now) {
		return plan{kind: store.SyncFull}, true
	}
	if w.incrementalDue(c, now) {
		return plan{kind: store.SyncIncremental}, true
	}
	return plan{}, false
}

func refreshInterval(c *store.Connection) time.Duration {
	if c.RefreshIntervalSecs > 0 {
		return time.Duration(c.RefreshIntervalSecs) * time.Second
	}
	return DefaultRefreshInterval
}

func syncTimeout(c *store.Connection) time.Duration {
	if c.TimeoutSecs > 0 {
		return time.Duration(c.TimeoutSecs) * time.Second
	}
	return DefaultTimeout
}

func (w *Worker) fullDue(c *store.Connection, now time.Time) bool {
	lf := lastFull(c)
	if lf == nil {
		return true
	}
	next := lf.StartedAt.Add(refreshInterval(c))
	if lf.Status == store.SyncFailed && lf.EndedAt != nil {
		// A failure is retried sooner; a timeout is not (it would only time
		// out again), it waits for the regular interval.
		if retry := lf.EndedAt.Add(w.cfg.RetryFailedAfter); retry.Before(next) {
			next = retry
		}
	}
	return !now.Before(next)
}

func (w *Worker) incrementalDue(c *store.Connection, now time.Time) bool {
	wm := c.Detail.Watermark
	if wm == nil {
		return false
	}
	last := *wm
	if ls := c.Detail.LastSync; ls != nil && ls.StartedAt.After(last) {
		last = ls.StartedAt // the last attempt, failed or not, counts
	}
	return !now.Before(last.Add(w.cfg.IncrementalEvery))
}
