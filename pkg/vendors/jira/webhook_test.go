package jira_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/fixtures"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

const conn = "conn-1"

func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	return fixtures.Jira(t, rel)
}

func ms(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ref(kind itsm.Kind, vendorID string) *string { return itsm.RefID(conn, kind, vendorID) }

func mapping() *jira.Mapping { return &jira.Mapping{ConnectionID: conn} }

// oneTicket asserts a single ticket record; it is curried so that a Map*
// call can be passed directly.
func oneTicket(t *testing.T) func([]itsm.Record, error) (itsm.Record, *itsm.Ticket) {
	return func(recs []itsm.Record, err error) (itsm.Record, *itsm.Ticket) {
		t.Helper()
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, itsm.KindTicket, recs[0].Kind)
		tk, ok := recs[0].Object.(*itsm.Ticket)
		require.True(t, ok, "object is %T", recs[0].Object)
		require.Equal(t, tk.ID, recs[0].ID)
		return recs[0], tk
	}
}

func TestWebhookIssueUpdatedStatusChange(t *testing.T) {
	rec, tk := oneTicket(t)(mapping().MapWebhook(fixture(t, "webhooks/issue_updated_status_change_01.json")))

	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10000"), rec.ID)
	require.Equal(t, ms("2017-01-30T17:32:14.716Z"), rec.Version)
	require.False(t, rec.Deleted)
	require.Equal(t, "TEST-1", tk.Identifier)
	require.Equal(t, "Fix That", tk.Name)
	require.Equal(t, "Fix That", tk.Description)
	require.Equal(t, "Task", tk.Type)
	require.True(t, tk.Active)
	require.Equal(t, itsm.StatusInProgress, tk.Status)
	require.Equal(t, itsm.PriorityMedium, tk.Priority)
	require.Nil(t, tk.AssignedUserID)
	require.Nil(t, tk.ParentTicketID)
	require.Equal(t, ref(itsm.KindUser, "99:b8d8a054-2e12-4839-bd5f-5f2b7c5f5e3a"), tk.CreatedByUserID)
	require.Equal(t, ref(itsm.KindProject, "10000"), tk.ProjectID)
	require.Equal(t, "https://zulipp.atlassian.net/browse/TEST-1", tk.URL)
	require.Equal(t, ms("2017-01-30T17:30:41.962Z"), *tk.TicketCreatedAt)
	require.Nil(t, tk.DueDate)
	require.Nil(t, tk.ClosedAt)
	// The changelog moved the status: the delivery's time is when.
	require.Equal(t, ms("2017-01-30T17:32:14.721Z"), *tk.StatusUpdatedAt)
	require.NotNil(t, tk.Tags)
	require.Empty(t, tk.Tags)

	va := tk.VendorAttributes
	require.Equal(t, "10000", va["id"])
	require.Equal(t, "TEST-1", va["key"])
	require.Equal(t, "JIRA", va["vendor"])
	require.Equal(t, "In Progress", va["status"])
	require.Equal(t, "indeterminate", va["status_category"])
	require.Equal(t, "Medium", va["priority"])
	require.Equal(t, "Task", va["issue_type"])
	require.NotContains(t, va, "description_adf", "wiki strings are not ADF")
	require.Equal(t, map[string]any{
		"customfield_10000": "{}",
		"customfield_10112": "Not started",
		"customfield_10116": "0|hzzzzz:",
	}, va["custom_fields"])
}

func TestWebhookIssueUpdatedUnassigned(t *testing.T) {
	rec, tk := oneTicket(t)(mapping().MapWebhook(fixture(t, "webhooks/issue_updated_unassigned_01.json")))

	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10040"), rec.ID)
	require.Equal(t, ms("2019-02-16T21:10:32.523Z"), rec.Version)
	require.Equal(t, "TES-41", tk.Identifier)
	require.Equal(t, "Unit test summary 1", tk.Name)
	require.Equal(t, "Unit test description, not that long, a little longer now", tk.Description)
	require.Equal(t, "Story", tk.Type)
	require.Equal(t, itsm.StatusTodo, tk.Status)
	require.Equal(t, itsm.PriorityHigh, tk.Priority)
	require.Nil(t, tk.AssignedUserID, "changelog moved the assignee to nobody")
	require.Equal(t, ref(itsm.KindUser, "5c5f880629be9642ba529340"), tk.CreatedByUserID)
	require.Equal(t, ref(itsm.KindProject, "10000"), tk.ProjectID)
	require.Equal(t, []string{"test-label"}, tk.Tags)
	require.Equal(t, "https://some-instance-test.atlassian.net/browse/TES-41", tk.URL)
	require.Equal(t, ms("2019-02-16T03:01:52.971Z"), *tk.TicketCreatedAt)

	cf := tk.VendorAttributes["custom_fields"].(map[string]any)
	require.Len(t, cf, 4)
	require.Equal(t, "0|i0000r:r", cf["customfield_10022"])
	require.Equal(t, []any{}, cf["customfield_10024"], "an empty array is a value, not null")
	require.Equal(t, false, cf["customfield_10018"].(map[string]any)["showField"])
}

