package jira_test

import (
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Attachment entries as Jira lists them in fields.attachment: one complete,
// one with a numeric size and id, and two it cannot map (no created, not an
// object), which must be skipped without costing the issue.
const issueAttachments = `[
	{"self":"https://airbyteio.atlassian.net/rest/api/3/attachment/10100","id":"10100","filename":"trace.log",
	 "author":{"accountId":"5fc9e78d2730d800760becc4"},"created":"2022-06-10T08:00:00.000-0700","size":4096,
	 "mimeType":"text/plain","content":"https://airbyteio.atlassian.net/rest/api/3/attachment/content/10100",
	 "thumbnail":"https://airbyteio.atlassian.net/rest/api/3/attachment/thumbnail/10100"},
	{"id":10101,"filename":"shot.png","created":"2022-06-11T09:00:00.000+0000","size":"12","mimeType":"image/png"},
	{"id":"10102","filename":"no-created.txt"},
	"junk"
]`

// withAttachments replaces fields.attachment of an issue body in memory.
func withAttachments(t *testing.T, issue []byte, atts string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(issue, &m))
	var v any
	require.NoError(t, json.Unmarshal([]byte(atts), &v))
	m["fields"].(map[string]any)["attachment"] = v
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func checkIssueAttachments(t *testing.T, recs []itsm.Record, issueID string) {
	t.Helper()
	require.Len(t, recs, 3, "the ticket and its two mappable attachments")
	require.Equal(t, itsm.KindTicket, recs[0].Kind)
	ticketID := itsm.ObjectID(conn, itsm.KindTicket, issueID)
	require.Equal(t, ticketID, recs[0].ID)

	a := recs[1].Object.(*itsm.Attachment)
	require.Equal(t, itsm.KindAttachment, recs[1].Kind)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindAttachment, "10100"), recs[1].ID)
	require.Equal(t, recs[1].ID, a.ID)
	require.Equal(t, ticketID, a.TicketID)
	require.Equal(t, ms("2022-06-10T15:00:00Z"), recs[1].Version, "attachments never change: created versions them")
	require.Equal(t, "trace.log", a.Name)
	require.Equal(t, "text/plain", a.MimeType)
	require.Equal(t, int64(4096), a.Size)
	require.Equal(t, "https://airbyteio.atlassian.net/rest/api/3/attachment/content/10100", a.URL)
	require.Equal(t, ref(itsm.KindUser, "5fc9e78d2730d800760becc4"), a.UploadedByUserID)
	require.Equal(t, issueID, a.VendorAttributes["issue_id"])

	b := recs[2].Object.(*itsm.Attachment)
	require.Equal(t, itsm.ObjectID(conn, itsm.KindAttachment, "10101"), b.ID)
	require.Equal(t, int64(12), b.Size)
	require.Nil(t, b.UploadedByUserID)
}

func TestRESTIssueEmitsAttachments(t *testing.T) {
	issues := page(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues")
	recs, err := mapping().MapRESTAt("issue", "", withAttachments(t, issues[0], issueAttachments), observed)
	require.NoError(t, err)
	checkIssueAttachments(t, recs, "10627")

	// The unedited fixture lists none: the ticket alone.
	recs, err = mapping().MapRESTAt("issue", "", issues[0], observed)
	require.NoError(t, err)
	require.Len(t, recs, 1)

	// A fields.attachment that is not a list is ignored like any odd field.
	recs, err = mapping().MapRESTAt("issue", "", withAttachments(t, issues[0], `{"id":"1"}`), observed)
	require.NoError(t, err)
	require.Len(t, recs, 1)
}

func TestWebhookIssueEmitsAttachments(t *testing.T) {
	var env map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(fixture(t, "webhooks/issue_updated_status_change_01.json"), &env))
	env["issue"] = withAttachments(t, env["issue"], issueAttachments)
	body, err := json.Marshal(env)
	require.NoError(t, err)
	recs, err := mapping().MapWebhook(body)
	require.NoError(t, err)
	checkIssueAttachments(t, recs, "10000")

	// A deleted issue's attachments are tombstoned by the ticket's cascade,
	// not re-created from the deletion payload.
	env["webhookEvent"] = json.RawMessage(`"jira:issue_deleted"`)
	body, err = json.Marshal(env)
	require.NoError(t, err)
	recs, err = mapping().MapWebhook(body)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.True(t, recs[0].Deleted)
}
