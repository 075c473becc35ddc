package normalizer

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// issueRecord is the issue object of issueBody: the shape a REST search
// returns, as the backfill worker sends it.
func issueRecord(t testing.TB, id string, updated time.Time, summary string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(issueBody(t, id, updated, summary), &m))
	return m["issue"]
}

type tombstoneBody struct {
	Active           bool           `json:"active"`
	Status           string         `json:"status"`
	VendorAttributes map[string]any `json:"vendor_attributes"`
}

func (e *env) tombstone(kind itsm.Kind, id string, version int64, reason string) tombstoneBody {
	e.t.Helper()
	doc := e.get(kind, id)
	require.True(e.t, doc.Deleted, "%s %s is not deleted", kind, id)
	require.Equal(e.t, version, doc.Version, "%s %s", kind, id)
	var b tombstoneBody
	require.NoError(e.t, json.Unmarshal(doc.Body, &b))
	require.False(e.t, b.Active)
	if reason == "" {
		require.NotContains(e.t, b.VendorAttributes, "deletion_reason", "the vendor's own deletion")
	} else {
		require.Equal(e.t, reason, b.VendorAttributes["deletion_reason"], "%s %s", kind, id)
	}
	return b
}

func (e *env) alive(kind itsm.Kind, id string) *store.Document {
	e.t.Helper()
	doc := e.get(kind, id)
	require.False(e.t, doc.Deleted, "%s %s was deleted", kind, id)
	return doc
}

func TestFullSyncReconcile(t *testing.T) {
	for _, after := range []bool{true, false} {
		t.Run(fmt.Sprintf("first tombstone event lost after landing=%v", after), func(t *testing.T) {
			fullSyncReconcile(t, after)
		})
	}
}