func TestWebhookIssueCreatedServerNoStatusCategory(t *testing.T) {
	rec, tk := oneTicket(t)(mapping().MapWebhook(fixture(t, "webhooks/issue_created_server_unicode_no_statuscategory_01.json")))

	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10400"), rec.ID)
	require.Equal(t, ms("2013-03-27T16:53:58.301Z"), rec.Version)
	require.Equal(t, "BUG-15", tk.Identifier)
	require.Equal(t, "New bug with à hook", tk.Name)
	require.Equal(t, "Fix me please", tk.Description)
	require.Equal(t, "Bug", tk.Type)
	require.Equal(t, itsm.StatusOpen, tk.Status, "keyword, as there is no category")
	require.Equal(t, itsm.PriorityHigh, tk.Priority, "Major")
	require.Nil(t, tk.AssignedUserID)
	// No creator on Server 2013: the reporter stands in.
	require.Equal(t, ref(itsm.KindUser, "99:27935d01-92a7-4687-8272-a9b8d3b2ae2e"), tk.CreatedByUserID)
	require.Equal(t, ref(itsm.KindProject, "10000"), tk.ProjectID)
	require.Equal(t, "http://lfranchi.com:8080/browse/BUG-15", tk.URL)
	require.Equal(t, "", tk.VendorAttributes["status_category"])
	require.Equal(t, "Open", tk.VendorAttributes["status"])
	require.Empty(t, tk.VendorAttributes["custom_fields"])
	require.NotNil(t, tk.Tags)
}

func TestWebhookIssueDeleted(t *testing.T) {
	rec, tk := oneTicket(t)(mapping().MapWebhook(fixture(t, "webhooks/issue_deleted_cloud_01.json")))

	require.True(t, rec.Deleted)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10303"), rec.ID)
	// The delivery (18:05:36.176Z) is after fields.updated (18:04:43.020Z).
	require.Equal(t, time.UnixMilli(1562177136176).UTC(), rec.Version)
	require.Equal(t, ms("2019-07-03T18:05:36.176Z"), rec.Version)
	require.Equal(t, itsm.StatusDeleted, tk.Status)
	require.False(t, tk.Active)
	require.Equal(t, "IDT-19", tk.Identifier)
	require.Equal(t, "hey", tk.Name)
	require.Equal(t, "To Do", tk.VendorAttributes["status"])
	require.Equal(t, itsm.PriorityMedium, tk.Priority)
	require.Equal(t, ms("2019-07-01T05:13:46.470Z"), *tk.StatusUpdatedAt)
	require.Equal(t, "https://some-instance-test.atlassian.net/browse/IDT-19", tk.URL)
	cf := tk.VendorAttributes["custom_fields"].(map[string]any)
	require.Equal(t, "172800", cf["customfield_10030"])
	require.Equal(t, "true", cf["customfield_10033"])
	require.Len(t, cf, 15)
}

func TestWebhookIssueDeletedVersionAfterUpdate(t *testing.T) {
	// A delivery timestamp before fields.updated (clock skew) must still
	// supersede the last update.
	body := []byte(`{"webhookEvent":"jira:issue_deleted","timestamp":1000,
		"issue":{"id":"1","key":"A-1","fields":{"updated":"2020-01-01T00:00:00.000+0000"}}}`)
	recs, err := mapping().MapWebhook(body)
	require.NoError(t, err)
	require.Equal(t, ms("2020-01-01T00:00:00.001Z"), recs[0].Version)
}

