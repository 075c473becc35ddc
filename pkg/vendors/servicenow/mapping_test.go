package servicenow_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

const connID = "conn-sn-1"

func conn() *store.Connection {
	return &store.Connection{ID: connID, Vendor: servicenow.VendorName}
}

// fixture reads a real payload's "result" (one record or a list).
func fixture(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("snsim/testdata/" + name)
	require.NoError(t, err)
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(b, &env))
	if env.Result[0] == '[' {
		var list []json.RawMessage
		require.NoError(t, json.Unmarshal(env.Result, &list))
		return list
	}
	return []json.RawMessage{env.Result}
}

func mapOne(t *testing.T, c *store.Connection, typ string, body []byte) itsm.Record {
	t.Helper()
	recs, err := servicenow.Mapper{}.MapSync(c, raw.SyncRecord{Type: typ, Record: body, ObservedAt: time.Now()})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	return recs[0]
}

func utc(s string) time.Time {
	t, err := time.Parse(servicenow.TimeLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRealIncident(t *testing.T) {
	rec := mapOne(t, conn(), raw.TypeTicket, fixture(t, "sndocs_table_get_incident_by_sys_id.json")[0])
	tk := rec.Object.(*itsm.Ticket)
	require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, "a9e30c7dc61122760116894de7bcc7bd"), rec.ID)
	require.Equal(t, tk.ID, rec.ID)
	// sys_updated_on plus 2 ms per sys_mod_count ("4").
	require.Equal(t, utc("2015-11-01 22:37:27").Add(8*time.Millisecond), rec.Version)
	require.Equal(t, "INC0000046", tk.Identifier)
	require.Equal(t, "Can't access SFA software", tk.Name)
	require.Equal(t, "incident", tk.Type)
	require.True(t, tk.Active)
	require.Equal(t, itsm.StatusOpen, tk.Status)
	require.Equal(t, itsm.PriorityMedium, tk.Priority)
	require.Nil(t, tk.ProjectID)
	require.Nil(t, tk.AssignedUserID) // "" in the record
	require.Equal(t, itsm.ObjectID(connID, itsm.KindUser, "46c6f9efa9fe198101ddf5eed9adf6e7"), *tk.CreatedByUserID)
	require.Equal(t, utc("2015-11-02 22:04:15"), *tk.TicketCreatedAt)
	require.Nil(t, tk.DueDate)
	require.Nil(t, tk.ClosedAt)
	require.Equal(t, []string{}, tk.Tags)
	// No instance URL on the connection: the base comes from the links.
	require.Equal(t, "https://instance.servicenow.com/incident.do?sys_id=a9e30c7dc61122760116894de7bcc7bd", tk.URL)
	require.Equal(t, "1", tk.VendorAttributes["state"])
	require.Equal(t, "New", tk.VendorAttributes["state_label"])
	fields := tk.VendorAttributes["fields"].(map[string]any)
	require.Equal(t, "software", fields["category"])
	require.Equal(t, "8a4dde73c6112278017a6a4baf547aa7", fields["assignment_group"])
	require.Equal(t, "a9e4890bc6112276003d7a5a5c774a74", fields["problem_id"])

	c := conn()
	c.SiteURL = "https://dev1.service-now.com/"
	tk = mapOne(t, c, raw.TypeTicket, fixture(t, "sndocs_table_get_incident_by_sys_id.json")[0]).Object.(*itsm.Ticket)
	require.Equal(t, "https://dev1.service-now.com/incident.do?sys_id=a9e30c7dc61122760116894de7bcc7bd", tk.URL)
}

func TestRealProblemOfAnOlderStateModel(t *testing.T) {
	// State "4" is no code of today's problem model; the record is
	// inactive with closed_at set.
	tk := mapOne(t, conn(), raw.TypeTicket, fixture(t, "sndocs_table_get_problem_list_limit1.json")[0]).Object.(*itsm.Ticket)
	require.Equal(t, "PRB0000050", tk.Identifier)
	require.Equal(t, itsm.StatusClosed, tk.Status)
	require.Equal(t, "inactive", tk.VendorAttributes["status_mapped_by"])
	require.Equal(t, itsm.PriorityLow, tk.Priority)
	require.False(t, tk.Active)
	require.Equal(t, utc("2016-01-19 04:52:04"), *tk.ClosedAt)
}

