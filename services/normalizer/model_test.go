package normalizer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

func ticketOf(t *testing.T, d *store.Document) itsm.Ticket {
	t.Helper()
	var tk itsm.Ticket
	require.NoError(t, json.Unmarshal(d.Body, &tk))
	return tk
}

func issueVersion(t *testing.T, issue []byte, status, category, updated string) []byte {
	return edit(t, issue, func(m map[string]any) {
		f := obj(m, "fields")
		f["updated"] = updated
		f["status"] = map[string]any{"name": status, "statusCategory": map[string]any{"key": category}}
	})
}

// A full sync re-observes users, projects and groups at a later time: a newer
// version that changes nothing must publish nothing, yet the version guard
// must still know it, so that an older record arriving late stays ignored.
func TestNewerVersionThatChangesNothingPublishesNothing(t *testing.T) {
	e := newEnv(t)
	e.start(Config{}, nil, nil)
	t1 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	user := fixture(t, "rest/user_cloud_v3_01.json")
	group := restPage(t, "rest/groups_bulk_airbyte_01.json", "values")[0]
	project := restPage(t, "rest/project_search_v3_airbyte_01.json", "values")[0]
	for _, at := range []time.Time{t1, t1.Add(time.Hour), t1.Add(2 * time.Hour)} {
		e.publishSync(SyncRecord{Type: "user", ObservedAt: at, Record: user})
		e.publishSync(SyncRecord{Type: "group", ObservedAt: at, Record: group})
		e.publishSync(SyncRecord{Type: "project", ObservedAt: at, Record: project})
		e.waitIdle(10 * time.Second)
	}
	evs := e.events()
	require.Len(t, evs, 3, "only the first sight of each object is an event")
	for _, ev := range evs {
		require.Equal(t, itsm.ChangeCreated, ev.Change)
	}
	var u itsm.User
	require.NoError(t, json.Unmarshal(evs[0].Data(), &u))
	if evs[0].Object != itsm.KindUser {
		for _, ev := range evs {
			if ev.Object == itsm.KindUser {
				require.NoError(t, json.Unmarshal(ev.Data(), &u))
			}
		}
	}
	stored := e.get(itsm.KindUser, u.ID)
	require.Equal(t, t1.Add(2*time.Hour).UnixMilli(), stored.Version, "the guard knows the newest version")
	var su itsm.User
	require.NoError(t, json.Unmarshal(stored.Body, &su))
	require.True(t, su.UpdatedAt.Equal(u.UpdatedAt), "updated_at does not move when nothing changed")
	require.Equal(t, itsm.ObjectActive, su.Status)
	require.NotNil(t, su.StatusUpdatedAt)
	require.True(t, su.StatusUpdatedAt.Equal(t1), "status_updated_at is when the status was first seen")

	// A late, older record with other content stays ignored.
	e.publishSync(SyncRecord{Type: "user", ObservedAt: t1.Add(90 * time.Minute),
		Record: edit(t, user, func(m map[string]any) { m["displayName"] = "Stale Name" })})
	e.waitIdle(10 * time.Second)
	require.Len(t, e.events(), 3)
	require.Equal(t, su.Name, ticketName(t, e.get(itsm.KindUser, u.ID).Body))

	// A deactivation is a change, and moves status_updated_at.
	deactivated := t1.Add(3 * time.Hour)
	e.publishSync(SyncRecord{Type: "user", ObservedAt: deactivated,
		Record: edit(t, user, func(m map[string]any) { m["active"] = false })})
	e.waitIdle(10 * time.Second)
	evs = e.events()
	require.Len(t, evs, 4)
	require.Equal(t, []string{"active", "status", "status_updated_at"}, evs[3].ChangedFields)
	require.NoError(t, json.Unmarshal(e.get(itsm.KindUser, u.ID).Body, &su))
	require.Equal(t, itsm.ObjectInactive, su.Status)
	require.True(t, su.StatusUpdatedAt.Equal(deactivated))
}

func ticketName(t *testing.T, body []byte) string {
	var v struct {
		Name string `json:"name"`
	}
	require.NoError(t, json.Unmarshal(body, &v))
	return v.Name
}

