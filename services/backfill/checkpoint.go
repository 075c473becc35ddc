package backfill

import (
	"maps"
	"slices"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Phases of a sync (SyncState.Phase) that the worker itself runs; between
// starting and reconcile, the phases are the connector's.
const (
	PhaseStarting  = "starting"
	PhaseReconcile = "reconcile"
	PhaseDone      = "done"
)

// checkpoint is what SyncState.Checkpoint holds (JSON): where a sync
// resumes, and what scheduling must remember across syncs (the connection
// keeps only its last sync).
type checkpoint struct {
	// Epoch fences writers: each worker that takes a sync over increments it,
	// and a worker whose epoch is no longer the stored one stops writing.
	Epoch int `json:"epoch"`
	// Phase is the first phase not yet completed: the connector's, or
	// PhaseReconcile once its crawl is over.
	Phase string `json:"phase,omitempty"`
	// Cursor is the connector's position (connector.SyncRun.Cursor).
	Cursor jsontext.Value `json:"cursor,omitempty"`
	// Carry is what this full sync keeps for the next (SyncRun.Carry).
	Carry jsontext.Value `json:"carry,omitempty"`
	// Carried is what the full sync before this full sync carried
	// (SyncRun.Carried); an incremental sync reads LastFull's.
	Carried jsontext.Value `json:"carried,omitempty"`
	// Done counts the records published up to this checkpoint, by type.
	Done map[string]int64 `json:"done,omitempty"`
	// Live counts include the records published since (progress only).
	Live map[string]int64 `json:"live,omitempty"`
	// IssuesEstimate is the connector's estimate of the tickets to read.
	IssuesEstimate int `json:"issues_estimate,omitempty"`
	// Incomplete says why Excluded kinds were left out of the reconcile.
	Incomplete []string    `json:"incomplete,omitempty"`
	Excluded   []itsm.Kind `json:"excluded_kinds,omitempty"`
	// Hidden kinds: the reconcile marks their unseen objects "no longer
	// visible" instead of tombstoning them (SyncRun.HideUnseen).
	Hidden []itsm.Kind `json:"hidden_kinds,omitempty"`
	// Unmapped lists vendor statuses and priorities that map to UNKNOWN.
	Unmapped []string `json:"unmapped,omitempty"`
	// LostProjects are scopes the connection should see and no longer does.
	LostProjects []string `json:"lost_projects,omitempty"`
	// From is an incremental sync's lower bound (watermark - overlap).
	From *time.Time `json:"from,omitempty"`
	// NotBefore: the sync was parked (quota, infrastructure) and resumes
	// after this time.
	NotBefore *time.Time `json:"not_before,omitempty"`
	// LastFull summarizes the last full sync while incrementals follow it.
	LastFull *fullSummary `json:"last_full,omitempty"`
	// RequestsFrom and RequestsTo are the sync request bucket's last
	// revision when the sync started and when it ended: the requests it
	// covers were made before (see covers). Zero when not known.
	RequestsFrom uint64 `json:"requests_from,omitempty"`
	RequestsTo   uint64 `json:"requests_to,omitempty"`
}

type fullSummary struct {
	ID        string           `json:"id"`
	Status    store.SyncStatus `json:"status"`
	StartedAt time.Time        `json:"started_at"`
	EndedAt   *time.Time       `json:"ended_at,omitempty"`
	Carry     jsontext.Value   `json:"carry,omitempty"`
}

// legacyExcluded: checkpoints from before connectors named the kinds they
// could not cover gave reasons only, and every reason held back the ticket
// kinds (users and groups were always reconciled).
var legacyExcluded = []itsm.Kind{itsm.KindProject, itsm.KindTicket, itsm.KindComment, itsm.KindAttachment}

func decodeCheckpoint(s *store.SyncState) checkpoint {
	var cp checkpoint
	if s == nil || s.Checkpoint == "" {
		return cp
	}
	if json.Unmarshal([]byte(s.Checkpoint), &cp) != nil {
		return checkpoint{} // an unreadable one restarts from scratch
	}
	// Checkpoints written before the crawl moved behind the connector seam
	// (all of them the Jira connector's) have no cursor: they held the
	// connector's fields at the top level, under the names its cursor
	// keeps, so the whole checkpoint serves as the cursor, and as what a
	// full sync carries over.
	if len(cp.Cursor) == 0 {
		cp.Cursor = jsontext.Value(s.Checkpoint)
		if s.Kind == store.SyncFull && len(cp.Carry) == 0 {
			cp.Carry = cp.Cursor
		}
		if lf := cp.LastFull; lf != nil && len(lf.Carry) == 0 {
			var legacy struct {
				LastFull jsontext.Value `json:"last_full"`
			}
			if json.Unmarshal([]byte(s.Checkpoint), &legacy) == nil {
				lf.Carry = legacy.LastFull
			}
		}
	}
	if len(cp.Incomplete) > 0 && len(cp.Excluded) == 0 {
		cp.Excluded = legacyExcluded
	}
	return cp
}

func (cp *checkpoint) encode() string {
	b, _ := json.Marshal(cp)
	return string(b)
}

func (cp *checkpoint) clone() checkpoint {
	c := *cp
	c.Incomplete = slices.Clone(cp.Incomplete)
	c.Excluded = slices.Clone(cp.Excluded)
	c.Hidden = slices.Clone(cp.Hidden)
	c.Unmapped = slices.Clone(cp.Unmapped)
	c.LostProjects = slices.Clone(cp.LostProjects)
	c.Done = maps.Clone(cp.Done)
	c.Live = nil
	return c
}

// lastFull is the connection's last full sync, whatever ran after it.
func lastFull(c *store.Connection) *fullSummary {
	ls := c.Detail.LastSync
	if ls == nil {
		return nil
	}
	cp := decodeCheckpoint(ls)
	if ls.Kind == store.SyncFull {
		return &fullSummary{ID: ls.ID, Status: ls.Status, StartedAt: ls.StartedAt, EndedAt: ls.EndedAt, Carry: cp.Carry}
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