func fullSyncReconcile(t *testing.T, lostAfterLanding bool) {
	e := newEnv(t)
	observed := time.Now().UTC().Truncate(time.Millisecond)
	version := observed.UnixMilli()
	// The first tombstone event fails, so the marker is redelivered and must
	// neither lose nor duplicate an event.
	fj := &flakyJS{JetStream: e.js, fail: failFirst(func(m *nats.Msg) bool {
		return m.Subject == itsm.KindTicket.Subject() && m.Header.Get(itsm.HeaderVersion) == strconv.FormatInt(version, 10)
	}, lostAfterLanding)}
	e.start(Config{Workers: 4, CacheEntries: 128}, nil, fj)
	ctx := context.Background()

	// Another connection of the organization, out of the marker's scope.
	other := *e.conn
	other.ID = "conn-2"
	require.NoError(t, e.st.CreateConnection(ctx, &other))

	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	t1 := observed.Add(-time.Hour)
	for _, id := range []string{"1", "2", "3", "4"} {
		e.publishWebhook(issueBody(t, id, t0, "issue "+id))
	}
	otherMsg := nats.NewMsg(broker.RawSubject("jira", other.ID, broker.SourceWebhook))
	otherMsg.Data = issueBody(t, "5", t0, "other connection")
	_, err := e.js.PublishMsg(ctx, otherMsg, jetstream.WithMsgID("other-5"))
	require.NoError(t, err)
	comment := restPage(t, "rest/issue_comments_v3_adf_01.json", "comments")[0]
	e.publishSync(SyncRecord{Type: "comment", IssueID: "3", ObservedAt: t1, Record: comment})
	e.publishSync(SyncRecord{Type: "attachment", IssueID: "3", ObservedAt: t1, Record: json.RawMessage(
		`{"id":"9001","filename":"a.txt","created":"2024-05-01T11:00:00.000+0000","size":1,"mimeType":"text/plain"}`)})
	user := fixture(t, "rest/user_cloud_v3_01.json")
	e.publishSync(SyncRecord{Type: "user", ObservedAt: t1, Record: user})
	e.publishSync(SyncRecord{Type: "user", ObservedAt: t1, Record: json.RawMessage(`{"accountId":"u2","displayName":"Gone"}`)})
	e.publishSync(SyncRecord{Type: "project", ObservedAt: t1, Record: restPage(t, "rest/project_search_v3_airbyte_01.json", "values")[0]})
	e.waitIdle(10 * time.Second)
	before := len(e.events())

	// A full sync: it sees ticket 1 (newer), ticket 2 (unchanged) and the
	// first user; ticket 4 changes by webhook while it runs; ticket 3, its
	// comment and attachment, and user u2 are gone from Jira.
	started := time.Now().UTC()
	const syncID = "sync-42"
	e.publishSync(SyncRecord{Type: "issue", SyncID: syncID, ObservedAt: observed, Record: issueRecord(t, "1", t0.Add(time.Minute), "issue 1 edited")})
	e.publishSync(SyncRecord{Type: "issue", SyncID: syncID, ObservedAt: observed, Record: issueRecord(t, "2", t0, "issue 2")})
	e.publishSync(SyncRecord{Type: "user", SyncID: syncID, ObservedAt: observed, Record: user})
	e.publishWebhook(issueBody(t, "4", t0.Add(2*time.Minute), "issue 4 edited during the sync"))
	marker := SyncRecord{Type: SyncTypeReconcile, SyncID: syncID, StartedAt: started, ObservedAt: observed,
		Kinds: []itsm.Kind{itsm.KindTicket, itsm.KindUser}}
	e.publishSync(marker)
	e.waitIdle(15 * time.Second)

	gone := e.tombstone(itsm.KindTicket, ticketID("3"), version, ReasonMissingFromFullSync)
	require.Equal(t, string(itsm.StatusDeleted), gone.Status)
	require.Equal(t, string(itsm.StatusDeleted), e.get(itsm.KindTicket, ticketID("3")).Status, "the filterable status too")
	commentID := itsm.ObjectID(testConn, itsm.KindComment, "10755")
	attachmentID := itsm.ObjectID(testConn, itsm.KindAttachment, "9001")
	e.tombstone(itsm.KindComment, commentID, version, ReasonTicketDeleted)
	e.tombstone(itsm.KindAttachment, attachmentID, version, ReasonTicketDeleted)
	u2 := e.tombstone(itsm.KindUser, itsm.ObjectID(testConn, itsm.KindUser, "u2"), version, ReasonMissingFromFullSync)
	require.Equal(t, string(itsm.ObjectDeleted), u2.Status)

	require.Equal(t, syncID, e.alive(itsm.KindTicket, ticketID("1")).SyncID)
	require.Equal(t, syncID, e.alive(itsm.KindTicket, ticketID("2")).SyncID, "seen without a newer version")
	require.Equal(t, t0.Add(2*time.Minute).UnixMilli(), e.alive(itsm.KindTicket, ticketID("4")).Version)
	e.alive(itsm.KindUser, itsm.ObjectID(testConn, itsm.KindUser, "123456:cd68d496-c059-4e88-9e29-12ef5c911bcf"))
	e.alive(itsm.KindProject, itsm.ObjectID(testConn, itsm.KindProject, "1"))
	e.alive(itsm.KindTicket, itsm.ObjectID(other.ID, itsm.KindTicket, "5"))

	deleted := map[string]event{}
	for _, ev := range e.events()[before:] {
		if ev.Change != itsm.ChangeDeleted {
			continue
		}
		require.NotContains(t, deleted, ev.objectID(), "a second deleted event")
		deleted[ev.objectID()] = ev
		require.Equal(t, strconv.FormatInt(version, 10), ev.Version)
		checkEvent(t, e, ev, ev.Object, itsm.ChangeDeleted)
	}
	require.Len(t, deleted, 4, "ticket 3, its comment and attachment, and user u2")
	if lostAfterLanding {
		require.Equal(t, []string{"active", "status", "status_updated_at", "vendor_attributes"}, deleted[ticketID("3")].ChangedFields)
	} else {
		// Published by the redelivery, which no longer knows the body the
		// tombstone replaced.
		require.Empty(t, deleted[ticketID("3")].ChangedFields)
	}
	require.Equal(t, []string{"active", "status", "status_updated_at", "vendor_attributes"}, deleted[commentID].ChangedFields)
	require.GreaterOrEqual(t, e.metric("retried"), 1.0, "the marker was redelivered")

	// The same marker again changes nothing and publishes nothing.
	n := len(e.events())
	e.publishSync(marker)
	e.waitIdle(10 * time.Second)
	require.Len(t, e.events(), n)
	require.Empty(t, e.dlqEntries())
}