func TestRealJournal(t *testing.T) {
	entries := fixture(t, "rapid7_sys_journal_field_list.json")
	notes := mapOne(t, conn(), raw.TypeComment, entries[0])
	c := notes.Object.(*itsm.Comment)
	require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, "j1"), c.TicketID)
	require.Equal(t, "Team is actively looking into it.", c.Body)
	require.Equal(t, true, c.VendorAttributes["internal"])
	require.Equal(t, "admin", c.VendorAttributes["created_by"])
	require.Nil(t, c.AuthorID) // no sys_id for "admin" without the sync's lookup
	require.Equal(t, utc("2019-09-26 21:19:11"), notes.Version)
	require.Equal(t, itsm.ObjectActive, c.Status)

	comment := mapOne(t, conn(), raw.TypeComment, entries[1]).Object.(*itsm.Comment)
	require.Equal(t, false, comment.VendorAttributes["internal"])

	// The sync's annotation names the author and supersedes the plain copy.
	var row map[string]any
	require.NoError(t, json.Unmarshal(entries[0], &row))
	row[servicenow.AnnotAuthor] = "6816f79cc0a8016401c5a33be04be441"
	b, _ := json.Marshal(row)
	annotated := mapOne(t, conn(), raw.TypeComment, b)
	require.Equal(t, itsm.ObjectID(connID, itsm.KindUser, "6816f79cc0a8016401c5a33be04be441"), *annotated.Object.(*itsm.Comment).AuthorID)
	require.True(t, annotated.Version.After(notes.Version))
	require.Equal(t, notes.ID, annotated.ID)
}

func TestRealAttachments(t *testing.T) {
	rec := mapOne(t, conn(), raw.TypeAttachment, fixture(t, "rapid7_attachment_list_by_table_sys_id.json")[0])
	a := rec.Object.(*itsm.Attachment)
	require.Equal(t, "text/plain", a.MimeType)
	require.Equal(t, "text/plain (.txt)", a.VendorAttributes["content_type"])
	require.Equal(t, int64(38), a.Size)
	require.Equal(t, "testtattatxt", a.Name)
	require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, "3072d01d07a552f6d0ea83ef29c936be"), a.TicketID)
	require.Equal(t, "https://ven01226.service-now.com/api/now/attachment/b259f4062d9f78f9ffdd6efd05c492c7/file", a.URL)
	require.Equal(t, utc("2021-08-20 18:12:02").Add(2*time.Millisecond), rec.Version)
	require.Equal(t, utc("2021-08-20 18:12:00"), *a.AttachmentCreatedAt)

	for _, body := range fixture(t, "sndocs_attachment_get_list.json") {
		a := mapOne(t, conn(), raw.TypeAttachment, body).Object.(*itsm.Attachment)
		require.NotEmpty(t, a.Name)
		require.NotEmpty(t, a.MimeType)
	}
}

func TestMalformed(t *testing.T) {
	m := servicenow.Mapper{}
	for name, sr := range map[string]raw.SyncRecord{
		"not an object":  {Type: raw.TypeTicket, Record: []byte(`[1]`)},
		"no sys_id":      {Type: raw.TypeTicket, Record: []byte(`{"number":"INC1","sys_updated_on":"2020-01-01 00:00:00"}`)},
		"bad time":       {Type: raw.TypeTicket, Record: []byte(`{"sys_id":"a","sys_updated_on":"yesterday"}`)},
		"unknown type":   {Type: "issue", Record: []byte(`{"sys_id":"a"}`)},
		"comment no id":  {Type: raw.TypeComment, Record: []byte(`{"sys_id":"a","element":"comments","sys_created_on":"2020-01-01 00:00:00"}`)},
		"deletion blank": {Type: raw.TypeDeletion, Record: []byte(`{"sys_id":"a"}`)},
	} {
		_, err := m.MapSync(conn(), sr)
		require.ErrorIs(t, err, itsm.ErrMalformed, name)
	}
	_, err := m.MapSync(conn(), raw.SyncRecord{Type: raw.TypeComment, Record: []byte(`{"sys_id":"a","element":"approval","element_id":"b","sys_created_on":"2020-01-01 00:00:00"}`)})
	require.ErrorIs(t, err, itsm.ErrUnsupportedEvent)
}

