package normalizer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/dlq"
	"github.com/itsmhub/itsm/pkg/fixtures"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

const jiraTime = "2006-01-02T15:04:05.000-0700"

// issueBody is the status-change fixture playing another issue or version.
func issueBody(t testing.TB, id string, updated time.Time, summary string) []byte {
	t.Helper()
	return edit(t, fixture(t, "webhooks/issue_updated_status_change_01.json"), func(m map[string]any) {
		is := obj(m, "issue")
		is["id"], is["key"] = id, "TEST-"+id
		f := obj(is, "fields")
		f["updated"], f["summary"] = updated.Format(jiraTime), summary
	})
}

func (e *env) dlqEntries() []dlq.Entry {
	e.t.Helper()
	entries, err := dlq.List(context.Background(), e.js, dlq.Filter{}, 0)
	require.NoError(e.t, err)
	return entries
}

func TestEveryFixtureMapsOrDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.start(Config{}, nil, nil)
	// The mapper the normalizer runs, on the connection it reads.
	m, conn := jira.Mapper{}, e.conn

	webhooks, err := filepath.Glob(filepath.Join(fixtures.JiraDir(), "webhooks", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, webhooks)
	type sent struct {
		name string
		seq  uint64
		recs []itsm.Record
		err  error
	}
	var all []sent
	for _, path := range webhooks {
		name := filepath.Join("webhooks", filepath.Base(path))
		body := fixture(t, name)
		recs, err := m.MapWebhook(conn, body)
		all = append(all, sent{name, e.publishWebhook(body), recs, err})
	}
	// REST records reach the normalizer as the backfill worker sends them.
	observed := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	restRecords := map[string][]json.RawMessage{
		"issue":   restPage(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues"),
		"comment": restPage(t, "rest/issue_comments_v3_adf_01.json", "comments"),
		"project": restPage(t, "rest/project_search_v3_airbyte_01.json", "values"),
		"group":   restPage(t, "rest/groups_bulk_airbyte_01.json", "values"),
		"user":    {fixture(t, "rest/user_cloud_v3_01.json")},
	}
	for typ, recs := range restRecords {
		for i, rec := range recs {
			sr := SyncRecord{Type: typ, ObservedAt: observed, Record: rec}
			mapped, err := m.MapSync(conn, sr)
			seq := e.publishSync(sr)
			all = append(all, sent{fmt.Sprintf("rest %s #%d", typ, i), seq, mapped, err})
		}
	}
	e.waitIdle(20 * time.Second)

	dead := map[string]dlq.Entry{}
	for _, d := range e.dlqEntries() {
		dead[d.Headers.Get(dlq.HeaderOriginalSeq)] = d
	}
	mappedCount := 0
	for _, s := range all {
		d, isDead := dead[strconv.FormatUint(s.seq, 10)]
		if s.err != nil {
			require.True(t, isDead, "%s failed to map (%v) but is not in the DLQ", s.name, s.err)
			require.Equal(t, s.err.Error(), d.Error, s.name)
			continue
		}
		require.False(t, isDead, "%s maps but was dead-lettered: %s", s.name, d.Error)
		for _, r := range s.recs {
			doc := e.get(r.Kind, r.ID)
			require.GreaterOrEqual(t, doc.Version, r.Version.UnixMilli(), s.name)
			require.Equal(t, r.Deleted, doc.Deleted, s.name)
			mappedCount++
		}
	}
	// Only the anomalous payload is not an event.
	require.Len(t, dead, 1)
	for _, d := range dead {
		require.Equal(t, broker.RawSubject("jira", testConn, broker.SourceWebhook), d.OriginalSubject)
		require.Contains(t, d.Error, "not a webhook event")
		require.Equal(t, fixture(t, "webhooks/anomalous_no_webhookEvent_01.json"), d.Data)
	}
	require.GreaterOrEqual(t, mappedCount, 5+2+2+4+1+1)

	// The deletion fixture left a tombstone that says so.
	del := e.get(itsm.KindTicket, ticketID("10303"))
	var tk itsm.Ticket
	require.NoError(t, json.Unmarshal(del.Body, &tk))
	require.Equal(t, itsm.StatusDeleted, tk.Status)
	require.False(t, tk.Active)
}

func TestPoisonIsDeadLetteredAtOnceAndDoesNotBlock(t *testing.T) {
	e := newEnv(t)
	// One worker: if the poison blocked anything, it would block everything.
	e.start(Config{Workers: 1, LiveWorkers: 1, MaxDeliver: 5}, nil, nil)

	anomalous := fixture(t, "webhooks/anomalous_no_webhookEvent_01.json")
	poisonSeq := e.publishWebhook(anomalous)
	poisonID := "test-" + strconv.Itoa(e.msgID)
	e.publishWebhook([]byte("<html>502 Bad Gateway</html>"))
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		e.publishWebhook(issueBody(t, strconv.Itoa(500+i), t0, "good"))
	}
	e.waitIdle(10 * time.Second)

	for i := range 3 {
		e.get(itsm.KindTicket, ticketID(strconv.Itoa(500+i)))
	}
	entries := e.dlqEntries()
	require.Len(t, entries, 2)
	d := entries[0]
	require.Equal(t, strconv.FormatUint(poisonSeq, 10), d.Headers.Get(dlq.HeaderOriginalSeq))
	require.Equal(t, 1, d.Deliveries, "a message that can never map is not retried")
	require.Contains(t, d.Error, "not a webhook event: no webhookEvent and no issue")
	require.Equal(t, broker.RawSubject("jira", testConn, broker.SourceWebhook), d.OriginalSubject)
	require.Equal(t, broker.DLQSubject(d.OriginalSubject), d.Subject)
	require.Equal(t, testOrg, d.Headers.Get(itsm.HeaderOrganization))
	require.Equal(t, testConn, d.Headers.Get(itsm.HeaderConnection))
	require.Equal(t, "JIRA", d.Headers.Get(itsm.HeaderVendor))
	require.Equal(t, poisonID, d.Headers.Get(dlq.HeaderOriginalMsgID))
	require.Equal(t, dlq.MsgID(poisonSeq), d.Headers.Get(jetstream.MsgIDHeader), "the DLQ copy has its own id")
	require.Equal(t, anomalous, d.Data, "the body is kept byte for byte")
	require.Contains(t, entries[1].Error, "malformed")
	require.Equal(t, 2.0, e.metric("dead_lettered"))
	require.Equal(t, 3.0, e.metric("written"))
}