func TestReconcileWaitsForTheSyncsRecords(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cfg            Config
		record, marker string // their lanes' sources; sync when empty
	}{
		// The failed record is retried while the marker waits in place.
		{name: "waits in place", cfg: Config{Workers: 2, RetryDelay: 300 * time.Millisecond}},
		// The retry comes after the wait (half the ack wait) runs out: the
		// marker is sent back and waits again.
		{name: "sent back", cfg: Config{Workers: 2, AckWait: time.Second, RetryDelay: 800 * time.Millisecond}},
		// A large sync's marker in the bulk lane waits for its first
		// records, in the sync lane.
		{name: "across lanes", cfg: Config{Workers: 2, RetryDelay: 300 * time.Millisecond}, marker: broker.SourceBulk},
		// A resumed sync's marker in the sync lane waits for what the run
		// before it left in the bulk lane.
		{name: "from the bulk lane", cfg: Config{Workers: 2, RetryDelay: 300 * time.Millisecond}, record: broker.SourceBulk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			flaky := &flakyStore{Store: e.st}
			var failed atomic.Bool
			flaky.markSeen = func(kind itsm.Kind, id string) error {
				if id == ticketID("2") && failed.CompareAndSwap(false, true) {
					return errInjected
				}
				return nil
			}
			e.start(tc.cfg, flaky, nil)
			t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
			e.publishWebhook(issueBody(t, "2", t0, "issue 2"))
			e.waitIdle(10 * time.Second)

			started := time.Now().UTC()
			lane := func(source string) string { return cmp.Or(source, broker.SourceSync) }
			e.publishSyncAs(lane(tc.record), SyncRecord{Type: "issue", SyncID: "s", ObservedAt: started, Record: issueRecord(t, "2", t0, "issue 2")})
			e.publishSyncAs(lane(tc.marker), SyncRecord{Type: SyncTypeReconcile, SyncID: "s", StartedAt: started, ObservedAt: started,
				Kinds: []itsm.Kind{itsm.KindTicket}})
			e.waitIdle(15 * time.Second)

			require.True(t, failed.Load())
			require.Equal(t, "s", e.alive(itsm.KindTicket, ticketID("2")).SyncID,
				"the marker must not run before the sync's own records are applied")
			if tc.cfg.AckWait > 0 {
				require.GreaterOrEqual(t, e.metric("deferred"), 1.0)
			} else {
				require.Zero(t, e.metric("deferred"))
			}
			require.Empty(t, e.dlqEntries())
		})
	}
}

func TestMalformedReconcileMarkerIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 1}, nil, nil)
	now := time.Now().UTC()
	e.publishSync(SyncRecord{Type: SyncTypeReconcile, StartedAt: now, ObservedAt: now, Kinds: []itsm.Kind{itsm.KindTicket}})
	e.publishSync(SyncRecord{Type: SyncTypeReconcile, SyncID: "s", StartedAt: now, ObservedAt: now, Kinds: []itsm.Kind{"worklog"}})
	e.publishRaw(broker.SourceSync, []byte(`{"type":"issue","record":`))
	e.waitIdle(10 * time.Second)
	entries := e.dlqEntries()
	require.Len(t, entries, 3)
	require.Contains(t, entries[0].Error, "needs sync_id")
	require.Contains(t, entries[1].Error, `unknown object kind "worklog"`)
	require.Contains(t, entries[2].Error, "sync envelope")
	for _, d := range entries {
		require.Equal(t, 1, d.Deliveries)
	}
}