func TestVersionOrdersWritesOfOneSecond(t *testing.T) {
	rec := func(mod string, updated string) time.Time {
		return mapOne(t, conn(), raw.TypeTicket, []byte(`{"sys_id":"a","sys_class_name":"incident","state":"1","sys_updated_on":"`+updated+`","sys_mod_count":"`+mod+`"}`)).Version
	}
	require.True(t, rec("5", "2024-01-01 10:00:00").Before(rec("6", "2024-01-01 10:00:00")))
	require.True(t, rec("498", "2024-01-01 10:00:00").Before(rec("2", "2024-01-01 10:00:01")))
	del, err := servicenow.NewMapping(connID, "", nil, nil).Tombstone("incident", "a", utc("2024-01-01 10:00:00"))
	require.NoError(t, err)
	require.True(t, del.Version.After(rec("498", "2024-01-01 10:00:00")))
	// The sync's annotated copy of a write follows the push's, and
	// precedes the next write.
	annotated := mapOne(t, conn(), raw.TypeTicket, []byte(`{"sys_id":"a","sys_class_name":"incident","state":"1","sys_updated_on":"2024-01-01 10:00:00","sys_mod_count":"498","_itsm_tags":[]}`)).Version
	require.True(t, annotated.After(rec("498", "2024-01-01 10:00:00")))
	require.True(t, annotated.Before(del.Version))
	require.True(t, mapOne(t, conn(), raw.TypeTicket, []byte(`{"sys_id":"a","sys_class_name":"incident","state":"1","sys_updated_on":"2024-01-01 10:00:00","sys_mod_count":"5","_itsm_tags":["x"]}`)).Version.Before(rec("6", "2024-01-01 10:00:00")))
}

func TestStatusByTable(t *testing.T) {
	m := servicenow.NewMapping(connID, "", nil, nil)
	for _, c := range []struct {
		table, code, hold string
		want              itsm.Status
	}{
		{"incident", "1", "", itsm.StatusOpen},
		{"incident", "2", "", itsm.StatusInProgress},
		{"incident", "3", "1", itsm.StatusPending},
		{"incident", "3", "4", itsm.StatusPending},
		{"incident", "3", "3", itsm.StatusBlocked},
		{"incident", "3", "5", itsm.StatusBlocked},
		{"incident", "3", "", itsm.StatusBlocked},
		{"incident", "6", "", itsm.StatusResolved},
		{"incident", "7", "", itsm.StatusClosed},
		{"incident", "8", "", itsm.StatusCancelled},
		{"problem", "101", "", itsm.StatusOpen},
		{"problem", "104", "", itsm.StatusInProgress},
		{"problem", "106", "", itsm.StatusResolved},
		{"problem", "107", "", itsm.StatusClosed},
		{"change_request", "-5", "", itsm.StatusOpen},
		{"change_request", "-3", "", itsm.StatusInReview},
		{"change_request", "-1", "", itsm.StatusInProgress},
		{"change_request", "3", "", itsm.StatusClosed},
		{"change_request", "4", "", itsm.StatusCancelled},
		// A code of another table means nothing here.
		{"problem", "6", "", itsm.StatusUnknown},
		{"incident", "18", "", itsm.StatusUnknown},
	} {
		got, _ := m.MapStatus(c.table, c.code, c.hold, false)
		require.Equal(t, c.want, got, "%s %s hold %s", c.table, c.code, c.hold)
	}
	// An instance's own state, by its label's keywords.
	m.Labels = map[string]string{"incident:18": "Awaiting Customer Feedback", "change_request:5": "Awaiting Approval"}
	got, by := m.MapStatus("incident", "18", "", false)
	require.Equal(t, itsm.StatusPending, got)
	require.Equal(t, servicenow.ByKeyword, by)
	got, _ = m.MapStatus("change_request", "5", "", false)
	require.Equal(t, itsm.StatusPending, got)
	m.Labels["problem:109"] = "Assessment"
	got, _ = m.MapStatus("problem", "109", "", false)
	require.Equal(t, itsm.StatusInReview, got)
	m.Labels["problem:110"] = "Renewal"
	got, by = m.MapStatus("problem", "110", "", false)
	require.Equal(t, itsm.StatusUnknown, got)
	require.Equal(t, servicenow.ByNone, by)
}

