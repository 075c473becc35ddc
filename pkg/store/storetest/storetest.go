// Package storetest is the conformance suite every store backend must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Open returns a fresh, empty store for one test; it must register its own
// cleanup with t.Cleanup.
type Open func(t *testing.T) store.Store

// Option adjusts a Run.
type Option func(*runConfig)

type runConfig struct {
	known map[string]string
}

// KnownDifference skips the named case, giving reason: for a server that
// is documented to differ from the one the backend is written for (a
// MongoDB wire-protocol server that is not MongoDB). Naming a case the suite
// does not have fails the run, so a skip cannot outlive its case.
func KnownDifference(name, reason string) Option {
	return func(c *runConfig) { c.known[name] = reason }
}

type testCase struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// Run runs the whole suite against the backend that open makes.
func Run(t *testing.T, open Open, opts ...Option) {
	cfg := runConfig{known: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	tests := []testCase{
		{"PutGetRoundTrip", testRoundTrip},
		{"VersionGuard", testVersionGuard},
		{"TombstoneNotResurrected", testTombstone},
		{"GetByIdentifier", testGetByIdentifier},
		{"ListFilters", testListFilters},
		{"CursorPagination", testPagination},
		{"BadCursor", testBadCursor},
		{"OrganizationIsolation", testIsolation},
		{"ConcurrentPutsConverge", testConcurrentPuts},
		{"Connections", testConnections},
		{"ConnectionDetailAndQuery", testConnectionDetail},
		{"SyncSeenTracking", testSyncSeen},
		{"PutNeverCrossesOrganizations", testPutCrossOrg},
		{"InsertOnlyNew", testInsert},
		{"APIKeys", testAPIKeys},
		{"PurgeConnection", testPurge},
		{"ConnectionPagesAndCount", testConnectionPages},
	}
	for name := range cfg.known {
		if !slices.ContainsFunc(tests, func(tc testCase) bool { return tc.name == name }) {
			t.Fatalf("known difference %q names no case of the suite", name)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if reason, ok := cfg.known[tc.name]; ok {
				t.Skip("known difference: " + reason)
			}
			tc.fn(t, open(t))
		})
	}
}

var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// ticket builds a ticket document whose body records its version, so reads
// can prove which write won.
func ticket(org, conn, vendorID string, version int64) *store.Document {
	id := itsm.ObjectID(conn, itsm.KindTicket, vendorID)
	body, _ := json.Marshal(map[string]any{"id": id, "name": "issue " + vendorID, "version": version})
	return &store.Document{
		Kind: itsm.KindTicket, ID: id, OrganizationID: org, ConnectionID: conn,
		Version: version, Identifier: "PROJ-" + vendorID,
		Status: string(itsm.StatusTodo), Priority: string(itsm.PriorityMedium),
		UpdatedAt: base.Add(time.Duration(version) * time.Millisecond), Body: body,
	}
}

func bodyVersion(t *testing.T, d *store.Document) int64 {
	t.Helper()
	var v struct{ Version int64 }
	require.NoError(t, json.Unmarshal(d.Body, &v))
	return v.Version
}

func mustPut(t *testing.T, s store.Store, d *store.Document, want store.Outcome) {
	t.Helper()
	got, err := s.Put(ctx(t), d)
	require.NoError(t, err)
	require.Equal(t, want, got, "Put(%s v%d)", d.ID, d.Version)
}

