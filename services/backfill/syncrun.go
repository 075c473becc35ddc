package backfill

import (
	"context"
	"fmt"
	"slices"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Syncer crawls one vendor's API for the syncs of its connections: a
// connector provides it, by vendor (Deps.Syncers).
type Syncer interface {
	// Full publishes every object in the connection's scope through run,
	// resuming from its checkpoint.
	Full(ctx context.Context, run connector.SyncRun) error
	// Incremental publishes what changed since run.From().
	Incremental(ctx context.Context, run connector.SyncRun) error
	// Kinds are the object kinds a complete full sync of c covers: the
	// reconcile tombstones what it did not see of those.
	Kinds(c *store.Connection) []itsm.Kind
}

// run is the connector's view of a sync.
var _ connector.SyncRun = (*run)(nil)

func (r *run) Conn() *store.Connection { return r.conn }
func (r *run) ID() string              { return r.state.ID }
func (r *run) Kind() store.SyncKind    { return r.kind }
func (r *run) Now() time.Time          { return r.w.d.Now() }
func (r *run) Log() *zap.Logger        { return r.log }
func (r *run) SetPhase(phase string)   { r.setPhase(phase) }

func (r *run) From() time.Time {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if r.cp.From == nil {
		return time.Time{}
	}
	return *r.cp.From
}

func (r *run) Phase() string {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	return r.cp.Phase
}

func (r *run) Cursor(v any) error {
	r.saveMu.Lock()
	cur := r.cp.Cursor
	r.saveMu.Unlock()
	if len(cur) == 0 {
		return nil
	}
	if err := json.Unmarshal(cur, v); err != nil {
		return fmt.Errorf("decode the checkpoint's cursor: %w", err)
	}
	return nil
}

func (r *run) Checkpoint(ctx context.Context, phase string, cursor any) error {
	b, err := json.Marshal(cursor)
	if err != nil {
		return fmt.Errorf("encode the checkpoint's cursor: %w", err)
	}
	return r.checkpoint(ctx, func(cp *checkpoint) { cp.Phase, cp.Cursor = phase, b })
}

func (r *run) Carried(v any) error {
	r.saveMu.Lock()
	carry := []byte(r.cp.Carried)
	if lf := r.cp.LastFull; lf != nil {
		carry = lf.Carry
	}
	r.saveMu.Unlock()
	if len(carry) == 0 {
		return nil
	}
	if err := json.Unmarshal(carry, v); err != nil {
		return fmt.Errorf("decode what the last full sync carried: %w", err)
	}
	return nil
}

func (r *run) Carry(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		r.log.Warn("cannot keep the connector's state for the next full sync", zap.Error(err))
		return
	}
	r.saveMu.Lock()
	r.cp.Carry = b
	r.saveMu.Unlock()
}

func (r *run) Incomplete(why string, kinds ...itsm.Kind) {
	r.incompleteMu.Lock()
	defer r.incompleteMu.Unlock()
	if !slices.Contains(r.incomplete, why) {
		r.incomplete = append(r.incomplete, why)
	}
	for _, k := range kinds {
		if !slices.Contains(r.excluded, k) {
			r.excluded = append(r.excluded, k)
		}
	}
}

// mergeIncomplete adds what was noted since the last checkpoint to what the
// checkpoint holds.
func (r *run) mergeIncomplete(why []string, kinds []itsm.Kind) ([]string, []itsm.Kind) {
	r.incompleteMu.Lock()
	defer r.incompleteMu.Unlock()
	why, kinds = slices.Clone(why), slices.Clone(kinds)
	for _, s := range r.incomplete {
		if !slices.Contains(why, s) {
			why = append(why, s)
		}
	}
	for _, k := range r.excluded {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return why, kinds
}

func (r *run) HideUnseen(kinds ...itsm.Kind) {
	r.incompleteMu.Lock()
	defer r.incompleteMu.Unlock()
	for _, k := range kinds {
		if !slices.Contains(r.hidden, k) {
			r.hidden = append(r.hidden, k)
		}
	}
}

// mergeHidden adds the kinds HideUnseen named since the last checkpoint to
// what the checkpoint holds.
func (r *run) mergeHidden(kinds []itsm.Kind) []itsm.Kind {
	r.incompleteMu.Lock()
	defer r.incompleteMu.Unlock()
	kinds = slices.Clone(kinds)
	for _, k := range r.hidden {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

func (r *run) Failed(n int) { r.errs.Add(int64(n)) }

func (r *run) Progress(p connector.Progress) {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if p.Estimate > 0 {
		r.cp.IssuesEstimate = p.Estimate
	}
	if p.Unmapped != nil {
		r.cp.Unmapped = slices.Clone(p.Unmapped)
	}
	if p.Lost != nil {
		r.cp.LostProjects = slices.Clone(p.Lost)
	}
}

func (r *run) Known(ctx context.Context, kind itsm.Kind) (map[string]string, error) {
	known := map[string]string{}
	f := store.Filter{OrganizationID: r.conn.OrganizationID, ConnectionID: r.conn.ID, Kind: kind,
		ExcludeDeleted: true, Limit: store.MaxLimit}
	for {
		p, err := r.w.d.Store.List(ctx, f)
		if err != nil {
			return nil, &infraError{fmt.Errorf("list known %ss: %w", kind, err)}
		}
		for _, d := range p.Docs {
			known[d.ID] = d.Identifier
		}
		if p.NextCursor == "" {
			return known, nil
		}
		f.Cursor = p.NextCursor
	}
}

func (r *run) UpdateConnection(ctx context.Context, fn func(c *store.Connection) error) error {
	_, err := r.w.updateConn(ctx, r.conn.ID, fn)
	return err
}

func (r *run) ObserveCall(endpoint, status string, limited bool) {
	v := string(r.conn.Vendor)
	r.w.m.calls.WithLabelValues(v, endpoint, status).Inc()
	if limited {
		r.w.m.limited.WithLabelValues(v).Inc()
	}
}