func TestWebhookCommentCreated(t *testing.T) {
	recs, err := mapping().MapWebhook(fixture(t, "webhooks/comment_created_cloud_02.json"))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	rec := recs[0]
	require.Equal(t, itsm.KindComment, rec.Kind)
	cm := rec.Object.(*itsm.Comment)

	require.Equal(t, itsm.ObjectID(conn, itsm.KindComment, "10000"), rec.ID)
	require.Equal(t, rec.ID, cm.ID)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10000"), cm.TicketID)
	require.Equal(t, ms("2019-01-07T20:25:51.184Z"), rec.Version)
	require.False(t, rec.Deleted)
	require.True(t, cm.Active)
	require.Equal(t, "Leaving a comment here! :)", cm.Body)
	require.Equal(t, ref(itsm.KindUser, "5a1b0e47748e770ed11f338c"), cm.AuthorID)
	require.Equal(t, ref(itsm.KindUser, "5a1b0e47748e770ed11f338c"), cm.UpdatedByUserID)
	require.Equal(t, ms("2019-01-07T20:25:51.184Z"), *cm.CommentCreatedAt)
	require.Equal(t, "https://zulipintegrations.atlassian.net/browse/ZUL-1?focusedCommentId=10000", cm.URL)
	require.Equal(t, "ZUL-1", cm.VendorAttributes["issue_key"])
	require.NotContains(t, cm.VendorAttributes, "body_adf")
}

func TestWebhookCommentDeletedAndADF(t *testing.T) {
	body := []byte(`{"webhookEvent":"comment_deleted","timestamp":1700000000000,
		"issue":{"id":10001,"key":"K-2","self":"https://x.atlassian.net/rest/api/2/issue/10001"},
		"comment":{"id":55,"updated":"2023-01-01T00:00:00Z",
		  "body":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"gone"}]}]}}}`)
	recs, err := mapping().MapWebhook(body)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.True(t, recs[0].Deleted)
	require.Equal(t, time.UnixMilli(1700000000000).UTC(), recs[0].Version)
	cm := recs[0].Object.(*itsm.Comment)
	require.False(t, cm.Active)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindComment, "55"), cm.ID)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10001"), cm.TicketID)
	require.Equal(t, "gone", cm.Body)
	require.Contains(t, cm.VendorAttributes, "body_adf")
	require.Equal(t, "https://x.atlassian.net/browse/K-2?focusedCommentId=55", cm.URL)
}

func TestWebhookAnomalous(t *testing.T) {
	recs, err := mapping().MapWebhook(fixture(t, "webhooks/anomalous_no_webhookEvent_01.json"))
	require.ErrorIs(t, err, itsm.ErrNotAnEvent)
	require.Nil(t, recs)
}

func TestWebhookErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want error
	}{
		{"syntax", `{"webhookEvent":`, itsm.ErrMalformed},
		{"empty", ``, itsm.ErrMalformed},
		{"array", `[1,2]`, itsm.ErrNotAnEvent},
		{"null", `null`, itsm.ErrNotAnEvent},
		{"string", `"jira:issue_created"`, itsm.ErrNotAnEvent},
		{"empty object", `{}`, itsm.ErrNotAnEvent},
		{"worklog", `{"webhookEvent":"worklog_created","worklog":{"id":"1"}}`, itsm.ErrUnsupportedEvent},
		{"version", `{"webhookEvent":"jira:version_released"}`, itsm.ErrUnsupportedEvent},
		{"sprint", `{"webhookEvent":"sprint_started"}`, itsm.ErrUnsupportedEvent},
		{"board", `{"webhookEvent":"board_created"}`, itsm.ErrUnsupportedEvent},
		{"issuelink", `{"webhookEvent":"issuelink_created"}`, itsm.ErrUnsupportedEvent},
		{"unknown", `{"webhookEvent":"something_new"}`, itsm.ErrUnsupportedEvent},
		{"issue event without issue", `{"webhookEvent":"jira:issue_updated"}`, itsm.ErrMalformed},
		{"issue without id", `{"webhookEvent":"jira:issue_updated","issue":{"fields":{"updated":"2020-01-01T00:00:00Z"}}}`, itsm.ErrMalformed},
		{"missing updated", `{"webhookEvent":"jira:issue_created","issue":{"id":"1","fields":{"summary":"x"}}}`, itsm.ErrMalformed},
		{"bad updated", `{"webhookEvent":"jira:issue_created","issue":{"id":"1","fields":{"updated":"yesterday"}}}`, itsm.ErrMalformed},
		{"zero updated", `{"webhookEvent":"jira:issue_created","issue":{"id":"1","fields":{"updated":"0001-01-01T00:00:00Z"}}}`, itsm.ErrMalformed},
		{"comment without issue", `{"webhookEvent":"comment_created","comment":{"id":"1","updated":"2020-01-01T00:00:00Z"}}`, itsm.ErrMalformed},
		{"deleted without any time", `{"webhookEvent":"jira:issue_deleted","issue":{"id":"1"}}`, itsm.ErrMalformed},
		{"deleted in year 28 million", `{"webhookEvent":"jira:issue_deleted","timestamp":900000000000000000,"issue":{"id":"1"}}`, itsm.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := mapping().MapWebhook([]byte(tc.body))
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, recs)
		})
	}
}

