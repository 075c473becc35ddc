// Package snsync is the ServiceNow sync: a backfill Syncer that reads a
// connection's instance through package snclient and publishes each record
// as the Table API returned it (plus the annotations of package
// servicenow: authors, tags, members) for the normalizer to map.
//
// A sync runs in phases, each a keyset scan checkpointed after every page,
// so a worker that takes the sync over resumes at the last page:
//
//	choices (full syncs), users, groups, then per table: tickets:<t>, comments:<t>, attachments:<t>,
//	then deletions
//
// A full sync reads everything; an incremental one what changed since
// run.From() (sys_updated_on>=, inclusive; journal entries by
// sys_created_on). A table the account may not read (403, 404) keeps its
// kinds out of the full sync's reconcile (run.Incomplete), so that records
// which are no longer visible are never taken for deleted. Deletions are
// read from sys_audit_delete when the account may read it, and a full sync
// that read it since the last full sync has its reconcile mark the tickets,
// comments and attachments it did not see "no longer visible"
// (run.HideUnseen) rather than deleted; without the log, the reconcile of a
// complete full sync tombstones what it did not see.
package snsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
)

// Clients gives the HTTP client whose requests authenticate as a
// connection (connections.Manager has this method).
type Clients interface {
	HTTPClient(ctx context.Context, c *store.Connection) (*http.Client, error)
}

// Config of a Syncer.
type Config struct {
	Clients Clients
	// Client tunes the API client (page size, rate budget, longest wait);
	// its Now and Observe are the run's.
	Client snclient.Options
}

// Syncer syncs ServiceNow connections.
type Syncer struct {
	cfg Config
}

// New is a Syncer.
func New(cfg Config) *Syncer { return &Syncer{cfg: cfg} }

// Tables are the task tables a connection syncs: its Tables option, known
// task tables only, default incident.
func Tables(c *store.Connection) []string {
	var out []string
	for _, t := range c.Options.Tables {
		if t = strings.TrimSpace(t); servicenow.IsTaskTable(t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = []string{"incident"}
	}
	return out
}

// Kinds are what a complete full sync covers: every ServiceNow kind.
func (s *Syncer) Kinds(*store.Connection) []itsm.Kind {
	return []itsm.Kind{itsm.KindTicket, itsm.KindComment, itsm.KindAttachment, itsm.KindUser, itsm.KindGroup}
}

// client builds the API client of a connection.
func (s *Syncer) client(ctx context.Context, conn *store.Connection, o snclient.Options) (*snclient.Client, error) {
	if s.cfg.Clients == nil {
		return nil, errors.New("servicenow sync: no HTTP clients configured")
	}
	if conn.SiteURL == "" {
		return nil, fmt.Errorf("servicenow sync: connection %s has no instance URL", conn.ID)
	}
	hc, err := s.cfg.Clients.HTTPClient(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("servicenow sync: client of connection %s: %w", conn.ID, err)
	}
	return snclient.New(hc, conn.SiteURL, o)
}

// Full reads everything the connection covers.
func (s *Syncer) Full(ctx context.Context, run connector.SyncRun) error {
	return s.sync(ctx, run, true)
}

// Incremental reads what changed since run.From().
func (s *Syncer) Incremental(ctx context.Context, run connector.SyncRun) error {
	return s.sync(ctx, run, false)
}

// phase is one step of a sync.
type phase struct {
	name  string
	table string // task table of a tickets/comments/attachments phase
	run   func(j *job, ctx context.Context, p phase, from snclient.Cursor) error
}

func (s *Syncer) phases(conn *store.Connection) []phase {
	ps := []phase{{name: "choices", run: (*job).choices}, {name: "users", run: (*job).users}, {name: "groups", run: (*job).groups}}
	for _, t := range Tables(conn) {
		ps = append(ps,
			phase{name: "tickets:" + t, table: t, run: (*job).tickets},
			phase{name: "comments:" + t, table: t, run: (*job).comments},
			phase{name: "attachments:" + t, table: t, run: (*job).attachments})
	}
	return append(ps, phase{name: "deletions", run: (*job).deletions})
}

func (s *Syncer) sync(ctx context.Context, run connector.SyncRun, full bool) error {
	conn := run.Conn()
	o := s.cfg.Client
	o.Now = run.Now
	o.Observe = run.ObserveCall
	c, err := s.client(ctx, conn, o)
	if err != nil {
		return err
	}
	j := &job{c: c, run: run, full: full, authors: map[string]string{}}
	if !full {
		j.since = run.From()
	}
	phases := s.phases(conn)
	start, from := 0, snclient.Cursor{}
	if p := run.Phase(); p != "" {
		i := slices.IndexFunc(phases, func(x phase) bool { return x.name == p })
		if i < 0 {
			return fmt.Errorf("servicenow sync: unknown phase %q to resume", p)
		}
		start = i
		if err := run.Cursor(&from); err != nil {
			return fmt.Errorf("servicenow sync: cursor of phase %s: %w", p, err)
		}
	}
	for _, p := range phases[start:] {
		run.SetPhase(p.name)
		if err := p.run(j, ctx, p, from); err != nil {
			return err
		}
		from = snclient.Cursor{}
	}
	return nil
}