func testRoundTrip(t *testing.T, s store.Store) {
	d := ticket("org-a", "conn-1", "1", 100)
	d.ProjectID, d.AssignedUserID = "p1", "u1"
	mustPut(t, s, d, store.Written)
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, d.ID)
	require.NoError(t, err)
	require.JSONEq(t, string(d.Body), string(got.Body))
	require.Equal(t, d.Version, got.Version)
	require.Equal(t, d.Identifier, got.Identifier)
	require.Equal(t, "conn-1", got.ConnectionID)
	require.Equal(t, "org-a", got.OrganizationID)
	require.Equal(t, "p1", got.ProjectID)
	require.Equal(t, "u1", got.AssignedUserID)
	require.True(t, d.UpdatedAt.Equal(got.UpdatedAt), "updated_at %v != %v", got.UpdatedAt, d.UpdatedAt)
	require.False(t, got.Deleted)

	_, err = s.Get(ctx(t), "org-a", itsm.KindTicket, "missing")
	require.ErrorIs(t, err, store.ErrNotFound)
	// The same id under another kind is another object.
	_, err = s.Get(ctx(t), "org-a", itsm.KindComment, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testVersionGuard(t *testing.T, s store.Store) {
	mustPut(t, s, ticket("org-a", "c", "1", 200), store.Written)
	mustPut(t, s, ticket("org-a", "c", "1", 100), store.NotNewer) // older: ignored
	mustPut(t, s, ticket("org-a", "c", "1", 200), store.NotNewer) // equal: no-op
	d := ticket("org-a", "c", "1", 0)
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, d.ID)
	require.NoError(t, err)
	require.EqualValues(t, 200, bodyVersion(t, got))
	mustPut(t, s, ticket("org-a", "c", "1", 300), store.Written) // newer: wins
	got, err = s.Get(ctx(t), "org-a", itsm.KindTicket, d.ID)
	require.NoError(t, err)
	require.EqualValues(t, 300, bodyVersion(t, got))
	require.EqualValues(t, 300, got.Version)
}

func testTombstone(t *testing.T, s store.Store) {
	mustPut(t, s, ticket("org-a", "c", "1", 100), store.Written)
	del := ticket("org-a", "c", "1", 500)
	del.Deleted, del.Status = true, string(itsm.StatusDeleted)
	mustPut(t, s, del, store.Written)
	mustPut(t, s, ticket("org-a", "c", "1", 400), store.NotNewer)
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, del.ID)
	require.NoError(t, err)
	require.True(t, got.Deleted)
	require.Equal(t, string(itsm.StatusDeleted), got.Status)
	// Tombstones stay listable so consumers learn about deletions.
	page, err := s.List(ctx(t), store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, Status: string(itsm.StatusDeleted)})
	require.NoError(t, err)
	require.Len(t, page.Docs, 1)
}