func TestIssueDeletionCascades(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 4, CacheEntries: 128}, nil, nil)
	deletion := fixture(t, "webhooks/issue_deleted_cloud_01.json")
	// The same issue before it was deleted, with a comment and an attachment.
	e.publishWebhook(edit(t, deletion, func(m map[string]any) { m["webhookEvent"] = "jira:issue_updated" }))
	comment := edit(t, restPage(t, "rest/issue_comments_v3_adf_01.json", "comments")[0], func(m map[string]any) {
		m["created"], m["updated"] = "2019-07-01T10:00:00.000-0700", "2019-07-01T10:00:00.000-0700"
	})
	e.publishSync(SyncRecord{Type: "comment", IssueID: "10303", ObservedAt: time.Now(), Record: comment})
	e.publishSync(SyncRecord{Type: "attachment", IssueID: "10303", ObservedAt: time.Now(), Record: json.RawMessage(
		`{"id":"9100","filename":"b.txt","created":"2019-07-01T10:00:00.000-0700","size":1,"mimeType":"text/plain"}`)})
	e.waitIdle(10 * time.Second)
	require.Len(t, e.events(), 3)

	e.publishWebhook(deletion)
	e.waitIdle(10 * time.Second)
	// The delivery timestamp of the fixture: later than its fields.updated.
	version := int64(1562177136176)
	ticket := ticketID("10303")
	e.tombstone(itsm.KindTicket, ticket, version, "")
	commentID := itsm.ObjectID(testConn, itsm.KindComment, "10755")
	attachmentID := itsm.ObjectID(testConn, itsm.KindAttachment, "9100")
	e.tombstone(itsm.KindComment, commentID, version, ReasonTicketDeleted)
	e.tombstone(itsm.KindAttachment, attachmentID, version, ReasonTicketDeleted)
	evs := e.events()
	require.Len(t, evs, 6)
	for _, ev := range evs[3:] {
		checkEvent(t, e, ev, ev.Object, itsm.ChangeDeleted)
	}

	// A comment delivered late, after its issue's deletion, stays deleted.
	late := edit(t, fixture(t, "webhooks/comment_created_cloud_02.json"), func(m map[string]any) {
		obj(m, "issue")["id"] = "10303"
		c := obj(m, "comment")
		c["id"], c["created"], c["updated"] = "20001", "2019-07-02T10:00:00.000-0700", "2019-07-02T10:00:00.000-0700"
	})
	e.publishWebhook(late)
	// And a repeat of the deletion changes nothing.
	e.publishWebhook(deletion)
	e.waitIdle(10 * time.Second)
	lateID := itsm.ObjectID(testConn, itsm.KindComment, "20001")
	e.tombstone(itsm.KindComment, lateID, version, ReasonTicketDeleted)
	evs = e.events()
	require.Len(t, evs, 7)
	checkEvent(t, e, evs[6], itsm.KindComment, itsm.ChangeDeleted)
	require.Empty(t, e.dlqEntries())
}

// Comments racing their ticket's deletion all end deleted, with the version
// cache on: a comment's parent check trusts a cached live ticket, which is
// only safe because the ticket's tombstone is cached before its cascade
// lists the children (deletedParentErr).
func TestCommentsRacingTheirTicketsDeletionEndDeleted(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 16, CacheEntries: 1024}, nil, nil)
	deletion := fixture(t, "webhooks/issue_deleted_cloud_01.json")
	e.publishWebhook(edit(t, deletion, func(m map[string]any) { m["webhookEvent"] = "jira:issue_updated" }))
	e.waitIdle(10 * time.Second)
	base := restPage(t, "rest/issue_comments_v3_adf_01.json", "comments")[0]
	const n = 300
	for i := range n {
		if i == n/3 {
			e.publishWebhook(deletion)
		}
		c := edit(t, base, func(m map[string]any) {
			m["id"] = strconv.Itoa(30000 + i)
			m["created"], m["updated"] = "2019-07-01T10:00:00.000-0700", "2019-07-01T10:00:00.000-0700"
		})
		e.publishSync(SyncRecord{Type: "comment", IssueID: "10303", ObservedAt: time.Now(), Record: c})
	}
	e.waitIdle(20 * time.Second)
	version := int64(1562177136176) // the deletion's delivery time
	e.tombstone(itsm.KindTicket, ticketID("10303"), version, "")
	for i := range n {
		e.tombstone(itsm.KindComment, itsm.ObjectID(testConn, itsm.KindComment, strconv.Itoa(30000+i)), version, ReasonTicketDeleted)
	}
	require.Empty(t, e.dlqEntries())
}
