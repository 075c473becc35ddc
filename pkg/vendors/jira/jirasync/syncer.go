// Package jirasync is the Jira connector's sync crawl: what a full and an
// incremental sync of a Jira Cloud connection read, in which order, and
// where they resume. The backfill worker runs it (its Syncer interface)
// through a connector.SyncRun, which owns the lease, the checkpoints'
// storage, publishing, progress and the reconcile.
package jirasync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
)

// Config of the Jira crawl. Zero values mean the documented default.
type Config struct {
	// Endpoints locate Jira Cloud (a simulator's in tests).
	Endpoints jiracloud.Endpoints
	// MaxCallsInFlight bounds concurrent Jira calls per site (tenant), and
	// MaxCallsPerSecond (0 = unbounded) their rate. Default 4.
	MaxCallsInFlight  int
	MaxCallsPerSecond float64
	// MaxQuotaPause: a sync whose site exhausted its quota for longer gives
	// its slot and lease back (connector.Paused) and is resumed from its
	// checkpoint once the quota resets, so a throttled tenant never starves
	// the others. Default 1m.
	MaxQuotaPause time.Duration
	// SearchPageSize is the ids per search/jql page, and so the checkpoint
	// granularity. Default 5000 (Jira's cap with fields=id).
	SearchPageSize int
	// IssueFields is what bulkfetch asks for. Default: everything the
	// mapping can use (custom fields included) minus what it never reads.
	IssueFields []string
	// LostProjectGrace: a project that vanished without Jira saying it was
	// deleted or archived holds back ticket tombstones (it may be lost
	// permission) for this long, then counts as deleted. Default 7 days.
	LostProjectGrace time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxQuotaPause <= 0 {
		c.MaxQuotaPause = time.Minute
	}
	if c.LostProjectGrace <= 0 {
		c.LostProjectGrace = 7 * 24 * time.Hour
	}
	if c.MaxCallsInFlight <= 0 {
		c.MaxCallsInFlight = 4
	}
	if c.SearchPageSize <= 0 || c.SearchPageSize > jiracloud.MaxIDPage {
		c.SearchPageSize = jiracloud.MaxIDPage
	}
	if len(c.IssueFields) == 0 {
		// *all keeps custom fields (vendor attributes); the exclusions are
		// fields the mapping never reads and that only fatten every record.
		c.IssueFields = []string{"*all", "-worklog", "-watches", "-votes", "-timetracking", "-progress",
			"-aggregateprogress", "-issuerestriction", "-lastViewed", "-workratio"}
	}
}

// Credentials authenticate a connection's requests;
// connections.Manager is one (it refreshes tokens as needed).
type Credentials interface {
	HTTPClient(ctx context.Context, c *store.Connection) (*http.Client, error)
}

// Syncer crawls Jira Cloud sites. One Syncer serves every Jira connection
// of a worker: connections of one site share its pacer.
type Syncer struct {
	cfg   Config
	creds Credentials
	log   *zap.Logger

	mu     sync.Mutex
	pacers map[string]*pacerRef

	// bufs recycles bulkfetch answers: records are copied out of them.
	bufs sync.Pool
}

type pacerRef struct {
	p    *jiracloud.Pacer
	refs int
}

// New returns a Syncer.
func New(cfg Config, creds Credentials, log *zap.Logger) *Syncer {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	s := &Syncer{cfg: cfg, creds: creds, log: log, pacers: map[string]*pacerRef{}}
	s.bufs.New = func() any {
		b := make([]byte, 0, 256<<10)
		return &b
	}
	return s
}

// Phases of a full sync, in order; an incremental sync has only the issue
// phase.
const (
	PhaseProjects = "projects"
	PhaseStatuses = "statuses"
	PhaseUsers    = "users"
	PhaseGroups   = "groups"
	PhaseIssues   = "issues"
)