func TestCustomMappings(t *testing.T) {
	c := conn()
	c.Options.StatusMapping = store.NameMap[itsm.Status]{
		{Name: "incident:6", Value: itsm.StatusClosed},
		{Name: "awaiting vendor", Value: itsm.StatusBlocked},
		{Name: "Assess", Value: itsm.StatusOpen},
		{Name: "incident:7", Value: itsm.StatusDeleted}, // never a target: skipped
	}
	c.Options.PriorityMapping = store.NameMap[itsm.Priority]{{Name: "Planning", Value: itsm.PriorityLow}, {Name: "problem:1", Value: itsm.PriorityHigh}}
	m := servicenow.MappingOf(c)
	s, by := m.MapStatus("incident", "6", "", false)
	require.Equal(t, itsm.StatusClosed, s)
	require.Equal(t, servicenow.ByCustom, by)
	s, _ = m.MapStatus("problem", "106", "", false) // "incident:6" is incident's only
	require.Equal(t, itsm.StatusResolved, s)
	s, _ = m.MapStatus("incident", "3", "4", false) // by hold reason label
	require.Equal(t, itsm.StatusBlocked, s)
	s, _ = m.MapStatus("problem", "102", "", false) // by label, any table
	require.Equal(t, itsm.StatusOpen, s)
	s, _ = m.MapStatus("change_request", "-4", "", false)
	require.Equal(t, itsm.StatusOpen, s)
	s, by = m.MapStatus("incident", "7", "", false)
	require.Equal(t, itsm.StatusClosed, s)
	require.Equal(t, servicenow.ByCode, by)
	p, _ := m.MapPriority("incident", "5")
	require.Equal(t, itsm.PriorityLow, p)
	p, _ = m.MapPriority("problem", "1")
	require.Equal(t, itsm.PriorityHigh, p)
	p, _ = m.MapPriority("incident", "1")
	require.Equal(t, itsm.PriorityCritical, p)
	p, _ = m.MapPriority("incident", "")
	require.Equal(t, itsm.PriorityUnknown, p)
}

func TestRemap(t *testing.T) {
	c := conn()
	tk := mapOne(t, c, raw.TypeTicket, []byte(`{"sys_id":"a","sys_class_name":"incident","state":"6","priority":"2","active":"false","sys_updated_on":"2024-01-01 10:00:00"}`)).Object.(*itsm.Ticket)
	require.Equal(t, itsm.StatusResolved, tk.Status)
	require.False(t, servicenow.Mapper{}.Remap(c, tk))
	c.Options.StatusMapping = store.NameMap[itsm.Status]{{Name: "Resolved", Value: itsm.StatusClosed}}
	require.True(t, servicenow.Mapper{}.Remap(c, tk))
	require.Equal(t, itsm.StatusClosed, tk.Status)
	require.Equal(t, itsm.PriorityHigh, tk.Priority)
	require.Equal(t, "custom", tk.VendorAttributes["status_mapped_by"])
}