func TestUnsupportedEventsAreAckedAndCounted(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 1}, nil, nil)
	for _, body := range []string{
		`{"timestamp":1714564800000,"webhookEvent":"worklog_created","worklog":{"id":"10100","issueId":"10000","timeSpentSeconds":3600}}`,
		`{"timestamp":1714564800000,"webhookEvent":"jira:version_released","version":{"id":"10001","name":"1.0","released":true}}`,
		`{"timestamp":1714564800000,"webhookEvent":"sprint_started","sprint":{"id":3,"state":"active"}}`,
	} {
		e.publishWebhook([]byte(body))
	}
	e.publishWebhook(issueBody(t, "600", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), "after"))
	e.waitIdle(10 * time.Second)

	require.Equal(t, 3.0, e.metric("unsupported"))
	require.Equal(t, 1.0, e.metric("written"))
	require.Zero(t, e.metric("retried"))
	require.Empty(t, e.dlqEntries())
	require.Len(t, e.events(), 1)
}

// flakyStore is the real store with failures injected before chosen calls.
type flakyStore struct {
	Store
	mu sync.Mutex
	// put (for Put and Insert) and markSeen return an error to fail the
	// call, nil to let it through to the real store.
	put      func(d *store.Document) error
	markSeen func(kind itsm.Kind, id string) error
}

var errInjected = errors.New("injected store failure")

func (f *flakyStore) Put(ctx context.Context, d *store.Document) (store.Outcome, error) {
	if err := f.failPut(d); err != nil {
		return 0, err
	}
	return f.Store.Put(ctx, d)
}

// Insert fails like Put: both write a document.
func (f *flakyStore) Insert(ctx context.Context, d *store.Document) (store.Outcome, error) {
	if err := f.failPut(d); err != nil {
		return 0, err
	}
	return f.Store.Insert(ctx, d)
}

func (f *flakyStore) failPut(d *store.Document) error {
	f.mu.Lock()
	fail := f.put
	f.mu.Unlock()
	if fail == nil {
		return nil
	}
	return fail(d)
}

func (f *flakyStore) MarkSeen(ctx context.Context, orgID string, kind itsm.Kind, id, syncID string) error {
	f.mu.Lock()
	fail := f.markSeen
	f.mu.Unlock()
	if fail != nil {
		if err := fail(kind, id); err != nil {
			return err
		}
	}
	return f.Store.MarkSeen(ctx, orgID, kind, id, syncID)
}

func (f *flakyStore) setPut(fn func(d *store.Document) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put = fn
}