// status_updated_at is when the ITSM status changed, not Jira's status
// category change date: In Progress -> In Review moves it (same category),
// two vendor statuses with one ITSM status do not, and a webhook's changelog
// gives the time of the change.
func TestStatusUpdatedAtFollowsTheITSMStatus(t *testing.T) {
	e := newEnv(t)
	e.start(Config{}, nil, nil)
	issue := restPage(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues")[0]
	id := ticketID("10627")
	step := func(status, category, updated string) itsm.Ticket {
		t.Helper()
		e.publishSync(SyncRecord{Type: "issue", ObservedAt: time.Now(), Record: issueVersion(t, issue, status, category, updated)})
		e.waitIdle(10 * time.Second)
		return ticketOf(t, e.get(itsm.KindTicket, id))
	}
	tk := step("In Progress", "indeterminate", "2024-01-01T10:00:00.000+0000")
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	require.Equal(t, "2022-06-09T23:29:32.382Z", tk.StatusUpdatedAt.UTC().Format(time.RFC3339Nano),
		"a new ticket starts from Jira's own status change date")

	tk = step("In Review", "indeterminate", "2024-01-02T10:00:00.000+0000")
	require.Equal(t, itsm.StatusInReview, tk.Status)
	require.Equal(t, "2024-01-02T10:00:00Z", tk.StatusUpdatedAt.UTC().Format(time.RFC3339Nano),
		"the same Jira category, another ITSM status: it moves")

	tk = step("Code Review", "indeterminate", "2024-01-03T10:00:00.000+0000")
	require.Equal(t, itsm.StatusInReview, tk.Status)
	require.Equal(t, "2024-01-02T10:00:00Z", tk.StatusUpdatedAt.UTC().Format(time.RFC3339Nano),
		"another Jira status, the same ITSM status: it stays")

	// A webhook whose changelog moved the status: the delivery's time.
	body := edit(t, fixture(t, "webhooks/issue_updated_status_change_01.json"), func(m map[string]any) {
		m["timestamp"] = time.Date(2024, 1, 4, 9, 30, 0, 0, time.UTC).UnixMilli()
		is := obj(m, "issue")
		is["id"] = "10627"
		f := obj(is, "fields")
		f["updated"] = "2024-01-04T09:30:00.500+0000"
		f["status"] = map[string]any{"name": "Cancelled", "statusCategory": map[string]any{"key": "done"}}
	})
	e.publishWebhook(body)
	e.waitIdle(10 * time.Second)
	tk = ticketOf(t, e.get(itsm.KindTicket, id))
	require.Equal(t, itsm.StatusCancelled, tk.Status)
	require.Equal(t, "2024-01-04T09:30:00Z", tk.StatusUpdatedAt.UTC().Format(time.RFC3339Nano))
}

// A changed custom mapping re-maps the connection's stored tickets: one
// event per ticket whose values changed, none for the others.
func TestMappingChangeRemapsStoredTickets(t *testing.T) {
	e := newEnv(t)
	e.start(Config{RemapEvery: 20 * time.Millisecond, ConnectionTTL: time.Millisecond}, nil, nil)
	issue := syncTwoTickets(t, e)
	id := ticketID("10627")
	before := e.get(itsm.KindTicket, id)
	tk := ticketOf(t, before)
	require.Equal(t, itsm.StatusTodo, tk.Status)
	require.Equal(t, "category", tk.VendorAttributes["status_mapped_by"])
	require.Len(t, e.events(), 2)

	mapGate7InProgress(t, e)
	evs := e.events()
	require.Len(t, evs, 3, "one event, for the ticket whose status changed")
	ev := evs[2]
	require.Equal(t, itsm.ChangeUpdated, ev.Change)
	require.Equal(t, []string{"status", "status_updated_at", "vendor_attributes"}, ev.ChangedFields)
	after := e.get(itsm.KindTicket, id)
	require.Equal(t, before.Version+1, after.Version, "a version of its own, so the event has its own id")
	tk = ticketOf(t, after)
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	require.Equal(t, "custom", tk.VendorAttributes["status_mapped_by"])
	checkEvent(t, e, ev, itsm.KindTicket, itsm.ChangeUpdated)

	// The same Jira version from the next sync is not newer: no event.
	e.publishSync(SyncRecord{Type: "issue", ObservedAt: time.Now(), Record: issueVersion(t, issue, "Gate 7", "new", "2024-01-01T10:00:00.000+0000")})
	e.waitIdle(10 * time.Second)
	require.Len(t, e.events(), 3)
}

// Objects stored by an earlier version of the platform (model version 1:
// created_by_user_id on comments and attachments, no lifecycle status,
// BACKLOG) are upgraded in place when it starts.
// mapGate7InProgress maps the status "gate 7" to IN_PROGRESS on the test
// connection, as a PATCH of its mappings does, and waits for the
// normalizer to re-map its stored tickets.
func mapGate7InProgress(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	c, err := e.st.LookupConnection(ctx, testConn)
	require.NoError(t, err)
	c.Options.StatusMapping = store.NameMap[itsm.Status]{{Name: "gate 7", Value: itsm.StatusInProgress}}
	c.Detail.MappingRevision++
	c.Detail.ModelVersion = itsm.ModelVersion
	c.UpdatedAt = time.Now().Add(-time.Minute)
	require.NoError(t, e.st.UpdateConnection(ctx, c))
	require.Eventually(t, func() bool {
		c, err := e.st.LookupConnection(ctx, testConn)
		return err == nil && c.Detail.RemappedRevision == c.Detail.MappingRevision
	}, 10*time.Second, 20*time.Millisecond)
}

func TestObjectsOfAnOlderModelAreUpgraded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	put := func(kind itsm.Kind, id string, version int64, body string) {
		t.Helper()
		d := &store.Document{Kind: kind, ID: id, OrganizationID: testOrg, ConnectionID: testConn,
			Version: version, UpdatedAt: now.Add(-time.Hour), Body: json.RawMessage(body)}
		if kind == itsm.KindTicket {
			d.Status = "BACKLOG"
		}
		_, err := e.st.Put(ctx, d)
		require.NoError(t, err)
	}
	put(itsm.KindTicket, "t1", 1000, `{"id":"t1","name":"old","status":"BACKLOG","priority":"LOW","active":true,
		"status_updated_at":"2020-01-01T00:00:00Z","vendor_attributes":{"status":"Backlog","status_category":"new","priority":"Low"},
		"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z"}`)
	put(itsm.KindComment, "c1", 2000, `{"id":"c1","ticket_id":"t1","body":"hi","active":true,"created_by_user_id":"u1",
		"updated_by_user_id":null,"url":"","vendor_attributes":null,"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z"}`)
	put(itsm.KindAttachment, "a1", 3000, `{"id":"a1","ticket_id":"t1","name":"f.txt","mime_type":"text/plain","size":3,"active":false,
		"url":"","created_by_user_id":"u2","vendor_attributes":null,"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z"}`)
	put(itsm.KindProject, "p1", 4000, `{"id":"p1","name":"P","description":"","type":"software","active":false,"identifier":"P",
		"url":"","lead_user_id":null,"vendor_attributes":null,"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z"}`)
	put(itsm.KindGroup, "g1", 5000, `{"id":"g1","name":"G","description":"","active":true,"member_user_ids":[],
		"vendor_attributes":null,"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z"}`)
	c, err := e.st.LookupConnection(ctx, testConn)
	require.NoError(t, err)
	require.Zero(t, c.Detail.ModelVersion, "a connection of the old platform")
	c.UpdatedAt = now.Add(-time.Hour)
	require.NoError(t, e.st.UpdateConnection(ctx, c))

	e.start(Config{RemapEvery: 20 * time.Millisecond, ConnectionTTL: time.Millisecond}, nil, nil)
	require.Eventually(t, func() bool {
		c, err := e.st.LookupConnection(ctx, testConn)
		return err == nil && c.Detail.ModelVersion == itsm.ModelVersion
	}, 10*time.Second, 20*time.Millisecond)

	tk := ticketOf(t, e.get(itsm.KindTicket, "t1"))
	require.Equal(t, itsm.StatusTodo, tk.Status, "Backlog is TODO")
	require.Equal(t, "TODO", e.get(itsm.KindTicket, "t1").Status, "the filter projection too")
	require.Equal(t, "keyword", tk.VendorAttributes["status_mapped_by"])

	var cm map[string]any
	require.NoError(t, json.Unmarshal(e.get(itsm.KindComment, "c1").Body, &cm))
	require.Equal(t, "u1", cm["author_id"])
	require.NotContains(t, cm, "created_by_user_id")
	require.Equal(t, "ACTIVE", cm["status"])
	require.Equal(t, "1970-01-01T00:00:02Z", cm["status_updated_at"])

	var at map[string]any
	require.NoError(t, json.Unmarshal(e.get(itsm.KindAttachment, "a1").Body, &at))
	require.Equal(t, "u2", at["uploaded_by_user_id"])
	require.Equal(t, "DELETED", at["status"], "an inactive attachment was a deleted one")

	var pr map[string]any
	require.NoError(t, json.Unmarshal(e.get(itsm.KindProject, "p1").Body, &pr))
	require.Equal(t, "INACTIVE", pr["status"])
	require.Contains(t, pr, "category")

	var gr map[string]any
	require.NoError(t, json.Unmarshal(e.get(itsm.KindGroup, "g1").Body, &gr))
	require.Equal(t, "ACTIVE", gr["status"])

	evs := e.events()
	require.Len(t, evs, 1, "only the ticket's values changed; the rest changed shape alone")
	require.Equal(t, itsm.KindTicket, evs[0].Object)
	require.Contains(t, evs[0].ChangedFields, "status")
}