// simRecord reads one record from the simulator's Table API, with or
// without reference links.
func simRecord(t *testing.T, base, table, id string, excludeLinks bool) []byte {
	t.Helper()
	url := base + "/api/now/table/" + table + "/" + id + "?sysparm_display_value=false"
	if excludeLinks {
		url += "&sysparm_exclude_reference_link=true"
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("admin", "admin-password")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	return env.Result
}

func TestBothReferenceShapesMapAlike(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 3})
	in := srv.Default()
	for _, table := range []string{"incident", "problem", "change_request", "sc_req_item", "sc_task", "sys_user", "sys_user_group"} {
		recs, err := in.Records(table)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		typ := map[string]string{"sys_user": raw.TypeUser, "sys_user_group": raw.TypeGroup}[table]
		if typ == "" {
			typ = raw.TypeTicket
		}
		for _, r := range recs[:3] {
			linked := mapOne(t, conn(), typ, simRecord(t, srv.BaseURL(""), table, r["sys_id"], false))
			bare := mapOne(t, conn(), typ, simRecord(t, srv.BaseURL(""), table, r["sys_id"], true))
			linked.Version, bare.Version = time.Time{}, time.Time{} // groups: observed
			if tk, ok := linked.Object.(*itsm.Ticket); ok {
				// Bare references carry no link to take the instance URL from.
				require.NotEmpty(t, tk.URL)
				bare.Object.(*itsm.Ticket).URL = tk.URL
				require.NotEqual(t, itsm.StatusUnknown, tk.Status, "%s state %s", table, r["state"])
				require.NotEqual(t, itsm.PriorityUnknown, tk.Priority)
			}
			require.Equal(t, linked, bare, table)
		}
	}
}

// pushSink records the pushes the simulator's business rule sends.
type pushSink struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func (p *pushSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.bodies = append(p.bodies, b)
	p.sigs = append(p.sigs, r.Header.Get(servicenow.SignatureHeader))
	p.mu.Unlock()
}

func TestPushes(t *testing.T) {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 1, Clock: clk})
	in := srv.Default()
	sink := &pushSink{}
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	_, err := in.Subscribe(snsim.Subscription{Tables: []string{"incident", "sys_journal_field"}, URL: hs.URL + "/full", Secret: "s3cret", IncludeRecord: true})
	require.NoError(t, err)
	_, err = in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: hs.URL + "/hint", Secret: "s3cret"})
	require.NoError(t, err)

	rec, err := in.Insert("incident", snsim.Record{"short_description": "Mail down", "impact": "1", "urgency": "1"}, snsim.WriteOptions{})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	_, err = in.AddJournal("incident", rec["sys_id"], "comments", "we are on it", snsim.WriteOptions{As: "itsm.integration"})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", rec["sys_id"], snsim.WriteOptions{}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.WaitIdle(ctx))

	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.NotEmpty(t, sink.bodies)
	m := servicenow.Mapper{}
	var tickets, comments, tombstones, rereads int
	for i, body := range sink.bodies {
		require.NoError(t, servicenow.VerifyPush("s3cret", body, sink.sigs[i]))
		require.ErrorIs(t, servicenow.VerifyPush("other", body, sink.sigs[i]), servicenow.ErrBadSignature)
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)-2] ^= 1
		require.ErrorIs(t, servicenow.VerifyPush("s3cret", tampered, sink.sigs[i]), servicenow.ErrBadSignature)

		recs, err := m.MapWebhook(conn(), body)
		var rr *servicenow.RereadError
		if errors.As(err, &rr) {
			require.ErrorIs(t, err, itsm.ErrUnsupportedEvent)
			require.Equal(t, "incident", rr.Table)
			require.Equal(t, rec["sys_id"], rr.SysID)
			rereads++
			continue
		}
		require.NoError(t, err)
		require.Len(t, recs, 1)
		switch o := recs[0].Object.(type) {
		case *itsm.Ticket:
			require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, rec["sys_id"]), o.ID)
			if recs[0].Deleted {
				tombstones++
				require.Equal(t, itsm.StatusDeleted, o.Status)
				continue
			}
			tickets++
			require.Equal(t, "Mail down", o.Name)
			require.Equal(t, itsm.PriorityCritical, o.Priority)
		case *itsm.Comment:
			comments++
			require.Equal(t, "we are on it", o.Body)
			require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, rec["sys_id"]), o.TicketID)
		}
	}
	require.GreaterOrEqual(t, tickets, 2) // insert, update by the journal entry
	require.Equal(t, 1, comments)
	require.GreaterOrEqual(t, tombstones, 2) // with and without record
	require.Equal(t, 2, rereads)             // hint-only insert and update
}