func testGetByIdentifier(t *testing.T, s store.Store) {
	mustPut(t, s, ticket("org-a", "c", "7", 1), store.Written)
	got, err := s.GetByIdentifier(ctx(t), "org-a", itsm.KindTicket, "PROJ-7")
	require.NoError(t, err)
	require.Equal(t, itsm.ObjectID("c", itsm.KindTicket, "7"), got.ID)
	_, err = s.GetByIdentifier(ctx(t), "org-a", itsm.KindTicket, "PROJ-8")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func listIDs(t *testing.T, s store.Store, f store.Filter) []string {
	t.Helper()
	page, err := s.List(ctx(t), f)
	require.NoError(t, err)
	ids := make([]string, 0, len(page.Docs))
	for _, d := range page.Docs {
		ids = append(ids, d.ID)
	}
	return ids
}

func testListFilters(t *testing.T, s store.Store) {
	a := ticket("org-a", "c1", "1", 1)
	a.Status, a.Priority, a.ProjectID, a.AssignedUserID = "OPEN", "HIGH", "p1", "u1"
	b := ticket("org-a", "c1", "2", 2)
	b.Status, b.Priority, b.ProjectID = "CLOSED", "LOW", "p2"
	c := ticket("org-a", "c2", "3", 3)
	c.Status, c.Priority, c.ProjectID, c.AssignedUserID = "OPEN", "LOW", "p1", "u2"
	cm := &store.Document{Kind: itsm.KindComment, ID: itsm.ObjectID("c1", itsm.KindComment, "9"),
		OrganizationID: "org-a", ConnectionID: "c1", Version: 1, TicketID: a.ID, UpdatedAt: base, Body: json.RawMessage(`{}`)}
	for _, d := range []*store.Document{a, b, c, cm} {
		mustPut(t, s, d, store.Written)
	}
	f := func(mod func(*store.Filter)) store.Filter {
		x := store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket}
		mod(&x)
		return x
	}
	require.Equal(t, []string{a.ID, b.ID, c.ID}, listIDs(t, s, f(func(*store.Filter) {})))
	require.Equal(t, []string{a.ID, c.ID}, listIDs(t, s, f(func(x *store.Filter) { x.Status = "OPEN" })))
	require.Equal(t, []string{b.ID, c.ID}, listIDs(t, s, f(func(x *store.Filter) { x.Priority = "LOW" })))
	require.Equal(t, []string{a.ID, c.ID}, listIDs(t, s, f(func(x *store.Filter) { x.ProjectID = "p1" })))
	require.Equal(t, []string{c.ID}, listIDs(t, s, f(func(x *store.Filter) { x.AssignedUserID = "u2" })))
	require.Equal(t, []string{a.ID, b.ID}, listIDs(t, s, f(func(x *store.Filter) { x.ConnectionID = "c1" })))
	require.Equal(t, []string{b.ID}, listIDs(t, s, f(func(x *store.Filter) { x.Identifier = "PROJ-2" })))
	require.Equal(t, []string{b.ID, c.ID}, listIDs(t, s, f(func(x *store.Filter) { x.UpdatedSince = b.UpdatedAt })))
	require.Equal(t, []string{cm.ID}, listIDs(t, s, store.Filter{OrganizationID: "org-a", Kind: itsm.KindComment, TicketID: a.ID}))
	ada := &store.Document{Kind: itsm.KindUser, ID: "u-ada", OrganizationID: "org-a", ConnectionID: "c1", Version: 1,
		Name: "ada lovelace", Identifier: "ada@example.com", UpdatedAt: base, Body: json.RawMessage(`{}`)}
	bob := &store.Document{Kind: itsm.KindUser, ID: "u-bob", OrganizationID: "org-a", ConnectionID: "c1", Version: 1,
		Name: "bob", UpdatedAt: base, Body: json.RawMessage(`{}`)}
	mustPut(t, s, ada, store.Written)
	mustPut(t, s, bob, store.Written)
	users := store.Filter{OrganizationID: "org-a", Kind: itsm.KindUser}
	users.Name = "ada lovelace"
	require.Equal(t, []string{ada.ID}, listIDs(t, s, users))
	got, err := s.Get(ctx(t), "org-a", itsm.KindUser, ada.ID)
	require.NoError(t, err)
	require.Equal(t, "ada lovelace", got.Name)
	users.Name = ""
	users.Identifier = "ada@example.com"
	require.Equal(t, []string{ada.ID}, listIDs(t, s, users))
	users.OrganizationID = "org-b"
	require.Empty(t, listIDs(t, s, users))
	require.Empty(t, listIDs(t, s, store.Filter{OrganizationID: "org-a", Kind: itsm.KindComment, TicketID: b.ID}))
}

func testPagination(t *testing.T, s store.Store) {
	const n = 25
	want := map[string]bool{}
	for i := range n {
		d := ticket("org-a", "c", fmt.Sprint(i), int64(i+1))
		// Two documents share each timestamp so that ties must be broken by id.
		d.UpdatedAt = base.Add(time.Duration(i/2) * time.Second)
		mustPut(t, s, d, store.Written)
		want[d.ID] = true
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	var last *store.Document
	for {
		page, err := s.List(ctx(t), store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, Limit: 10, Cursor: cursor})
		require.NoError(t, err)
		pages++
		for _, d := range page.Docs {
			require.False(t, seen[d.ID], "document %s returned twice", d.ID)
			seen[d.ID] = true
			if last != nil {
				ordered := last.UpdatedAt.Before(d.UpdatedAt) || (last.UpdatedAt.Equal(d.UpdatedAt) && last.ID < d.ID)
				require.True(t, ordered, "page order broken")
			}
			last = d
		}
		if page.NextCursor == "" {
			break
		}
		require.Len(t, page.Docs, 10)
		cursor = page.NextCursor
		require.Less(t, pages, 10, "pagination does not terminate")
	}
	require.Equal(t, 3, pages)
	require.Equal(t, want, seen)
}

func testBadCursor(t *testing.T, s store.Store) {
	_, err := s.List(ctx(t), store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, Cursor: "!!not-a-cursor"})
	require.ErrorIs(t, err, store.ErrInvalid)
}