func TestTransientStoreFailuresAreRetriedThenDeadLetteredAndReplayed(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyStore{Store: e.st}
	recovering, broken := ticketID("700"), ticketID("701")
	var mu sync.Mutex
	attempts := map[string]int{}
	flaky.setPut(func(d *store.Document) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[d.ID]++
		switch {
		case d.ID == recovering && attempts[d.ID] <= 2:
			return errInjected
		case d.ID == broken:
			return errInjected
		}
		return nil
	})
	e.start(Config{Workers: 2, MaxDeliver: 3}, flaky, nil)

	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	e.publishWebhook(issueBody(t, "700", t0, "recovers on the third delivery"))
	brokenBody := issueBody(t, "701", t0, "fails until fixed")
	brokenSeq := e.publishWebhook(brokenBody)
	e.waitIdle(15 * time.Second)

	mu.Lock()
	require.Equal(t, 3, attempts[recovering])
	require.Equal(t, 3, attempts[broken], "MaxDeliver attempts, then the DLQ")
	mu.Unlock()
	e.get(itsm.KindTicket, recovering)
	_, err := e.st.Get(context.Background(), testOrg, itsm.KindTicket, broken)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, 4.0, e.metric("retried"))
	evs := e.events()
	require.Len(t, evs, 1)
	require.Equal(t, recovering, evs[0].objectID())

	entries := e.dlqEntries()
	require.Len(t, entries, 1)
	d := entries[0]
	require.Equal(t, 3, d.Deliveries)
	require.Contains(t, d.Error, errInjected.Error())
	require.Equal(t, strconv.FormatUint(brokenSeq, 10), d.Headers.Get(dlq.HeaderOriginalSeq))
	require.Equal(t, brokenBody, d.Data)

	// The operator fixes the cause and replays: the message is processed
	// like new, and leaves the DLQ.
	flaky.setPut(nil)
	n, err := dlq.Replay(context.Background(), e.js, []uint64{d.Seq})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.waitIdle(10 * time.Second)
	e.get(itsm.KindTicket, broken)
	require.Empty(t, e.dlqEntries())
	evs = e.events()
	require.Len(t, evs, 2)
	require.Equal(t, broken, evs[1].objectID())
	require.Equal(t, itsm.ChangeCreated, evs[1].Change)
}

