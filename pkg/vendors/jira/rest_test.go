package jira_test

import (
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// page splits a trimmed REST page fixture into its records.
func page(t testing.TB, rel, key string) []json.RawMessage {
	t.Helper()
	var p map[string][]json.RawMessage
	require.NoError(t, json.Unmarshal(fixture(t, rel), &p))
	require.NotEmpty(t, p[key])
	return p[key]
}

// member is one member of a JSON object.
func member(t testing.TB, obj json.RawMessage, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(obj, &m))
	require.Contains(t, m, key)
	return m[key]
}

// encoded is v's JSON.
func encoded(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

var observed = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

func TestRESTSearchIssueADF(t *testing.T) {
	issues := page(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues")
	require.Len(t, issues, 1)
	rec, tk := oneTicket(t)(mapping().MapREST("issue", "", issues[0]))

	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10627"), rec.ID)
	require.Equal(t, ms("2022-12-08T10:22:18.889Z"), rec.Version)
	require.Equal(t, "TESTKEY13-1", tk.Identifier)
	require.Equal(t, "My Summary", tk.Name)
	require.Equal(t, "Test issue", tk.Description)
	require.Equal(t, "Epic", tk.Type)
	require.Equal(t, itsm.StatusTodo, tk.Status)
	require.Equal(t, itsm.PriorityLow, tk.Priority)
	require.Equal(t, []string{"test"}, tk.Tags)
	require.Equal(t, ref(itsm.KindUser, "5fc9e78d2730d800760becc4"), tk.AssignedUserID)
	require.Equal(t, ref(itsm.KindUser, "5fc9e78d2730d800760becc4"), tk.CreatedByUserID)
	require.Equal(t, ref(itsm.KindProject, "10016"), tk.ProjectID)
	require.Equal(t, "https://airbyteio.atlassian.net/browse/TESTKEY13-1", tk.URL)
	require.Equal(t, ms("2022-06-09T23:29:31.871Z"), *tk.TicketCreatedAt)
	require.Equal(t, ms("2022-06-09T23:29:32.382Z"), *tk.StatusUpdatedAt)
	require.Nil(t, tk.ClosedAt)
	require.Nil(t, tk.DueDate)

	va := tk.VendorAttributes
	require.Equal(t, "new", va["status_category"])
	require.Equal(t, "Low", va["priority"])
	require.Equal(t, "Epic", va["issue_type"])
	require.JSONEq(t, string(member(t, member(t, issues[0], "fields"), "description")), encoded(t, va["description_adf"]),
		"the ADF document is kept whole")
	cf := va["custom_fields"].(map[string]any)
	require.Equal(t, "EPIC NAME TEXT", cf["customfield_10011"])
	require.Equal(t, "To Do", cf["customfield_10012"].(map[string]any)["value"])
	require.Equal(t, "2022-12-09T00:00:00.000-0800", cf["customfield_10009"])
	require.NotContains(t, cf, "customfield_10030")
	require.Len(t, cf[("customfield_10003")], 1)
}

func TestRESTComments(t *testing.T) {
	comments := page(t, "rest/issue_comments_v3_adf_01.json", "comments")
	require.Len(t, comments, 2)

	recs, err := mapping().MapREST("comment", "10625", comments[0])
	require.NoError(t, err)
	require.Len(t, recs, 1)
	cm := recs[0].Object.(*itsm.Comment)
	require.Equal(t, itsm.KindComment, recs[0].Kind)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindComment, "10755"), cm.ID)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10625"), cm.TicketID)
	require.Equal(t, ms("2022-05-17T11:06:55.076Z"), recs[0].Version)
	require.Equal(t, "Closed", cm.Body)
	require.JSONEq(t, string(member(t, comments[0], "body")), encoded(t, cm.VendorAttributes["body_adf"]))
	require.Equal(t, ref(itsm.KindUser, "5fc9e78d2730d800760becc4"), cm.AuthorID)
	require.Equal(t, ref(itsm.KindUser, "5fc9e78d2730d800760becc4"), cm.UpdatedByUserID)
	require.Empty(t, cm.URL, "REST comments do not carry the issue key")
	require.True(t, cm.Active)

	// Without an issue id the comment's self link still names the issue.
	recs, err = mapping().MapREST("comment", "", comments[1])
	require.NoError(t, err)
	cm = recs[0].Object.(*itsm.Comment)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "10075"), cm.TicketID)
	require.Equal(t, ms("2021-04-14T21:32:43.099Z"), recs[0].Version)
	require.Contains(t, cm.Body, "Lorem ipsum dolor sit amet")
}