func TestPushErrors(t *testing.T) {
	m := servicenow.Mapper{}
	_, err := m.MapWebhook(conn(), []byte(`"x"`))
	require.ErrorIs(t, err, itsm.ErrNotAnEvent)
	_, err = m.MapWebhook(conn(), []byte(`{"table":"incident"}`))
	require.ErrorIs(t, err, itsm.ErrNotAnEvent)
	_, err = m.MapWebhook(conn(), []byte(`{"table":"incident","sys_id":"a","operation":"merge"}`))
	require.ErrorIs(t, err, itsm.ErrMalformed)
	_, err = m.MapWebhook(conn(), []byte(`{"table":"cmdb_ci","sys_id":"a","operation":"update","record":{"sys_id":"a"}}`))
	require.ErrorIs(t, err, itsm.ErrUnsupportedEvent)
	_, err = m.MapWebhook(conn(), []byte(`{"table":"incident","sys_id":"a","operation":"delete","sys_updated_on":""}`))
	require.ErrorIs(t, err, itsm.ErrMalformed)
	// A membership change re-reads its group.
	_, err = m.MapWebhook(conn(), []byte(`{"table":"sys_user_grmember","sys_id":"m","operation":"insert","sys_updated_on":"2024-01-01 00:00:00","record":{"sys_id":"m","user":"u","group":{"link":"x/sys_user_group/g1","value":"g1"}}}`))
	var rr *servicenow.RereadError
	require.ErrorAs(t, err, &rr)
	require.Equal(t, servicenow.RereadError{Table: "sys_user_group", SysID: "g1", Why: rr.Why}, *rr)
	require.ErrorIs(t, servicenow.VerifyPush("s", []byte("{}"), ""), servicenow.ErrBadSignature)
	require.ErrorIs(t, servicenow.VerifyPush("", []byte("{}"), servicenow.Sign("", []byte("{}"))), servicenow.ErrBadSignature)
	require.ErrorIs(t, servicenow.VerifyPush("s", []byte("{}"), "sha256=zz"), servicenow.ErrBadSignature)
}

func TestSignMatchesSimulator(t *testing.T) {
	body := []byte(`{"table":"incident","sys_id":"9ef81de2db0d6090d7055268dc961978","operation":"update","sys_updated_on":"2026-01-15 09:30:00"}`)
	require.Equal(t, snsim.Sign("connection-secret", body), servicenow.Sign("connection-secret", body))
}