func testIsolation(t *testing.T, s store.Store) {
	a := ticket("org-a", "conn-a", "1", 1)
	mustPut(t, s, a, store.Written)
	_, err := s.Get(ctx(t), "org-b", itsm.KindTicket, a.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetByIdentifier(ctx(t), "org-b", itsm.KindTicket, a.Identifier)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, listIDs(t, s, store.Filter{OrganizationID: "org-b", Kind: itsm.KindTicket}))
	require.Empty(t, listIDs(t, s, store.Filter{OrganizationID: "org-b", Kind: itsm.KindTicket, ConnectionID: "conn-a"}))
	require.Empty(t, listIDs(t, s, store.Filter{OrganizationID: "", Kind: itsm.KindTicket}), "an empty organization must match nothing")

	c := &store.Connection{ID: "conn-a", OrganizationID: "org-a", Vendor: "JIRA", State: store.StatePending, CreatedAt: base, UpdatedAt: base}
	require.NoError(t, s.CreateConnection(ctx(t), c))
	_, err = s.GetConnection(ctx(t), "org-b", "conn-a")
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.ListConnections(ctx(t), "org-b")
	require.NoError(t, err)
	require.Empty(t, list)
}

func testConcurrentPuts(t *testing.T, s store.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				v := int64((i*8+w)*7%64 + 1) // every version 1..64 once, scrambled
				if _, err := s.Put(context.Background(), ticket("org-a", "c", "1", v)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, itsm.ObjectID("c", itsm.KindTicket, "1"))
	require.NoError(t, err)
	require.EqualValues(t, 64, got.Version)
	require.EqualValues(t, 64, bodyVersion(t, got))
}

