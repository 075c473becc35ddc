package backfill

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// Progress is a sync's state as people read it.
type Progress struct {
	SyncID    string
	Kind      store.SyncKind
	Phase     string
	Status    store.SyncStatus
	Objects   int64
	Errors    int64
	LastError string
	StartedAt time.Time
	EndedAt   *time.Time
	// Counts are the records published so far, by type (issue, comment...).
	Counts map[string]int64
	// IssuesEstimate is the vendor's approximate ticket count (0: unknown).
	IssuesEstimate int
	// Unmapped lists vendor statuses/priorities that map to UNKNOWN.
	Unmapped []string
	// LostProjects are scopes (projects, tables) that were expected but
	// are no longer visible to the connection.
	LostProjects []string
	// Resumes is how many times another worker took the sync over.
	Resumes int
}

// ProgressOf reads the progress of a connection's last sync (nil: none).
func ProgressOf(ls *store.SyncState) *Progress {
	if ls == nil {
		return nil
	}
	cp := decodeCheckpoint(ls)
	counts := cp.Live
	if counts == nil {
		counts = cp.Done
	}
	return &Progress{SyncID: ls.ID, Kind: ls.Kind, Phase: ls.Phase, Status: ls.Status, Objects: ls.Objects, Errors: ls.Errors,
		LastError: ls.LastError, StartedAt: ls.StartedAt, EndedAt: ls.EndedAt, Counts: maps.Clone(counts),
		IssuesEstimate: cp.IssuesEstimate, Unmapped: cp.Unmapped, LostProjects: cp.LostProjects, Resumes: max(cp.Epoch-1, 0)}
}

// Fraction is the share of the tickets read, when the vendor gave an
// estimate; ok is false otherwise.
func (p *Progress) Fraction() (float64, bool) {
	switch {
	case p.Status == store.SyncCompleted:
		return 1, true
	case p.Phase == PhaseReconcile || p.Phase == PhaseDone:
		return 1, p.Status != store.SyncRunning || p.Phase == PhaseReconcile
	case p.IssuesEstimate <= 0:
		return 0, false
	}
	return min(float64(p.tickets())/float64(p.IssuesEstimate), 1), true
}

// tickets are the ticket records read: Jira issues, other vendors' tickets.
func (p *Progress) tickets() int64 { return p.Counts[raw.TypeIssue] + p.Counts[raw.TypeTicket] }

// Render draws one line: a bar when the size is known, the counts always.
func (p *Progress) Render(now time.Time, width int) string {
	var b strings.Builder
	if f, ok := p.Fraction(); ok && width > 0 {
		n := int(f * float64(width))
		b.WriteString("[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] ")
		fmt.Fprintf(&b, "%3.0f%% ", f*100)
	}
	fmt.Fprintf(&b, "%s %s %s", p.Kind, strings.ToLower(string(p.Status)), p.Phase)
	if p.IssuesEstimate > 0 {
		fmt.Fprintf(&b, " · tickets %d/%d", p.tickets(), p.IssuesEstimate)
	}
	fmt.Fprintf(&b, " · %d objects", p.Objects)
	var kinds []string
	for k := range p.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if len(kinds) > 0 {
		parts := make([]string, 0, len(kinds))
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s %d", k, p.Counts[k]))
		}
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	if p.Errors > 0 {
		fmt.Fprintf(&b, " · %d errors", p.Errors)
	}
	end := now
	if p.EndedAt != nil {
		end = *p.EndedAt
	}
	fmt.Fprintf(&b, " · %s", end.Sub(p.StartedAt).Round(time.Second))
	if p.Resumes > 0 {
		fmt.Fprintf(&b, " · resumed %d×", p.Resumes)
	}
	return b.String()
}

// ConnectionSource reads a connection (store.Store is one).
type ConnectionSource interface {
	LookupConnection(ctx context.Context, id string) (*store.Connection, error)
}

// FollowOptions shape Follow's output.
type FollowOptions struct {
	// Interactive redraws one line (a terminal); otherwise a line is
	// printed whenever the phase changes, and every LineEvery.
	Interactive bool
	// Poll is how often the connection is read. Default 500ms.
	Poll time.Duration
	// LineEvery paces non-interactive output. Default 10s.
	LineEvery time.Duration
	// BarWidth of the progress bar. Default 30.
	BarWidth int
	Now      func() time.Time
}

// Follow shows the progress of a connection's sync until it ends, and
// returns its final state. It follows the sync running now or, if none
// runs, the first one that starts whose id is not afterSyncID (the last
// sync's id before a request: "" follows any). `itsm sync --follow` is
// RequestSync followed by Follow.
func Follow(ctx context.Context, src ConnectionSource, connectionID, afterSyncID string, out io.Writer, o FollowOptions) (*Progress, error) {
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.LineEvery <= 0 {
		o.LineEvery = 10 * time.Second
	}
	if o.BarWidth <= 0 {
		o.BarWidth = 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	var lastPhase string
	var lastLine time.Time
	waiting := false
	for {
		c, err := src.LookupConnection(ctx, connectionID)
		if err != nil {
			return nil, err
		}
		ls := c.Detail.LastSync
		switch {
		case ls == nil || (ls.ID == afterSyncID && ls.Status != store.SyncRunning):
			if !waiting {
				fmt.Fprintln(out, "waiting for a worker to start the sync…")
				waiting = true
			}
		default:
			p := ProgressOf(ls)
			line := p.Render(o.Now(), o.BarWidth)
			switch {
			case o.Interactive:
				fmt.Fprintf(out, "\r\033[K%s", line)
			case p.Phase != lastPhase || o.Now().Sub(lastLine) >= o.LineEvery || p.Status != store.SyncRunning:
				fmt.Fprintln(out, line)
				lastLine = o.Now()
			}
			lastPhase = p.Phase
			if p.Status != store.SyncRunning {
				if o.Interactive {
					fmt.Fprintln(out)
				}
				if p.LastError != "" {
					fmt.Fprintln(out, "last error: "+p.LastError)
				}
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