func TestWebhookUnsupportedNamesEvent(t *testing.T) {
	_, err := mapping().MapWebhook([]byte(`{"webhookEvent":"worklog_updated"}`))
	require.ErrorContains(t, err, "worklog_updated")
	_, err = mapping().MapWebhook([]byte(`{"webhookEvent":`))
	require.ErrorIs(t, err, itsm.ErrMalformed)
	require.ErrorContains(t, err, "unexpected end of JSON input")
}

// Shapes seen in real payloads that strict decoding would reject.
func TestWebhookMessyIssue(t *testing.T) {
	body := []byte(`{"webhookEvent":"jira:issue_updated","timestamp":"1600000000000",
	 "issue":{"id":10500,"key":"M-7","self":"https://api.atlassian.com/ex/jira/abc/rest/api/3/issue/10500",
	  "fields":{"summary":42,"updated":"2020-09-13T12:26:40+02:00","created":1599990000000,
	   "priority":"Highest","status":{"name":"Waiting for customer"},
	   "issuetype":"Bug","project":{"id":7},"parent":{"id":10499,"key":"M-6"},
	   "assignee":{"key":"JIRAUSER10100","name":"bob","active":"true"},
	   "reporter":{"name":"alice"},
	   "labels":"solo","duedate":"2020-10-01","resolutiondate":null,
	   "description":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"hi"}]}]},
	   "customfield_1":{"value":"x"},"customfield_2":null,"customfield_3":1e400}}}`)
	rec, tk := oneTicket(t)(mapping().MapWebhook(body))

	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10500"), rec.ID)
	require.Equal(t, ms("2020-09-13T10:26:40Z"), rec.Version)
	require.Equal(t, "42", tk.Name)
	require.Equal(t, itsm.PriorityCritical, tk.Priority)
	require.Equal(t, itsm.StatusPending, tk.Status)
	require.Equal(t, "Bug", tk.Type)
	require.Equal(t, ref(itsm.KindProject, "7"), tk.ProjectID)
	require.Equal(t, ref(itsm.KindTicket, "10499"), tk.ParentTicketID)
	require.Equal(t, ref(itsm.KindUser, "JIRAUSER10100"), tk.AssignedUserID, "Server key before name")
	require.Equal(t, ref(itsm.KindUser, "alice"), tk.CreatedByUserID)
	require.Equal(t, []string{"solo"}, tk.Tags)
	require.Equal(t, ms("2020-10-01T00:00:00Z"), *tk.DueDate)
	require.Equal(t, time.UnixMilli(1599990000000).UTC(), *tk.TicketCreatedAt)
	require.Nil(t, tk.ClosedAt)
	require.Equal(t, "hi", tk.Description)
	require.Contains(t, tk.VendorAttributes, "description_adf")
	require.Empty(t, tk.URL, "the gateway self link does not name the site")
	cf := tk.VendorAttributes["custom_fields"].(map[string]any)
	require.Equal(t, map[string]any{"value": "x"}, cf["customfield_1"])
	require.NotContains(t, cf, "customfield_2")
	require.Equal(t, "1e400", cf["customfield_3"])

	// With the site known, gateway records get browse links after all.
	m := mapping()
	m.SiteURL = "https://m.atlassian.net/"
	_, tk = oneTicket(t)(m.MapWebhook(body))
	require.Equal(t, "https://m.atlassian.net/browse/M-7", tk.URL)
}