func testConnections(t *testing.T, s store.Store) {
	c := &store.Connection{
		ID: "conn-1", OrganizationID: "org-a", Vendor: "JIRA", State: store.StatePending,
		RefreshIntervalSecs: 21600, TimeoutSecs: 1800, Secret: []byte{1, 2, 3},
		Options: store.ConnectionOptions{
			ProjectKeysFilter: []string{"ABC"},
			PriorityMapping:   store.NameMap[itsm.Priority]{{Name: "Urgent", Value: itsm.PriorityCritical}, {Name: "Blocker", Value: itsm.PriorityCritical}, {Name: "A.b", Value: itsm.PriorityLow}},
			StatusMapping:     store.NameMap[itsm.Status]{{Name: "Triage", Value: itsm.StatusOpen}, {Name: "$weird", Value: itsm.StatusTodo}, {Name: "Backlog", Value: itsm.StatusTodo}},
			Tables:            []string{"incident", "problem"},
			Auth:              &store.ConnectionAuth{Type: store.AuthBasic, Username: "itsm.integration"},
		},
		Detail:    store.ConnectionDetail{Credentials: []byte{9, 8, 7}},
		CreatedAt: base, UpdatedAt: base,
	}
	require.NoError(t, s.CreateConnection(ctx(t), c))
	require.ErrorIs(t, s.CreateConnection(ctx(t), c), store.ErrConflict)

	got, err := s.GetConnection(ctx(t), "org-a", "conn-1")
	require.NoError(t, err)
	require.Equal(t, c.Options, got.Options)
	require.Equal(t, []byte{1, 2, 3}, got.Secret)
	require.Equal(t, []byte{9, 8, 7}, got.Detail.Credentials, "sealed credentials round-trip")
	require.Equal(t, 21600, got.RefreshIntervalSecs)
	require.True(t, base.Equal(got.CreatedAt))

	got.State, got.SiteURL = store.StateActive, "https://acme.atlassian.net"
	require.NoError(t, s.UpdateConnection(ctx(t), got))
	stale := *got
	stale.State = store.StatePaused
	stale.Revision = 0
	require.ErrorIs(t, s.UpdateConnection(ctx(t), &stale), store.ErrConflict, "a stale revision must not overwrite")

	again, err := s.LookupConnection(ctx(t), "conn-1")
	require.NoError(t, err)
	require.Equal(t, store.StateActive, again.State)
	require.Equal(t, "https://acme.atlassian.net", again.SiteURL)
	require.EqualValues(t, 1, again.Revision)

	_, err = s.LookupConnection(ctx(t), "nope")
	require.True(t, errors.Is(err, store.ErrNotFound))
	list, err := s.ListConnections(ctx(t), "org-a")
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func testConnectionDetail(t *testing.T, s store.Store) {
	exp := base.Add(30 * 24 * time.Hour)
	c := &store.Connection{ID: "c1", OrganizationID: "org-a", Vendor: "JIRA", State: store.StateActive, CloudID: "cloud-1",
		Detail: store.ConnectionDetail{
			Health:   store.Health{Status: "FAILED", ResolutionOwner: "CUSTOMER", Description: "reconnect", UpdatedAt: base},
			Webhooks: []store.WebhookRegistration{{ID: 7, Events: []string{"jira:issue_created"}, JQL: "project IN (ABC)", ExpiresAt: exp}},
			LastSync: &store.SyncState{ID: "s1", Kind: "full", Phase: "issues", Status: "RUNNING", Objects: 42, StartedAt: base, Checkpoint: "tok"},
		},
		CreatedAt: base, UpdatedAt: base}
	require.NoError(t, s.CreateConnection(ctx(t), c))
	require.NoError(t, s.CreateConnection(ctx(t), &store.Connection{ID: "c2", OrganizationID: "org-b", Vendor: "JIRA",
		State: store.StatePending, CloudID: "cloud-1", CreatedAt: base, UpdatedAt: base}))
	require.NoError(t, s.CreateConnection(ctx(t), &store.Connection{ID: "c3", OrganizationID: "org-b", Vendor: "JIRA",
		State: store.StateActive, CloudID: "cloud-2", CreatedAt: base, UpdatedAt: base}))

	got, err := s.GetConnection(ctx(t), "org-a", "c1")
	require.NoError(t, err)
	require.Equal(t, store.HealthFailed, got.Detail.Health.Status)
	require.Equal(t, int64(7), got.Detail.Webhooks[0].ID)
	require.True(t, exp.Equal(got.Detail.Webhooks[0].ExpiresAt))
	require.Equal(t, int64(42), got.Detail.LastSync.Objects)
	require.Equal(t, "tok", got.Detail.LastSync.Checkpoint)

	got.Detail.LastSync.Objects = 43
	require.NoError(t, s.UpdateConnection(ctx(t), got))
	again, err := s.LookupConnection(ctx(t), "c1")
	require.NoError(t, err)
	require.Equal(t, int64(43), again.Detail.LastSync.Objects)

	ids := func(q store.ConnectionQuery) []string {
		cs, err := s.FindConnections(ctx(t), q)
		require.NoError(t, err)
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	require.Equal(t, []string{"c1", "c2", "c3"}, ids(store.ConnectionQuery{}))
	require.Equal(t, []string{"c1", "c3"}, ids(store.ConnectionQuery{State: store.StateActive}))
	require.Equal(t, []string{"c1", "c2"}, ids(store.ConnectionQuery{CloudID: "cloud-1"}))
	require.Equal(t, []string{"c1"}, ids(store.ConnectionQuery{CloudID: "cloud-1", State: store.StateActive}))
}

func testSyncSeen(t *testing.T, s store.Store) {
	seen := ticket("org-a", "c", "1", 10)
	seen.SyncID = "sync-1"
	marked := ticket("org-a", "c", "2", 10)
	missed := ticket("org-a", "c", "3", 10)
	gone := ticket("org-a", "c", "4", 10)
	gone.Deleted = true
	other := ticket("org-a", "c-other", "5", 10)
	for _, d := range []*store.Document{seen, marked, missed, gone, other} {
		mustPut(t, s, d, store.Written)
	}
	require.NoError(t, s.MarkSeen(ctx(t), "org-a", itsm.KindTicket, marked.ID, "sync-1"))
	require.NoError(t, s.MarkSeen(ctx(t), "org-a", itsm.KindTicket, "no-such-id", "sync-1"))
	// Another organization cannot mark (and so shield) this one's documents.
	require.NoError(t, s.MarkSeen(ctx(t), "org-b", itsm.KindTicket, missed.ID, "sync-1"))

	// A webhook write (no SyncID) keeps what the sync recorded.
	newer := ticket("org-a", "c", "1", 20)
	mustPut(t, s, newer, store.Written)
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, seen.ID)
	require.NoError(t, err)
	require.Equal(t, "sync-1", got.SyncID)

	f := store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, ConnectionID: "c", NotSeenBy: "sync-1", ExcludeDeleted: true}
	require.Equal(t, []string{missed.ID}, listIDs(t, s, f))
	f.UpdatedBefore = missed.UpdatedAt
	require.Empty(t, listIDs(t, s, f), "UpdatedBefore excludes documents changed at or after it")
}