var fullPhases = []string{PhaseProjects, PhaseStatuses, PhaseUsers, PhaseGroups, PhaseIssues}

// Kinds are what a complete full sync covers: all six.
func (s *Syncer) Kinds(*store.Connection) []itsm.Kind {
	return []itsm.Kind{itsm.KindUser, itsm.KindGroup, itsm.KindProject, itsm.KindTicket, itsm.KindComment, itsm.KindAttachment}
}

// ticketKinds are held back from a reconcile when the issue scope could not
// be read completely (a lost project, an unreadable issue).
var ticketKinds = []itsm.Kind{itsm.KindProject, itsm.KindTicket, itsm.KindComment, itsm.KindAttachment}

// cursor is where a sync resumes. A checkpoint written before the crawl
// moved behind the connector seam held these fields at its top level under
// the same names, and the worker hands such a checkpoint over whole, so
// keep the names.
type cursor struct {
	// ProjectKeys are the projects the issue phase covers, resolved once.
	ProjectKeys []string `json:"project_keys,omitempty"`
	// LostProjects were expected (filter, or known before) but Jira no
	// longer shows them; tickets are then left out of the reconcile.
	LostProjects []string `json:"lost_projects,omitempty"`
	// Missing: since when each known project has been missing; carried
	// from full sync to full sync for LostProjectGrace.
	Missing map[string]time.Time `json:"missing_projects,omitempty"`
	// Issue search position: chunk of ProjectKeys, the search's page token
	// and, should the token be refused, the id to restart after.
	Chunk         int    `json:"chunk,omitempty"`
	NextPageToken string `json:"next_page_token,omitempty"`
	AfterID       string `json:"after_id,omitempty"`
	LastIssueID   string `json:"last_issue_id,omitempty"`
	SearchPages   int    `json:"search_pages,omitempty"`
}

// carried is what a full sync keeps for the next one.
type carried struct {
	Missing map[string]time.Time `json:"missing_projects,omitempty"`
}

// crawl is one sync of one connection.
type crawl struct {
	s      *Syncer
	run    connector.SyncRun
	conn   *store.Connection
	kind   store.SyncKind
	log    *zap.Logger
	client *jiracloud.Client
	pacer  *jiracloud.Pacer
	// zone and widen render an incremental sync's JQL date.
	zone  *time.Location
	widen time.Duration

	mu sync.Mutex
	cp cursor
}