func TestDeletionFromAuditLog(t *testing.T) {
	srv := snsim.NewTestServer(t, snsim.Options{Seed: 2})
	in := srv.Default()
	recs, err := in.Records("incident")
	require.NoError(t, err)
	victim := recs[0]
	require.NoError(t, in.Delete("incident", victim["sys_id"], snsim.WriteOptions{SkipWorkflow: true}))
	audit, err := in.Records("sys_audit_delete")
	require.NoError(t, err)
	require.Len(t, audit, 1)
	body := simRecord(t, srv.BaseURL(""), "sys_audit_delete", audit[0]["sys_id"], false)
	rec := mapOne(t, conn(), raw.TypeDeletion, body)
	require.True(t, rec.Deleted)
	tk := rec.Object.(*itsm.Ticket)
	require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, victim["sys_id"]), tk.ID)
	require.Equal(t, itsm.StatusDeleted, tk.Status)
	require.False(t, tk.Active)
	// The payload gives the tombstone the record's last content.
	require.Equal(t, victim["number"], tk.Identifier)
	require.Equal(t, victim["short_description"], tk.Name)
	require.Equal(t, deletionAt(t, audit[0]["sys_created_on"]), rec.Version)

	// Without a readable payload: a bare tombstone.
	var row map[string]any
	require.NoError(t, json.Unmarshal(body, &row))
	row["payload"] = ""
	b, _ := json.Marshal(row)
	bare := mapOne(t, conn(), raw.TypeDeletion, b)
	require.Equal(t, rec.ID, bare.ID)
	require.Equal(t, rec.Version, bare.Version)
	require.Empty(t, bare.Object.(*itsm.Ticket).Name)
	require.Equal(t, true, bare.Object.(*itsm.Ticket).VendorAttributes["partial_tombstone"])
	require.Nil(t, tk.VendorAttributes["partial_tombstone"])
}

func deletionAt(t *testing.T, s string) time.Time {
	return utc(s).Add(999 * time.Millisecond)
}

func TestBusinessRuleScript(t *testing.T) {
	s := servicenow.BusinessRule{URL: "https://itsm.example/webhooks/servicenow/c1", Secret: `se"cret`, Tables: []string{"incident", "sys_journal_field"}, IncludeRecord: true}.Script()
	require.Contains(t, s, `var URL = "https://itsm.example/webhooks/servicenow/c1";`)
	require.Contains(t, s, `var SECRET = "se\"cret";`)
	require.Contains(t, s, `var INCLUDE_RECORD = true;`)
	require.Contains(t, s, "incident, sys_journal_field")
	require.Contains(t, s, `"X-Signature", "sha256="`)
	require.Contains(t, s, `"HmacSHA256"`)
}

func TestValidateTables(t *testing.T) {
	require.NoError(t, servicenow.ValidateTables(nil))
	require.NoError(t, servicenow.ValidateTables([]string{"incident", "sc_task"}))
	err := servicenow.ValidateTables([]string{"incident", "cmdb_ci"})
	require.ErrorContains(t, err, `tables[1]: "cmdb_ci"`)
	require.ErrorContains(t, servicenow.ValidateTables([]string{"problem", "problem"}), "twice")
}

func TestDeletionOfAnUnmappedJournalEntry(t *testing.T) {
	body := []byte(`{"sys_id":"d1","tablename":"sys_journal_field","documentkey":"j1","sys_created_on":"2024-01-01 00:00:00",` +
		`"payload":"<?xml version=\"1.0\" encoding=\"UTF-8\"?><record_update table=\"sys_journal_field\"><sys_journal_field><sys_id>j1</sys_id><element>approval_history</element><element_id>t1</element_id><sys_created_on>2023-12-01 00:00:00</sys_created_on></sys_journal_field></record_update>"}`)
	_, err := servicenow.Mapper{}.MapSync(conn(), raw.SyncRecord{Type: raw.TypeDeletion, Record: body})
	require.ErrorIs(t, err, itsm.ErrUnsupportedEvent)

	comment := []byte(`{"sys_id":"d2","tablename":"sys_journal_field","documentkey":"j2","sys_created_on":"2024-01-01 00:00:00",` +
		`"payload":"<record_update table=\"sys_journal_field\"><sys_journal_field><sys_id>j2</sys_id><element>comments</element><element_id>t1</element_id><value>a &amp; b</value><sys_created_on>2023-12-01 00:00:00</sys_created_on></sys_journal_field></record_update>"}`)
	rec := mapOne(t, conn(), raw.TypeDeletion, comment)
	c := rec.Object.(*itsm.Comment)
	require.True(t, rec.Deleted)
	require.Equal(t, "a & b", c.Body)
	require.Equal(t, itsm.ObjectID(connID, itsm.KindTicket, "t1"), c.TicketID)
	require.Equal(t, itsm.ObjectDeleted, c.Status)
}