func TestRESTProjects(t *testing.T) {
	projects := page(t, "rest/project_search_v3_airbyte_01.json", "values")
	require.Len(t, projects, 2)

	recs, err := mapping().MapRESTAt("project", "", projects[0], observed)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	p := recs[0].Object.(*itsm.Project)
	require.Equal(t, itsm.KindProject, recs[0].Kind)
	require.Equal(t, observed.Truncate(time.Millisecond), recs[0].Version)
	// The fixture's id disagrees with its self link; the id field is the id.
	require.Equal(t, itsm.ObjectID(conn, itsm.KindProject, "1"), p.ID)
	require.Equal(t, "integration-tests", p.Name)
	require.Equal(t, "", p.Description)
	require.Equal(t, "software", p.Type)
	require.Equal(t, "Project1", p.Identifier)
	require.Equal(t, "https://airbyteio.atlassian.net/browse/Project1", p.URL)
	require.Nil(t, p.LeadUserID)
	require.True(t, p.Active)
	require.Equal(t, "classic", p.VendorAttributes["style"])

	recs, err = mapping().MapRESTAt("project", "", projects[1], observed)
	require.NoError(t, err)
	p = recs[0].Object.(*itsm.Project)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindProject, "2"), p.ID)
	require.Equal(t, "Test project 13 description", p.Description)

	recs, err = mapping().MapRESTAt("project", "", []byte(`{"id":3,"key":"Z","archived":"true",
		"lead":{"accountId":"L1"},"description":{"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"d"}]}]}}`), observed)
	require.NoError(t, err)
	p = recs[0].Object.(*itsm.Project)
	require.False(t, p.Active)
	require.Equal(t, ref(itsm.KindUser, "L1"), p.LeadUserID)
	require.Equal(t, "d", p.Description)
	require.Empty(t, p.URL)
}

func TestRESTUser(t *testing.T) {
	recs, err := mapping().MapRESTAt("user", "", fixture(t, "rest/user_cloud_v3_01.json"), observed)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	u := recs[0].Object.(*itsm.User)
	require.Equal(t, itsm.KindUser, recs[0].Kind)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindUser, "123456:cd68d496-c059-4e88-9e29-12ef5c911bcf"), u.ID)
	require.Equal(t, observed.Truncate(time.Millisecond), recs[0].Version)
	require.Equal(t, "Example User", u.Name)
	require.Equal(t, "user@example.com", *u.Email)
	require.Equal(t, itsm.ObjectActive, u.Status)
	require.True(t, u.Active)
	require.Equal(t, "atlassian", u.VendorAttributes["account_type"])
	require.Equal(t, "America/Detroit", u.VendorAttributes["time_zone"])

	for _, body := range []string{
		`{"accountId":"x","emailAddress":null,"active":"false"}`,
		`{"accountId":"x","emailAddress":"","active":false}`,
		`{"accountId":"x","active":0}`,
	} {
		recs, err = mapping().MapRESTAt("user", "", []byte(body), observed)
		require.NoError(t, err, body)
		u = recs[0].Object.(*itsm.User)
		require.Nil(t, u.Email, body)
		require.Equal(t, itsm.ObjectInactive, u.Status, body)
		require.False(t, u.Active, body)
	}
}