func TestWebhookNullPriorityAndStatus(t *testing.T) {
	body := []byte(`{"webhookEvent":"jira:issue_created","issue":{"id":"1","key":"N-1",
		"fields":{"updated":"2021-01-01T00:00:00.000-0000","priority":null,"status":null,"labels":null}}}`)
	_, tk := oneTicket(t)(mapping().MapWebhook(body))
	require.Equal(t, itsm.PriorityUnknown, tk.Priority)
	require.Equal(t, itsm.StatusUnknown, tk.Status)
	require.Equal(t, []string{}, tk.Tags)
	require.Nil(t, tk.ProjectID)
}

func TestWebhookIssueWithoutEventName(t *testing.T) {
	// Workflow post-function webhooks omit webhookEvent but carry the issue.
	body := []byte(`{"timestamp":1,"transition":{"to_status":"Done"},
		"issue":{"id":"9","key":"W-9","fields":{"updated":"2021-01-01T00:00:00Z","status":{"name":"Done"}}}}`)
	_, tk := oneTicket(t)(mapping().MapWebhook(body))
	require.Equal(t, itsm.StatusClosed, tk.Status)
}

func TestWebhookCustomMappings(t *testing.T) {
	m := &jira.Mapping{
		ConnectionID: conn,
		Status:       map[string]itsm.Status{"in PROGRESS": itsm.StatusBlocked},
		Priority:     map[string]itsm.Priority{"medium": itsm.PriorityLow},
	}
	_, tk := oneTicket(t)(m.MapWebhook(fixture(t, "webhooks/issue_updated_status_change_01.json")))
	require.Equal(t, itsm.StatusBlocked, tk.Status)
	require.Equal(t, itsm.PriorityLow, tk.Priority)
	require.Equal(t, "In Progress", tk.VendorAttributes["status"])
}

func TestIDsDependOnConnection(t *testing.T) {
	body := fixture(t, "webhooks/issue_updated_status_change_01.json")
	a, err := (&jira.Mapping{ConnectionID: "a"}).MapWebhook(body)
	require.NoError(t, err)
	b, err := (&jira.Mapping{ConnectionID: "b"}).MapWebhook(body)
	require.NoError(t, err)
	require.NotEqual(t, a[0].ID, b[0].ID)
	again, err := (&jira.Mapping{ConnectionID: "a"}).MapWebhook(body)
	require.NoError(t, err)
	require.Equal(t, a[0].ID, again[0].ID)
}

// Jira Server deliveries omit fields.updated: the delivery's timestamp
// versions the update instead of dead-lettering it.
func TestWebhookUpdateWithoutFieldsUpdatedUsesTheTimestamp(t *testing.T) {
	m := &jira.Mapping{ConnectionID: "c"}
	body := []byte(`{"webhookEvent":"jira:issue_updated","timestamp":1700000000123,
		"issue":{"id":"10001","key":"OPS-1","fields":{"summary":"s","status":{"name":"Done","statusCategory":{"key":"done"}}}},
		"changelog":{"items":[{"field":"status","fromString":"To Do","toString":"Done"}]}}`)
	recs, err := m.MapWebhook(body)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, int64(1700000000123), recs[0].Version.UnixMilli())
	tk := recs[0].Object.(*itsm.Ticket)
	require.Equal(t, itsm.StatusClosed, tk.Status)
	require.Equal(t, int64(1700000000123), tk.StatusUpdatedAt.UnixMilli())

	// Without a timestamp either, nothing versions it: still malformed.
	_, err = m.MapWebhook([]byte(`{"webhookEvent":"jira:issue_updated","issue":{"id":"10001","fields":{"summary":"s"}}}`))
	require.ErrorIs(t, err, itsm.ErrMalformed)
	// A present but unparseable fields.updated is not papered over.
	_, err = m.MapWebhook([]byte(`{"webhookEvent":"jira:issue_updated","timestamp":1700000000123,"issue":{"id":"10001","fields":{"updated":"yesterday"}}}`))
	require.ErrorIs(t, err, itsm.ErrMalformed)
}

// The timestamp stands in for a missing fields.updated only: an issue whose
// fields are not an object stays malformed (dead-lettered).
func TestWebhookIssueWithoutFieldsStaysMalformed(t *testing.T) {
	m := &jira.Mapping{ConnectionID: "c"}
	_, err := m.MapWebhook([]byte(`{"webhookEvent":"jira:issue_updated","timestamp":1700000000123,"issue":{"id":"1","fields":"not an object"}}`))
	require.ErrorIs(t, err, itsm.ErrMalformed)
}