func testPutCrossOrg(t *testing.T, s store.Store) {
	a := ticket("org-a", "c", "1", 10)
	mustPut(t, s, a, store.Written)
	b := ticket("org-b", "c", "1", 20) // same id, another organization
	mustPut(t, s, b, store.NotNewer)
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, a.ID)
	require.NoError(t, err)
	require.EqualValues(t, 10, got.Version, "another organization must never overwrite a document")
}

func testInsert(t *testing.T, s store.Store) {
	ins := func(d *store.Document, want store.Outcome) {
		t.Helper()
		got, err := s.Insert(ctx(t), d)
		require.NoError(t, err)
		require.Equal(t, want, got, "Insert(%s %s v%d)", d.OrganizationID, d.ID, d.Version)
	}
	d := ticket("org-a", "c", "1", 100)
	d.SyncID = "sync-1"
	ins(d, store.Written)
	got, err := s.Get(ctx(t), "org-a", itsm.KindTicket, d.ID)
	require.NoError(t, err)
	require.EqualValues(t, 100, bodyVersion(t, got))
	require.Equal(t, d.Identifier, got.Identifier)
	require.True(t, d.UpdatedAt.Equal(got.UpdatedAt))
	// The version guard sees an inserted document like a put one.
	mustPut(t, s, ticket("org-a", "c", "1", 100), store.NotNewer)
	// Stored: nothing is written, older, newer or of another organization.
	ins(ticket("org-a", "c", "1", 50), store.NotNewer)
	ins(ticket("org-a", "c", "1", 200), store.NotNewer)
	ins(ticket("org-b", "c", "1", 300), store.NotNewer)
	got, err = s.Get(ctx(t), "org-a", itsm.KindTicket, d.ID)
	require.NoError(t, err)
	require.EqualValues(t, 100, bodyVersion(t, got))
	_, err = s.Get(ctx(t), "org-b", itsm.KindTicket, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	// The sync that inserted it saw it.
	p, err := s.List(ctx(t), store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, NotSeenBy: "sync-1"})
	require.NoError(t, err)
	require.Empty(t, p.Docs)
	// A tombstone is stored too.
	tomb := ticket("org-a", "c", "2", 10)
	tomb.Deleted = true
	ins(tomb, store.Written)
	ins(ticket("org-a", "c", "2", 20), store.NotNewer)
	got, err = s.Get(ctx(t), "org-a", itsm.KindTicket, tomb.ID)
	require.NoError(t, err)
	require.True(t, got.Deleted)
}

func testAPIKeys(t *testing.T, s store.Store) {
	h1, h2 := []byte("hash-1-xxxxxxxxxxxxxxxxxxxxxxxxxx"), []byte("hash-2-xxxxxxxxxxxxxxxxxxxxxxxxxx")
	require.NoError(t, s.CreateAPIKey(ctx(t), &store.APIKey{ID: "k1", OrganizationID: "org-a", Name: "ci", Hash: h1, CreatedAt: base}))
	require.NoError(t, s.CreateAPIKey(ctx(t), &store.APIKey{ID: "k2", OrganizationID: "org-b", Name: "ops", Hash: h2, CreatedAt: base}))
	require.ErrorIs(t, s.CreateAPIKey(ctx(t), &store.APIKey{ID: "k1", OrganizationID: "org-a", Hash: []byte("x"), CreatedAt: base}), store.ErrConflict)

	k, err := s.LookupAPIKey(ctx(t), h1)
	require.NoError(t, err)
	require.Equal(t, "org-a", k.OrganizationID)
	require.Equal(t, "ci", k.Name)
	require.Nil(t, k.RevokedAt)
	_, err = s.LookupAPIKey(ctx(t), []byte("unknown"))
	require.ErrorIs(t, err, store.ErrNotFound)

	list, err := s.ListAPIKeys(ctx(t), "org-a")
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.ErrorIs(t, s.RevokeAPIKey(ctx(t), "org-b", "k1", base), store.ErrNotFound, "cannot revoke another organization's key")
	require.NoError(t, s.RevokeAPIKey(ctx(t), "org-a", "k1", base.Add(time.Hour)))
	_, err = s.LookupAPIKey(ctx(t), h1)
	require.ErrorIs(t, err, store.ErrNotFound, "a revoked key no longer authenticates")
	list, err = s.ListAPIKeys(ctx(t), "org-a")
	require.NoError(t, err)
	require.NotNil(t, list[0].RevokedAt)
	_, err = s.LookupAPIKey(ctx(t), h2)
	require.NoError(t, err)
}