// A stored body that is not an object of its kind is skipped (and logged),
// not retried forever, and does not hold back the connection's others.
func TestUpgradeSkipsAnUnreadableBody(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for id, body := range map[string]string{"bad": `[1,2]`, "good": `{"id":"good","name":"G","active":true,"member_user_ids":[],
		"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-01T00:00:00Z"}`} {
		_, err := e.st.Put(ctx, &store.Document{Kind: itsm.KindGroup, ID: id, OrganizationID: testOrg, ConnectionID: testConn,
			Version: 1000, UpdatedAt: now.Add(-time.Hour), Body: json.RawMessage(body)})
		require.NoError(t, err)
	}
	c, err := e.st.LookupConnection(ctx, testConn)
	require.NoError(t, err)
	c.UpdatedAt = now.Add(-time.Hour)
	require.NoError(t, e.st.UpdateConnection(ctx, c))
	e.start(Config{RemapEvery: 20 * time.Millisecond, ConnectionTTL: time.Millisecond}, nil, nil)
	require.Eventually(t, func() bool {
		c, err := e.st.LookupConnection(ctx, testConn)
		return err == nil && c.Detail.ModelVersion == itsm.ModelVersion
	}, 10*time.Second, 20*time.Millisecond)
	var g map[string]any
	require.NoError(t, json.Unmarshal(e.get(itsm.KindGroup, "good").Body, &g))
	require.Equal(t, "ACTIVE", g["status"])
	require.JSONEq(t, `[1,2]`, string(e.get(itsm.KindGroup, "bad").Body))
}