func TestRESTGroups(t *testing.T) {
	groups := page(t, "rest/groups_bulk_airbyte_01.json", "values")
	require.Len(t, groups, 4)
	seen := map[string]bool{}
	for i, g := range groups {
		recs, err := mapping().MapRESTAt("group", "", g, observed)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		gr := recs[0].Object.(*itsm.Group)
		// Same name, different groupId: distinct groups.
		require.Equal(t, itsm.ObjectID(conn, itsm.KindGroup, []string{"test1", "test2", "test3", "test4"}[i]), gr.ID)
		require.Equal(t, "Test group 17", gr.Name)
		require.NotNil(t, gr.MemberUserIDs)
		require.Empty(t, gr.MemberUserIDs)
		require.True(t, gr.Active)
		seen[gr.ID] = true
	}
	require.Len(t, seen, 4)

	recs, err := mapping().MapRESTAt("group", "", []byte(`{"name":"devs","members":[
		{"accountId":"b"},{"accountId":"a"},{"accountId":"b"},{"displayName":"nobody"}]}`), observed)
	require.NoError(t, err)
	gr := recs[0].Object.(*itsm.Group)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindGroup, "devs"), gr.ID)
	want := []string{itsm.ObjectID(conn, itsm.KindUser, "a"), itsm.ObjectID(conn, itsm.KindUser, "b")}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	require.Equal(t, want, gr.MemberUserIDs)
}

func TestRESTAttachment(t *testing.T) {
	body := []byte(`{"self":"https://x.atlassian.net/rest/api/3/attachment/10001","id":"10001",
		"filename":"log.txt","author":{"accountId":"u1"},"created":"2024-02-03T04:05:06.789+0000",
		"size":"2048","mimeType":"text/plain","content":"https://x.atlassian.net/rest/api/3/attachment/content/10001"}`)
	recs, err := mapping().MapREST("attachment", "500", body)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	a := recs[0].Object.(*itsm.Attachment)
	require.Equal(t, itsm.KindAttachment, recs[0].Kind)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindAttachment, "10001"), a.ID)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindTicket, "500"), a.TicketID)
	require.Equal(t, ms("2024-02-03T04:05:06.789Z"), recs[0].Version)
	require.Equal(t, "log.txt", a.Name)
	require.Equal(t, "text/plain", a.MimeType)
	require.Equal(t, int64(2048), a.Size)
	require.Equal(t, "https://x.atlassian.net/rest/api/3/attachment/content/10001", a.URL)
	require.Equal(t, ref(itsm.KindUser, "u1"), a.UploadedByUserID)

	_, err = mapping().MapREST("attachment", "", body)
	require.ErrorIs(t, err, itsm.ErrMalformed)
}

func TestRESTErrors(t *testing.T) {
	for _, tc := range []struct{ typ, body string }{
		{"issue", `{"id":"1"}`}, // search returned ids only: no version
		{"issue", `{"fields":{"updated":"2020-01-01T00:00:00Z"}}`},
		{"issue", `[]`},
		{"issue", `{`},
		{"comment", `{"id":"1","updated":"2020-01-01T00:00:00Z"}`}, // no issue id anywhere
		{"comment", `{"id":"1"}`},
		{"project", `{"key":"P"}`},
		{"user", `{"displayName":"x"}`},
		{"group", `{}`},
		{"attachment", `{"id":"1"}`},
		{"worklog", `{"id":"1"}`},
	} {
		recs, err := mapping().MapREST(tc.typ, "", []byte(tc.body))
		require.ErrorIs(t, err, itsm.ErrMalformed, "%s %s", tc.typ, tc.body)
		require.Nil(t, recs)
	}
}

func TestRESTObservedDefaultsToNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	recs, err := mapping().MapREST("user", "", []byte(`{"accountId":"x"}`))
	require.NoError(t, err)
	require.True(t, recs[0].Version.After(before))
	require.Equal(t, recs[0].Version, recs[0].Version.Truncate(time.Millisecond))
}