func testPurge(t *testing.T, s store.Store) {
	for _, d := range []*store.Document{
		ticket("org-a", "c1", "1", 1), ticket("org-a", "c1", "2", 1), ticket("org-a", "c2", "3", 1), ticket("org-b", "c1b", "4", 1),
	} {
		mustPut(t, s, d, store.Written)
	}
	n, err := s.PurgeConnection(ctx(t), "org-b", "c1")
	require.NoError(t, err)
	require.Zero(t, n, "another organization cannot purge a connection's data")
	n, err = s.PurgeConnection(ctx(t), "org-a", "c1")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Empty(t, listIDs(t, s, store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket, ConnectionID: "c1"}))
	require.Len(t, listIDs(t, s, store.Filter{OrganizationID: "org-a", Kind: itsm.KindTicket}), 1, "other connections keep theirs")
	require.Len(t, listIDs(t, s, store.Filter{OrganizationID: "org-b", Kind: itsm.KindTicket}), 1)
}

// testConnectionPages pages an organization's connections in id order with
// a bounded limit, never shows another organization's, and counts only the
// connections that are not DELETED.
func testConnectionPages(t *testing.T, s store.Store) {
	for i := range 7 {
		for _, org := range []string{"org-a", "org-b"} {
			c := &store.Connection{ID: fmt.Sprintf("%s-conn-%02d", org, i), OrganizationID: org, Vendor: "JIRA",
				State: store.StateActive, CreatedAt: base, UpdatedAt: base}
			if i == 3 {
				c.State = store.StateDeleted
			}
			require.NoError(t, s.CreateConnection(ctx(t), c))
		}
	}
	var ids []string
	cursor, pages := "", 0
	for {
		page, err := s.PageConnections(ctx(t), store.ConnectionPageQuery{OrganizationID: "org-a", Cursor: cursor, Limit: 3})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Connections), 3)
		for _, c := range page.Connections {
			require.Equal(t, "org-a", c.OrganizationID)
			ids = append(ids, c.ID)
		}
		pages++
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Equal(t, 3, pages)
	require.Len(t, ids, 7)
	require.True(t, slices.IsSorted(ids), "connections are paged in id order: %v", ids)

	// Another organization's cursor only positions: it reveals nothing of
	// the organization that issued it.
	first, err := s.PageConnections(ctx(t), store.ConnectionPageQuery{OrganizationID: "org-a", Limit: 2})
	require.NoError(t, err)
	cross, err := s.PageConnections(ctx(t), store.ConnectionPageQuery{OrganizationID: "org-b", Cursor: first.NextCursor, Limit: 100})
	require.NoError(t, err)
	for _, c := range cross.Connections {
		require.Equal(t, "org-b", c.OrganizationID)
	}

	all, err := s.PageConnections(ctx(t), store.ConnectionPageQuery{OrganizationID: "org-a"})
	require.NoError(t, err)
	require.Len(t, all.Connections, 7)
	require.Empty(t, all.NextCursor)

	_, err = s.PageConnections(ctx(t), store.ConnectionPageQuery{OrganizationID: "org-a", Cursor: "!!not-a-cursor"})
	require.ErrorIs(t, err, store.ErrInvalid)
	doc := ticket("org-a", "conn-a", "1", 1)
	_, err = s.PageConnections(ctx(t), store.ConnectionPageQuery{OrganizationID: "org-a", Cursor: store.EncodeCursor(doc)})
	require.ErrorIs(t, err, store.ErrInvalid, "a document cursor is not a connection cursor")

	n, err := s.CountConnections(ctx(t), "org-a")
	require.NoError(t, err)
	require.Equal(t, 6, n, "DELETED connections do not count")
	n, err = s.CountConnections(ctx(t), "org-none")
	require.NoError(t, err)
	require.Zero(t, n)
}
