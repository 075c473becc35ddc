package servicenow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
)

// Responses recorded from real instances by other projects
// (testdata/recorded/SOURCES.md), replayed unedited as an instance on a
// loopback URL that takes basic auth, read with the connector's client and
// mapped as the normalizer maps a sync's records.

const (
	replayUser     = "itsm.integration"
	replayPassword = "integration-password"
)

// replay answers GET <path> with a recorded body, as the instance did, and
// 401 with ServiceNow's error body to any other credentials.
func replay(t *testing.T, routes map[string]string) *httptest.Server {
	t.Helper()
	bodies := map[string][]byte{}
	for path, file := range routes {
		b, err := os.ReadFile(filepath.Join("testdata", "recorded", file))
		require.NoError(t, err)
		if b[0] == '[' {
			// A result list copied from documentation, without the
			// Table API's envelope.
			b = append(append([]byte(`{"result":`), b...), '}')
		}
		bodies[path] = b
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		if u, p, ok := r.BasicAuth(); !ok || u != replayUser || p != replayPassword {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`))
			return
		}
		b, ok := bodies[r.URL.Path]
		if r.Method != http.MethodGet || !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`))
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func replayClient(t *testing.T, base, user, password string) *snclient.Client {
	t.Helper()
	c, err := snclient.New(&http.Client{Transport: snclient.BasicAuth(nil, user, password)}, base, snclient.Options{Retries: 1, MaxWait: time.Millisecond})
	require.NoError(t, err)
	return c
}

func mapRecorded(t *testing.T, conn *store.Connection, typ string, body []byte) (itsm.Record, error) {
	t.Helper()
	recs, err := servicenow.Mapper{}.MapSync(conn, raw.SyncRecord{Type: typ, ObservedAt: time.Now(), Record: body})
	if err != nil {
		return itsm.Record{}, err
	}
	require.Len(t, recs, 1)
	return recs[0], nil
}

func utcPtr(s string) *time.Time {
	tm := utc(s)
	return &tm
}

func TestRecordedResponses(t *testing.T) {
	const (
		sirID    = "g123456"
		chgID    = "25a42de31b582010593876a61a4bcbc8"
		incID    = "51e4a8abb1b66fc04ba11001955e7dcb"
		attach1  = "52e4a8abb1b66fc04ba11001955e7dcb"
		attach2  = "53e4a8abb1b66fc04ba11001955e7dcb"
		recorded = "rapid7_"
	)
	srv := replay(t, map[string]string{
		"/api/now/v2/table/sn_si_incident/" + sirID: recorded + "security_incident_get.json",
		"/api/now/v2/table/change_request/" + chgID: recorded + "change_request_create_dv_all.json",
		"/api/now/v2/table/incident/" + incID:       recorded + "incident_comments_worknotes_fields.json",
		"/api/now/attachment":                       recorded + "attachment_list_many.json",
		"/api/now/v2/table/sys_journal_field":       recorded + "help_journal_list.json",
	})
	conn := &store.Connection{ID: "conn-recorded", OrganizationID: "org-1", Vendor: servicenow.VendorName, SiteURL: srv.URL}
	ctx := context.Background()
	c := replayClient(t, srv.URL, replayUser, replayPassword)

	t.Run("wrong credentials are 401, named as such", func(t *testing.T) {
		_, err := replayClient(t, srv.URL, replayUser, "wrong").Get(ctx, "sn_si_incident", sirID)
		require.ErrorIs(t, err, snclient.ErrUnauthorized)
		require.NotContains(t, err.Error(), "wrong")
	})

	t.Run("task record, link references, a number among the strings", func(t *testing.T) {
		body, err := c.Get(ctx, "sn_si_incident", sirID)
		require.NoError(t, err)
		rec, err := mapRecorded(t, conn, raw.TypeTicket, body)
		require.NoError(t, err)
		tk := rec.Object.(*itsm.Ticket)
		require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, sirID), tk.ID)
		require.Equal(t, "SIR00000001", tk.Identifier)
		require.Equal(t, "test", tk.Name)
		require.Equal(t, "example description", tk.Description)
		require.False(t, tk.Active, `"active":"false"`)
		// A table the connector does not know (sn_si_incident, no
		// sys_class_name, prefix SIR): no code table applies, so the
		// inactive record is CLOSED by the documented fallback.
		require.Equal(t, itsm.StatusClosed, tk.Status)
		require.Equal(t, "inactive", tk.VendorAttributes["status_mapped_by"])
		require.Equal(t, itsm.PriorityLow, tk.Priority, `"priority":"4"`)
		// {"link","value"} references map to the value's id, whatever the link.
		require.Equal(t, itsm.RefID(conn.ID, itsm.KindUser, "1234"), tk.AssignedUserID)
		require.Equal(t, itsm.RefID(conn.ID, itsm.KindUser, "1234"), tk.CreatedByUserID)
		// Empty strings are absent values, not empty ids.
		require.Nil(t, tk.ParentTicketID, `"parent":""`)
		require.Nil(t, tk.DueDate, "no due_date")
		// Dates are UTC wall times.
		require.Equal(t, utcPtr("2023-07-28 10:18:55"), tk.TicketCreatedAt)
		require.Equal(t, utcPtr("2023-08-01 08:03:28"), tk.ClosedAt)
		require.Equal(t, utc("2023-08-01 08:03:32"), rec.Version)
		require.Empty(t, tk.URL, "no table, no record URL")
		require.Equal(t, []string{}, tk.Tags)
		fields := tk.VendorAttributes["fields"].(map[string]any)
		require.Equal(t, "3", fields["business_criticality"], "a JSON number is kept as its text")
		require.Equal(t, "", fields["change_request"])
		require.Equal(t, "1234", fields["caller"], "every other reference as its sys_id")
		require.Equal(t, "\ufde0\ufde1\ufde256715c0aff1331007a6dffffffffff54\ufdcc\ufdcdCzXu70QS9L8TfvWt92rByQ==\ufdce\ufdcf", fields["secure_notes"])

		// The same record as sysparm_exclude_reference_link=true returns it
		// (every reference a bare sys_id) maps to the same ticket.
		var row map[string]any
		require.NoError(t, json.Unmarshal(body, &row))
		refs := 0
		for k, v := range row {
			if ref, ok := v.(map[string]any); ok {
				row[k] = ref["value"]
				refs++
			}
		}
		require.Equal(t, 10, refs)
		bare, err := json.Marshal(row)
		require.NoError(t, err)
		again, err := mapRecorded(t, conn, raw.TypeTicket, bare)
		require.NoError(t, err)
		require.Equal(t, rec, again)
	})

	t.Run("attachment list through the Attachment API", func(t *testing.T) {
		var rows []jsontext.Value
		require.NoError(t, c.Scan(ctx, snclient.Scan{Table: "sys_attachment", Filter: "table_sys_id=" + incID}, func(p snclient.Page) error {
			rows = append(rows, p.Rows...)
			require.Equal(t, snclient.Cursor{At: "2021-08-20 18:12:02", ID: attach2}, p.Cursor)
			return nil
		}))
		require.Len(t, rows, 2)
		rec, err := mapRecorded(t, conn, raw.TypeAttachment, rows[0])
		require.NoError(t, err)
		a := rec.Object.(*itsm.Attachment)
		require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindAttachment, attach1), a.ID)
		require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, incID), a.TicketID)
		require.Equal(t, "testtattatxt", a.Name)
		require.Equal(t, "text/plain", a.MimeType, `"content_type":"text/plain (.txt)"`)
		require.Equal(t, "text/plain (.txt)", a.VendorAttributes["content_type"])
		require.EqualValues(t, 38, a.Size)
		require.Equal(t, "https://ven01226.service-now.com/api/now/attachment/89e83d961b4af410cdd0a6c1604bcb57/file", a.URL)
		require.Equal(t, utcPtr("2021-08-20 18:12:00"), a.AttachmentCreatedAt)
		require.Nil(t, a.UploadedByUserID, "the uploader's user_name is resolved by the sync, not in the raw row")
		require.Equal(t, "integrations", a.VendorAttributes["created_by"])
		require.Equal(t, "available", a.VendorAttributes["state"])
		require.Equal(t, "dae69319108237466d4f37e1f5211a0f3de270d55e1b8dbc9cafe29a17f23894", a.VendorAttributes["hash"])
		// sys_updated_on plus the mod count (1) as a tie-break.
		require.Equal(t, utc("2021-08-20 18:12:02").Add(2*time.Millisecond), rec.Version)

		second, err := mapRecorded(t, conn, raw.TypeAttachment, rows[1])
		require.NoError(t, err)
		require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindAttachment, attach2), second.ID)
	})

	t.Run("journal entries: comments and work notes", func(t *testing.T) {
		const ticket = "965f140bdb4c8c105f6f00b5ca961922"
		var rows []jsontext.Value
		require.NoError(t, c.Scan(ctx, snclient.Scan{Table: "sys_journal_field", Key: "sys_created_on",
			Filter: "element_id=" + ticket}, func(p snclient.Page) error {
			rows = append(rows, p.Rows...)
			return nil
		}))
		require.Len(t, rows, 3)
		want := []struct {
			sysID, element, body, created string
		}{
			{"2c6420c31b0000506a4a85507e4bcb82", "work_notes", "Team is actively looking into it.", "2019-09-26 21:19:11"},
			{"4db0e8cb1bcccc106a4a85507e4bcba2", "comments", "This is Sev1 incident.", "2019-09-26 21:03:07"},
			{"f92024471b0000506a4a85507e4bcb78", "comments", "Testing comments", "2019-09-26 21:00:43"},
		}
		for i, w := range want {
			rec, err := mapRecorded(t, conn, raw.TypeComment, rows[i])
			require.NoError(t, err)
			cm := rec.Object.(*itsm.Comment)
			require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindComment, w.sysID), cm.ID)
			require.Equal(t, itsm.ObjectID(conn.ID, itsm.KindTicket, ticket), cm.TicketID)
			require.Equal(t, w.body, cm.Body)
			require.Equal(t, w.element == "work_notes", cm.VendorAttributes["internal"], w.element)
			require.Equal(t, w.element, cm.VendorAttributes["element"])
			require.Equal(t, utcPtr(w.created), cm.CommentCreatedAt)
			require.Equal(t, utcPtr(w.created), cm.CommentUpdatedAt, "journal entries are never edited")
			require.Equal(t, utc(w.created), rec.Version)
			// sys_created_by is a user_name: the author id needs the sync's
			// lookup, which this raw row has not had.
			require.Nil(t, cm.AuthorID)
			require.Equal(t, "admin", cm.VendorAttributes["created_by"])
			require.Equal(t, srv.URL+"/incident.do?sys_id="+ticket, cm.URL)
		}
	})

	t.Run("a record read with sysparm_fields and no sys_id is refused", func(t *testing.T) {
		body, err := c.Get(ctx, "incident", incID)
		require.NoError(t, err)
		_, err = mapRecorded(t, conn, raw.TypeTicket, body)
		require.ErrorIs(t, err, itsm.ErrMalformed)
		require.ErrorContains(t, err, "without sys_id")
	})

	t.Run("display_value=all with typed values is refused, not mapped with empty states", func(t *testing.T) {
		body, err := c.Get(ctx, "change_request", chgID)
		require.NoError(t, err)
		_, err = mapRecorded(t, conn, raw.TypeTicket, body)
		require.ErrorIs(t, err, itsm.ErrMalformed)
		require.ErrorContains(t, err, "sysparm_display_value")

		// The same record in a push body is refused the same way.
		push := []byte(`{"table":"change_request","sys_id":"` + chgID + `","operation":"update","sys_updated_on":"2020-11-11 17:54:57","record":` + string(body) + `}`)
		_, err = servicenow.Mapper{}.MapWebhook(conn, push)
		require.ErrorIs(t, err, itsm.ErrMalformed)
		require.ErrorContains(t, err, "sysparm_display_value")
	})
}