func TestEventsForEveryKind(t *testing.T) {
	e := newEnv(t)
	e.start(Config{}, nil, nil)
	t1 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t2 := t1.Add(time.Hour)

	comment := restPage(t, "rest/issue_comments_v3_adf_01.json", "comments")[0]
	project := restPage(t, "rest/project_search_v3_airbyte_01.json", "values")[0]
	group := restPage(t, "rest/groups_bulk_airbyte_01.json", "values")[0]
	user := fixture(t, "rest/user_cloud_v3_01.json")
	attachment := []byte(`{"self":"https://airbyteio.atlassian.net/rest/api/3/attachment/10001","id":"10001",
		"filename":"log.txt","author":{"accountId":"5fc9e78d2730d800760becc4"},"created":"2024-02-03T04:05:06.789+0000",
		"size":2048,"mimeType":"text/plain","content":"https://airbyteio.atlassian.net/rest/api/3/attachment/content/10001"}`)
	issue := restPage(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues")[0]

	first := []SyncRecord{
		{Type: "issue", ObservedAt: t1, Record: issue},
		{Type: "comment", IssueID: "10625", ObservedAt: t1, Record: comment},
		{Type: "project", ObservedAt: t1, Record: project},
		{Type: "user", ObservedAt: t1, Record: user},
		{Type: "group", ObservedAt: t1, Record: group},
		{Type: "attachment", IssueID: "10625", ObservedAt: t1, Record: attachment},
	}
	for _, sr := range first {
		e.publishSync(sr)
	}
	e.waitIdle(10 * time.Second)
	evs := e.events()
	require.Len(t, evs, len(first))
	kinds := map[itsm.Kind]event{}
	for _, ev := range evs {
		kinds[ev.Object] = ev
	}
	for _, kind := range itsm.Kinds {
		ev, ok := kinds[kind]
		require.True(t, ok, "no %s event", kind)
		checkEvent(t, e, ev, kind, itsm.ChangeCreated)
		require.Empty(t, ev.ChangedFields)
	}

	// The same records again (an overlapping incremental sync): no events.
	for _, sr := range first {
		e.publishSync(sr)
	}
	// Changes: every kind but attachments, which Jira never modifies.
	second := []SyncRecord{
		{Type: "issue", ObservedAt: t2, Record: edit(t, issue, func(m map[string]any) {
			f := obj(m, "fields")
			f["summary"], f["updated"] = "Renamed", "2022-12-09T10:22:18.889-0800"
		})},
		{Type: "comment", IssueID: "10625", ObservedAt: t2, Record: edit(t, comment, func(m map[string]any) {
			m["updated"] = "2022-05-18T04:06:55.076-0700"
			m["body"] = map[string]any{"type": "doc", "version": 1, "content": []any{
				map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": "Reopened"}}}}}
		})},
		{Type: "project", ObservedAt: t2, Record: edit(t, project, func(m map[string]any) { m["name"] = "renamed project" })},
		{Type: "user", ObservedAt: t2, Record: edit(t, user, func(m map[string]any) { m["displayName"] = "Renamed User" })},
		{Type: "group", ObservedAt: t2, Record: edit(t, group, func(m map[string]any) {
			m["members"] = []any{map[string]any{"accountId": "5fc9e78d2730d800760becc4"}}
		})},
	}
	for _, sr := range second {
		e.publishSync(sr)
	}
	e.waitIdle(10 * time.Second)
	evs = e.events()
	require.Len(t, evs, len(first)+len(second), "repeats publish nothing")
	want := map[itsm.Kind][]string{
		itsm.KindTicket:  {"name"},
		itsm.KindComment: {"body", "comment_updated_at", "vendor_attributes"},
		itsm.KindProject: {"name"},
		itsm.KindUser:    {"name"},
		itsm.KindGroup:   {"member_user_ids"},
	}
	for _, ev := range evs[len(first):] {
		checkEvent(t, e, ev, ev.Object, itsm.ChangeUpdated)
		require.Equal(t, want[ev.Object], ev.ChangedFields, "%s", ev.Object)
	}
}

// checkEvent asserts an event's subject, headers and payload against the
// stored document.
func checkEvent(t *testing.T, e *env, ev event, kind itsm.Kind, change itsm.Change) {
	t.Helper()
	require.Equal(t, kind, ev.Object)
	require.Equal(t, change, ev.Change, "%s", kind)
	var body struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(ev.Data(), &body))
	doc := e.get(kind, body.ID)
	require.Equal(t, strconv.FormatInt(doc.Version, 10), ev.Version)
	require.JSONEq(t, string(doc.Body), string(ev.Data()), "the event carries the object as stored")
	require.Equal(t, itsm.EventMsgID(doc.ID, doc.Version), ev.msgID)
	require.Equal(t, testOrg, ev.header.Get(itsm.HeaderOrganization))
	require.Equal(t, testConn, ev.header.Get(itsm.HeaderConnection))
	require.Equal(t, "JIRA", ev.header.Get(itsm.HeaderVendor))
	require.Equal(t, string(kind), ev.header.Get(itsm.HeaderObject))
	require.Equal(t, ev.Version, ev.header.Get(itsm.HeaderVersion))
	require.Equal(t, testOrg, ev.OrganizationID)
	require.Equal(t, testConn, ev.ConnectionID)
	require.Equal(t, kind.Subject(), ev.subject)
}

func TestPanicIsDeadLetteredAndTheWorkerGoesOn(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyStore{Store: e.st}
	flaky.setPut(func(d *store.Document) error {
		if d.ID == ticketID("900") {
			panic("store driver bug")
		}
		return nil
	})
	e.start(Config{Workers: 1}, flaky, nil)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	e.publishWebhook(issueBody(t, "900", t0, "panics"))
	e.publishWebhook(issueBody(t, "901", t0, "fine"))
	e.waitIdle(10 * time.Second)

	e.get(itsm.KindTicket, ticketID("901"))
	entries := e.dlqEntries()
	require.Len(t, entries, 1)
	require.Contains(t, entries[0].Error, "panic while processing: store driver bug")
	require.Equal(t, 1, entries[0].Deliveries, "a panic is not retried: it would only panic again")
}

func TestRecordsOfADeletedConnectionAreDropped(t *testing.T) {
	e := newEnv(t)
	c, err := e.st.LookupConnection(context.Background(), testConn)
	require.NoError(t, err)
	c.State = store.StateDeleted
	require.NoError(t, e.st.UpdateConnection(context.Background(), c))
	e.start(Config{Workers: 1}, nil, nil)
	e.publishWebhook(issueBody(t, "700", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), "late"))
	e.waitIdle(10 * time.Second)

	require.Equal(t, 1.0, e.metric("connection_deleted"))
	require.Zero(t, e.metric("written"))
	require.Empty(t, e.events())
	require.Empty(t, e.dlqEntries(), "dropping is deliberate, not a failure")
}