// Full reads every project, status, priority, user, group and issue (with
// its comments and attachments) in the connection's scope.
func (s *Syncer) Full(ctx context.Context, run connector.SyncRun) error {
	r, release, err := s.start(ctx, run)
	if err != nil {
		return err
	}
	defer release()
	if run.Phase() == "" {
		var c carried
		if err := run.Carried(&c); err == nil {
			r.cp.Missing = c.Missing
		}
	}
	start := 0
	for i, p := range fullPhases {
		if p == run.Phase() {
			start = i
		}
	}
	for i := start; i < len(fullPhases); i++ {
		phase := fullPhases[i]
		run.SetPhase(phase)
		var err error
		switch phase {
		case PhaseProjects:
			err = r.projects(ctx)
		case PhaseStatuses:
			err = r.statuses(ctx)
		case PhaseUsers:
			err = r.users(ctx)
		case PhaseGroups:
			err = r.groups(ctx)
		case PhaseIssues:
			err = r.issues(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s phase: %w", phase, err)
		}
		if i+1 == len(fullPhases) {
			break // the worker checkpoints the end of the crawl
		}
		if err := r.checkpoint(ctx, fullPhases[i+1], func(cp *cursor) {
			cp.Chunk, cp.NextPageToken, cp.AfterID, cp.LastIssueID = 0, "", "", ""
		}); err != nil {
			return err
		}
	}
	return r.reportLost(ctx)
}

// Incremental reads the issues updated since run.From(), with their
// comments and attachments.
func (s *Syncer) Incremental(ctx context.Context, run connector.SyncRun) error {
	r, release, err := s.start(ctx, run)
	if err != nil {
		return err
	}
	defer release()
	return r.incremental(ctx)
}

func (s *Syncer) start(ctx context.Context, run connector.SyncRun) (*crawl, func(), error) {
	conn := run.Conn()
	if conn.CloudID == "" {
		return nil, nil, fmt.Errorf("connection %s: %w", conn.ID, connections.ErrNotActive)
	}
	hc, err := s.creds.HTTPClient(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	r := &crawl{s: s, run: run, conn: conn, kind: run.Kind(), log: run.Log()}
	if err := run.Cursor(&r.cp); err != nil {
		r.log.Warn("unreadable checkpoint cursor; restarting the phase from its start", zap.Error(err))
		r.cp = cursor{}
	}
	pacer, release := s.pacer(conn.CloudID)
	r.pacer = pacer
	r.client = jiracloud.NewClient(s.cfg.Endpoints, conn.CloudID, hc).Observe(func(_, endpoint string, info jiracloud.RateInfo, err error) {
		status := "error"
		if err == nil {
			status = strconv.Itoa(info.Status)
		}
		run.ObserveCall(endpoint, status, info.Limited())
		pacer.Observe(info)
	})
	return r, release, nil
}

// pacer returns the shared pacer of a Jira site: connections of the same
// site share its rate limits, so they share one pacer.
func (s *Syncer) pacer(cloudID string) (*jiracloud.Pacer, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := s.pacers[cloudID]
	if ref == nil {
		ref = &pacerRef{p: jiracloud.NewPacer(jiracloud.PacerConfig{
			MaxInFlight: s.cfg.MaxCallsInFlight, MaxPerSecond: s.cfg.MaxCallsPerSecond,
			MaxPause: s.cfg.MaxQuotaPause, Permanent: permanentClientError,
			OnRetry: func(err error, wait time.Duration) {
				s.log.Debug("retrying a Jira call", zap.String("cloud_id", cloudID), zap.Duration("wait", wait), zap.Error(err))
			},
		})}
		s.pacers[cloudID] = ref
	}
	ref.refs++
	return ref.p, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ref.refs--; ref.refs == 0 && !ref.p.PausedUntil().After(time.Now()) {
			delete(s.pacers, cloudID)
		}
	}
}

// permanentClientError: errors no retry can fix.
func permanentClientError(err error) bool {
	return errors.Is(err, connections.ErrReauthorize) || errors.Is(err, connections.ErrNotActive)
}

// call runs one Jira call through the tenant's pacer.
func (r *crawl) call(ctx context.Context, fn func(ctx context.Context) error) error {
	return r.pacer.Do(ctx, fn)
}

// publish sends one record of this sync.
func (r *crawl) publish(ctx context.Context, typ, issueID string, body []byte, vendorID, version string) error {
	return r.run.Publish(ctx, connector.Record{Type: typ, ParentID: issueID, Body: body, VendorID: vendorID, Version: version})
}

// checkpoint moves the cursor (mutate runs under the lock) and stores it
// with the phase to resume at.
func (r *crawl) checkpoint(ctx context.Context, phase string, mutate func(cp *cursor)) error {
	r.mu.Lock()
	if mutate != nil {
		mutate(&r.cp)
	}
	cp := r.cp.clone()
	r.mu.Unlock()
	return r.run.Checkpoint(ctx, phase, cp)
}

func (cp *cursor) clone() cursor {
	c := *cp
	c.ProjectKeys = slices.Clone(cp.ProjectKeys)
	c.LostProjects = slices.Clone(cp.LostProjects)
	c.Missing = maps.Clone(cp.Missing)
	return c
}

// incomplete keeps the ticket kinds out of this sync's reconcile.
func (r *crawl) incomplete(why string) { r.run.Incomplete(why, ticketKinds...) }