// remapReads counts what the re-mapping pass reads: the kinds it lists and
// the objects it reads one by one.
type remapReads struct {
	Store
	mu    sync.Mutex
	on    bool
	lists []itsm.Kind
	gets  []string
}

func (s *remapReads) count(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on, s.lists, s.gets = on, nil, nil
}

func (s *remapReads) List(ctx context.Context, f store.Filter) (store.Page, error) {
	s.mu.Lock()
	if s.on {
		s.lists = append(s.lists, f.Kind)
	}
	s.mu.Unlock()
	return s.Store.List(ctx, f)
}

func (s *remapReads) Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*store.Document, error) {
	s.mu.Lock()
	if s.on {
		s.gets = append(s.gets, id)
	}
	s.mu.Unlock()
	return s.Store.Get(ctx, orgID, kind, id)
}

// A mapping change of a connection whose objects are of the current model
// lists only its tickets (a mapping changes nothing else), and reads again
// only the tickets whose values change: the others are decided from the
// page that listed them, without taking the store's writer from a sync.
func TestMappingChangeReadsOnlyTheTicketsItChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.st.LookupConnection(ctx, testConn)
	require.NoError(t, err)
	c.Detail.ModelVersion = itsm.ModelVersion // nothing to upgrade
	require.NoError(t, e.st.UpdateConnection(ctx, c))
	st := &remapReads{Store: e.st}
	e.start(Config{RemapEvery: 20 * time.Millisecond, ConnectionTTL: time.Millisecond}, st, nil)
	syncTwoTickets(t, e)
	comment := &store.Document{Kind: itsm.KindComment, ID: "c1", OrganizationID: testOrg, ConnectionID: testConn,
		Version: 1, TicketID: ticketID("10627"), UpdatedAt: time.Now().Add(-time.Hour),
		Body: json.RawMessage(`{"id":"c1","ticket_id":"` + ticketID("10627") + `","body":"hi","active":true}`)}
	_, err = e.st.Put(ctx, comment)
	require.NoError(t, err)
	require.Len(t, e.events(), 2)

	st.count(true)
	mapGate7InProgress(t, e)
	st.mu.Lock()
	lists, gets := slices.Clone(st.lists), slices.Clone(st.gets)
	st.mu.Unlock()

	require.NotEmpty(t, lists)
	for _, k := range lists {
		require.Equal(t, itsm.KindTicket, k, "a mapping change lists tickets only")
	}
	require.Equal(t, []string{ticketID("10627")}, gets, "only the ticket whose status changes is read again")
	require.Len(t, e.events(), 3)
	stored, err := e.st.Get(ctx, testOrg, itsm.KindComment, "c1")
	require.NoError(t, err)
	require.Equal(t, comment.Version, stored.Version, "the comment is left alone")
}

// syncTwoTickets stores two tickets of the epic fixture through the sync
// lane, 10627 in status "Gate 7" (category new) and 20001 (AB-2).
func syncTwoTickets(t *testing.T, e *env) (issue []byte) {
	t.Helper()
	issue = restPage(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues")[0]
	e.publishSync(SyncRecord{Type: "issue", ObservedAt: time.Now(), Record: issueVersion(t, issue, "Gate 7", "new", "2024-01-01T10:00:00.000+0000")})
	other := edit(t, issue, func(m map[string]any) { m["id"], m["key"] = "20001", "AB-2" })
	e.publishSync(SyncRecord{Type: "issue", ObservedAt: time.Now(), Record: other})
	e.waitIdle(10 * time.Second)
	return issue
}
